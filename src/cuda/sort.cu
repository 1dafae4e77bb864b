// igla CUDA backend: the sort path (any query, any K): every key written to memory
// (keys_kernel), a segmented radix sort (CUB), then the k best without the exclusions
// (sorted_finalize_kernel).
#include "cuda/kernels.hpp"

#include <cub/device/device_segmented_sort.cuh>

#include <algorithm>

#include "cuda/device_common.cuh"
#include "cuda/host_common.hpp"
#include "cuda/prepare.cuh"

namespace igla::cuda {

namespace {

// ---------------------------------------------------------------------------------------------
// sort path.

__global__ void keys_kernel(const uint64_t* codes, const float* inv, uint32_t W, uint32_t L, const uint64_t* planes,
                            const float* weights, const uint32_t* term_off, int combine, int q0, uint64_t* keys) {
  const int qi = blockIdx.y;
  const int q = q0 + qi;
  const uint32_t t0 = term_off[q], T = term_off[q + 1] - t0;
  const uint32_t x = blockIdx.x * blockDim.x + threadIdx.x;
  if (x >= L) return;
  const float s = score_generic(x, codes, W, planes + static_cast<size_t>(t0) * 2 * W, weights + t0, T, combine,
                                __ldg(inv + x));
  keys[static_cast<size_t>(qi) * L + x] = make_key(s, x);
}

__global__ void sorted_finalize_kernel(const uint64_t* sorted, uint32_t L, int n, int q0, int k, const uint32_t* excl,
                                       const uint32_t* excl_off, uint2* hits, uint32_t* count) {
  const int qi = blockIdx.x * (blockDim.x / 32) + (threadIdx.x >> 5);
  if (qi >= n) return;
  const int q = q0 + qi;
  const unsigned lane = lane_id();
  const uint32_t e0 = excl_off[q], e1 = excl_off[q + 1];
  uint2* row = hits + static_cast<size_t>(q) * k;
  int got = 0;
  for (uint32_t b = 0; b < L && got < k; b += 32) {
    const uint32_t i = b + lane;
    bool valid = i < L;
    uint64_t key = 0;
    if (valid) key = sorted[static_cast<size_t>(qi) * L + i];
    const uint32_t id = key_id(key);
    for (uint32_t e = e0; e < e1 && valid; ++e)
      if (excl[e] == id) valid = false;
    const unsigned m = __ballot_sync(kFull, valid);
    const int pos = got + __popc(m & ((1u << lane) - 1u));
    if (valid && pos < k) row[pos] = make_uint2(id, __float_as_uint(key_score(key)));
    got += __popc(m);
  }
  const int nn = min(got, k);
  if (lane == 0) count[q] = static_cast<uint32_t>(nn);
  for (int j = nn + static_cast<int>(lane); j < k; j += 32) row[j] = make_uint2(0, 0);
}

}  // namespace

// ---------------------------------------------------------------------------------------------

int sort_sub_batch(uint32_t L) {
  const size_t budget = size_t{128} << 20;  // bytes of keys per buffer
  return static_cast<int>(std::clamp<size_t>(budget / (static_cast<size_t>(std::max<uint32_t>(L, 1)) * 8), 1, 4096));
}

namespace {
size_t cub_temp_bytes(uint32_t L, int sub) {
  size_t bytes = 0;
  cub::DeviceSegmentedSort::SortKeysDescending(nullptr, bytes, static_cast<const uint64_t*>(nullptr),
                                               static_cast<uint64_t*>(nullptr), static_cast<int64_t>(L) * sub, sub,
                                               static_cast<const int64_t*>(nullptr),
                                               static_cast<const int64_t*>(nullptr));
  return bytes;
}
__global__ void offsets_kernel(int64_t* off, int n, uint32_t L) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i <= n) off[i] = static_cast<int64_t>(i) * L;
}
}  // namespace

size_t sort_scratch_bytes(const DeviceIndex& ix, int n_terms, uint32_t L, int sub) {
  Bump b{nullptr};
  b.take<uint64_t>(static_cast<size_t>(n_terms) * 2 * ix.W);
  b.take<uint64_t>(static_cast<size_t>(L) * sub);
  b.take<uint64_t>(static_cast<size_t>(L) * sub);
  b.take<int64_t>(static_cast<size_t>(sub) + 1);
  b.take<char>(cub_temp_bytes(L, sub));
  return b.used + 256;
}

void sort_search(const DeviceIndex& ix, const ChunkQueries& q, uint32_t L, int k, int sub, void* scratch,
                 size_t scratch_bytes, OutHits out, cudaStream_t s) {
  (void)scratch_bytes;
  Bump b{static_cast<char*>(scratch)};
  uint64_t* planes = b.take<uint64_t>(static_cast<size_t>(q.n_terms) * 2 * ix.W);
  uint64_t* keys = b.take<uint64_t>(static_cast<size_t>(L) * sub);
  uint64_t* sorted = b.take<uint64_t>(static_cast<size_t>(L) * sub);
  int64_t* off = b.take<int64_t>(static_cast<size_t>(sub) + 1);
  size_t temp_bytes = cub_temp_bytes(L, sub);
  void* temp = b.take<char>(temp_bytes);
  query_planes(q.trits, q.n_terms, ix.dims, ix.W, planes, s);
  offsets_kernel<<<(sub + 1 + 255) / 256, 256, 0, s>>>(off, sub, L);
  for (int q0 = 0; q0 < q.n_q; q0 += sub) {
    const int n = std::min(sub, q.n_q - q0);
    keys_kernel<<<dim3((L + 255) / 256, n), 256, 0, s>>>(ix.codes, ix.inv, ix.W, L, planes, q.weights, q.term_off,
                                                          q.combine, q0, keys);
    launch_check("keys_kernel");
    cub::DeviceSegmentedSort::SortKeysDescending(temp, temp_bytes, keys, sorted, static_cast<int64_t>(L) * n, n, off,
                                                 off + 1, s);
    sorted_finalize_kernel<<<(n + 7) / 8, 256, 0, s>>>(sorted, L, n, q0, k, q.excl, q.excl_off, out.hits, out.count);
    launch_check("sorted_finalize_kernel");
  }
}

}  // namespace igla::cuda
