// igla CUDA backend: preparation. The vocabulary into the mma path's int8 tiles (tile_order,
// build_device_index: tile_vocab_kernel, tile_extra_kernel); the queries into int8 tiles
// (tile_queries_kernel, mma path) or bitplanes (query_planes_kernel, popc and sort paths).
#include "cuda/kernels.hpp"

#include <algorithm>

#include "cuda/device_common.cuh"
#include "cuda/host_common.hpp"
#include "cuda/prepare.cuh"

namespace igla::cuda {

// ---------------------------------------------------------------------------------------------
// Preparation kernels.

namespace {

// Vocabulary: bitplanes -> int8 in the wgmma canonical K-major no-swizzle layout, per tile of
// 128 words (tile position p holds word perm[p]): byte (r, c) at
// (r / 8) * 8 * Kp + (c / 16) * 128 + (r % 8) * 16 + c % 16.
__global__ void tile_vocab_kernel(const uint64_t* codes, const uint32_t* perm, uint32_t n, uint32_t dims, uint32_t W,
                                  uint32_t Kp, uint32_t n_tiles, uint32_t stride, int8_t* out) {
  const uint32_t chunks = Kp / 16;
  const size_t total = static_cast<size_t>(n_tiles) * kTileWords * chunks;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const uint32_t pos = static_cast<uint32_t>(i / chunks), c = static_cast<uint32_t>(i % chunks);
    const uint32_t word = perm[pos];
    alignas(16) int8_t v[16];
#pragma unroll
    for (int e = 0; e < 16; ++e) {
      const uint32_t d = c * 16 + e;
      int8_t t = 0;
      if (word < n && d < dims) {
        const size_t base = (static_cast<size_t>(word >> 3) * W + (d >> 6)) * 16 + (word & 7);
        const uint64_t nz = codes[base] >> (d & 63), sg = codes[base + 8] >> (d & 63);
        t = (nz & 1) ? ((sg & 1) ? -1 : 1) : 0;
      }
      v[e] = t;
    }
    const uint32_t tile = pos / kTileWords, r = pos % kTileWords;
    int8_t* dst = out + static_cast<size_t>(tile) * stride + (r / 8) * 8 * Kp + c * 128 + (r % 8) * 16;
    *reinterpret_cast<int4*>(dst) = *reinterpret_cast<const int4*>(v);
  }
}

// Each tile's extra bytes: inv[128] and ids[128] of its words, then 1 / max(inv) (inf when every
// word of the tile is all-zero or padding).
__global__ void tile_extra_kernel(const float* inv, const uint32_t* perm, uint32_t n, uint32_t n_tiles, uint32_t Kp,
                                  uint32_t stride, int8_t* out) {
  const uint32_t t = blockIdx.x;
  if (t >= n_tiles) return;
  int8_t* extra = out + static_cast<size_t>(t) * stride + kTileWords * Kp;
  float* dst = reinterpret_cast<float*>(extra);
  uint32_t* ids = reinterpret_cast<uint32_t*>(extra + kExtraIds);
  const uint32_t word = perm[static_cast<size_t>(t) * kTileWords + threadIdx.x];
  const float v = word < n ? inv[word] : 0.0f;
  dst[threadIdx.x] = v;
  ids[threadIdx.x] = word < n ? word : ~0u;
  float m = v;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(kFull, m, o));
  __shared__ float wm[kTileWords / 32];
  if ((threadIdx.x & 31) == 0) wm[threadIdx.x / 32] = m;
  __syncthreads();
  if (threadIdx.x == 0) {
    float x = 0.0f;
    for (int i = 0; i < kTileWords / 32; ++i) x = fmaxf(x, wm[i]);
    float* tail = reinterpret_cast<float*>(extra + kExtraRim);
    tail[0] = __fdiv_rn(1.0f, x);
    for (uint32_t i = 1; i < (kTileExtra - kExtraRim) / 4; ++i) tail[i] = 0.0f;
  }
}

}  // namespace

// Queries (one term each) -> int8 tiles like the vocabulary, 128 queries a tile; weights per row.
__global__ void tile_queries_kernel(const int8_t* trits, const float* weights, const uint32_t* term_off, int n_q,
                                    uint32_t dims, uint32_t Kp, int n_qt, int8_t* out, float* qw) {
  const uint32_t chunks = Kp / 16;
  const size_t total = static_cast<size_t>(n_qt) * kTileQueries * chunks;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const uint32_t row = static_cast<uint32_t>(i / chunks), c = static_cast<uint32_t>(i % chunks);
    const bool real = row < static_cast<uint32_t>(n_q);
    const int8_t* src = real ? trits + static_cast<size_t>(term_off[row]) * dims : nullptr;
    // A negative weight is moved onto the trits: (-w) * float(-dot) is w * float(dot) exactly,
    // and the kernel's integer bound needs w > 0.
    const float w = real ? weights[term_off[row]] : 0.0f;
    const bool flip = w < 0.0f;
    alignas(16) int8_t v[16];
#pragma unroll
    for (int e = 0; e < 16; ++e) {
      const uint32_t d = c * 16 + e;
      const int8_t x = (real && d < dims) ? src[d] : 0;
      v[e] = flip ? static_cast<int8_t>(-x) : x;
    }
    const uint32_t tile = row / kTileQueries, r = row % kTileQueries;
    int8_t* dst = out + static_cast<size_t>(tile) * kTileQueries * Kp + (r / 8) * 8 * Kp + c * 128 + (r % 8) * 16;
    *reinterpret_cast<int4*>(dst) = *reinterpret_cast<const int4*>(v);
    if (c == 0) qw[row] = flip ? -w : w;
  }
}

// Query terms -> bitplane rows nz[W], sign[W].
__global__ void query_planes_kernel(const int8_t* trits, int n_terms, uint32_t dims, uint32_t W, uint64_t* out) {
  const size_t total = static_cast<size_t>(n_terms) * W;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const size_t t = i / W;
    const uint32_t j = static_cast<uint32_t>(i % W);
    uint64_t nz = 0, sg = 0;
    for (uint32_t b = 0; b < 64; ++b) {
      const uint32_t d = j * 64 + b;
      if (d >= dims) break;
      const int8_t x = trits[t * dims + d];
      if (x != 0) nz |= uint64_t{1} << b;
      if (x < 0) sg |= uint64_t{1} << b;
    }
    out[t * 2 * W + j] = nz;
    out[t * 2 * W + W + j] = sg;
  }
}

void query_planes(const int8_t* trits, int n_terms, uint32_t dims, uint32_t W, uint64_t* out, cudaStream_t s) {
  const size_t items = static_cast<size_t>(n_terms) * W;
  query_planes_kernel<<<static_cast<int>(std::max<size_t>(1, std::min<size_t>((items + 127) / 128, 65535))), 128, 0,
                        s>>>(trits, n_terms, dims, W, out);
  launch_check("query_planes_kernel");
}

// ---------------------------------------------------------------------------------------------

void tile_order(const float* inv_norms, uint32_t n, uint32_t n_tiles, uint32_t* perm) {
  const size_t total = static_cast<size_t>(n_tiles) * kTileWords;
  for (size_t p = 0; p < total; ++p) perm[p] = p < n ? static_cast<uint32_t>(p) : ~0u;
  for (uint32_t b = 0; b < n; b += kSuperBlock) {
    const uint32_t e = std::min<uint32_t>(n, b + kSuperBlock);
    // Fewest non-zeros (largest inverse norm) first; equal norms keep their id order.
    std::stable_sort(perm + b, perm + e, [&](uint32_t x, uint32_t y) { return inv_norms[x] > inv_norms[y]; });
  }
}

void build_device_index(DeviceIndex& ix, const float* inv, const uint32_t* perm, int8_t* tiled, cudaStream_t s) {
  const size_t items = static_cast<size_t>(ix.n_tiles) * kTileWords * (ix.Kp / 16);
  const int blocks = static_cast<int>(std::min<size_t>((items + 255) / 256, 65535));
  tile_vocab_kernel<<<std::max(blocks, 1), 256, 0, s>>>(ix.codes, perm, ix.n, ix.dims, ix.W, ix.Kp, ix.n_tiles,
                                                         ix.tile_stride, tiled);
  launch_check("tile_vocab_kernel");
  tile_extra_kernel<<<ix.n_tiles, kTileWords, 0, s>>>(inv, perm, ix.n, ix.n_tiles, ix.Kp, ix.tile_stride, tiled);
  launch_check("tile_extra_kernel");
  ix.tiled = tiled;
}

}  // namespace igla::cuda
