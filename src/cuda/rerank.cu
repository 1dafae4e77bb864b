// igla CUDA backend: the rerank stage on the device (kernels.hpp, rerank_search): candidates of
// the ternary search rescored on the index's rerank rows, bit for bit as src/core/rerank.cpp.
#include "cuda/kernels.hpp"

#include <algorithm>

#include "cuda/device_common.cuh"
#include "cuda/host_common.hpp"

namespace igla::cuda {

namespace {

constexpr int kRerankThreads = 256;  // 32 groups of 8 lanes, one candidate a group at a time

struct RerankArgs {
  RerankRows rows;
  RerankQueries q;
  const uint2* cand;
  const uint32_t* cand_count;
  int C, k;
  OutHits out;
};

// A row's values to the 8 lanes of a group: main(b, j) is element 8b + j (lane j's), tail(d) is
// element d in every lane of the group. All 32 lanes of the warp make the same calls (the int8
// row shuffles; the four groups of a warp run rows of the same length).
struct FloatRow {  // stored decoded (Index::rerank_row's floats)
  const float* x;
  __device__ __forceinline__ float main(uint32_t b, unsigned j) const { return x[8 * b + j]; }
  __device__ __forceinline__ float tail(uint32_t d) const { return x[d]; }
};

// The index's int8 bytes, decoded as Index::rerank_row decodes them (float(r[d]) * scale[d], one
// rounding: the same floats). Rows are padded on the device to a stride of 16 bytes, so lane j
// fetches bytes 16j..16j+15 of each 128 bytes of the row with one 16-byte load (a candidate's
// row: one load a lane for up to 128 dims, where the float row took a load a lane per 8 dims)
// and the lanes hand bytes to each other with shuffles: elements 8b..8b+7 are the 8-byte half
// (b & 1) of lane (b & 15) / 2's chunk of pass b / 16.
struct Int8Row {
  const int8_t* row;   // 16-byte aligned
  uint32_t stride;     // bytes, a multiple of 16
  const float* scale;  // dims
  unsigned j;
  uint4 chunk = make_uint4(0, 0, 0, 0);
  int pass = -1;
  __device__ __forceinline__ void load(int p) {
    const uint32_t at = 128u * static_cast<uint32_t>(p) + 16u * j;
    chunk = at < stride ? __ldg(reinterpret_cast<const uint4*>(row + at)) : make_uint4(0, 0, 0, 0);
    pass = p;
  }
  __device__ __forceinline__ float main(uint32_t b, unsigned) {
    if (static_cast<int>(b >> 4) != pass) load(static_cast<int>(b >> 4));
    const int src = static_cast<int>((b & 15u) >> 1);
    const bool high = b & 1u;
    const uint32_t lo = __shfl_sync(kFull, high ? chunk.z : chunk.x, src, 8);
    const uint32_t hi = __shfl_sync(kFull, high ? chunk.w : chunk.y, src, 8);
    const uint32_t word = j < 4 ? lo : hi;
    const int8_t v = static_cast<int8_t>((word >> (8 * (j & 3u))) & 0xffu);
    return __fmul_rn(static_cast<float>(v), scale[8 * b + j]);
  }
  __device__ __forceinline__ float tail(uint32_t d) {
    if (static_cast<int>(d >> 7) != pass) load(static_cast<int>(d >> 7));
    const uint32_t e = d & 127u, w = (e >> 2) & 3u;
    const uint32_t mine = w == 0 ? chunk.x : w == 1 ? chunk.y : w == 2 ? chunk.z : chunk.w;
    const uint32_t word = __shfl_sync(kFull, mine, static_cast<int>(e >> 4), 8);
    const int8_t v = static_cast<int8_t>((word >> (8 * (d & 3u))) & 0xffu);
    return __fmul_rn(static_cast<float>(v), scale[d]);
  }
};

// fdot (src/core/fdot.hpp) of x and y over D floats by the 8 lanes of a group: lane j holds
// partial sum j (acc[j] += x[d] * y[d] for d = 8b + j), combined as
// ((a0 + a4) + (a1 + a5)) + ((a2 + a6) + (a3 + a7)), then the tail d >= 8 (D / 8) in order. Every
// lane of the group returns the result. x and y may be one object (a row's squared norm).
template <class X, class Y>
__device__ __forceinline__ float group_fdot(X& x, Y& y, uint32_t D, unsigned j, unsigned group_base) {
  const uint32_t nb = D / 8;
  float acc = 0.0f;
  for (uint32_t b = 0; b < nb; ++b) {
    const float xv = x.main(b, j);
    const float yv = y.main(b, j);
    acc = __fadd_rn(acc, __fmul_rn(xv, yv));
  }
  float p = __fadd_rn(acc, __shfl_down_sync(kFull, acc, 4, 8));  // lanes 0..3: a_j + a_(j+4)
  float r = __fadd_rn(p, __shfl_down_sync(kFull, p, 1, 8));      // lanes 0, 2: (p0 + p1), (p2 + p3)
  float s = __fadd_rn(r, __shfl_down_sync(kFull, r, 2, 8));      // lane 0: the sum
  s = __shfl_sync(kFull, s, static_cast<int>(group_base));
  for (uint32_t d = 8 * nb; d < D; ++d) {
    const float xv = x.tail(d);
    const float yv = y.tail(d);
    s = __fadd_rn(s, __fmul_rn(xv, yv));
  }
  return s;
}

// Rows is FloatRows or Int8Rows: row(id, scale, j) gives candidate id's row to lane j of a group.
struct FloatRows {
  const float* rows;
  uint32_t D;
  __device__ __forceinline__ FloatRow row(uint32_t id, const float*, unsigned) const {
    return {rows + static_cast<size_t>(id) * D};
  }
};
struct Int8Rows {
  const int8_t* rows;
  uint32_t D, stride;
  __device__ __forceinline__ Int8Row row(uint32_t id, const float* scale, unsigned j) const {
    return {rows + static_cast<size_t>(id) * stride, stride, scale, j};
  }
};

template <class Rows>
__global__ __launch_bounds__(kRerankThreads) void rerank_kernel(RerankArgs a, Rows rows) {
  extern __shared__ float sm[];
  const int q = blockIdx.x;
  const uint32_t D = a.rows.dims;
  const uint32_t t0 = a.q.term_off[q], T = a.q.term_off[q + 1] - t0;
  const int C = a.C, k = a.k;
  const int n = static_cast<int>(min(a.cand_count[q], static_cast<uint32_t>(C)));
  const uint2* cand = a.cand + static_cast<size_t>(q) * C;
  uint2* hits = a.out.hits + static_cast<size_t>(q) * k;
  if (!a.q.has_float[q]) {  // no float form: the ternary order stands
    for (int i = static_cast<int>(threadIdx.x); i < k; i += blockDim.x) hits[i] = i < n ? cand[i] : make_uint2(0, 0);
    if (threadIdx.x == 0) a.out.count[q] = static_cast<uint32_t>(min(n, k));
    return;
  }
  float* terms = sm;                                  // T * D
  float* score = terms + static_cast<size_t>(T) * D;  // C
  float* w = score + C;                               // T
  float* scale = w + T;                               // D, int8 rows only
  for (uint32_t i = threadIdx.x; i < T * D; i += blockDim.x) terms[i] = a.q.terms[static_cast<size_t>(t0) * D + i];
  for (uint32_t i = threadIdx.x; i < T; i += blockDim.x) w[i] = a.q.weights[t0 + i];
  if (a.rows.scale)
    for (uint32_t i = threadIdx.x; i < D; i += blockDim.x) scale[i] = a.rows.scale[i];
  __syncthreads();
  const unsigned lane = lane_id(), j = lane & 7u, gbase = lane & ~7u;
  const int group = static_cast<int>(threadIdx.x >> 3), n_groups = static_cast<int>(blockDim.x >> 3);
  // Every warp runs the same number of rounds (shuffles need the whole warp).
  const int rounds = (n + n_groups - 1) / n_groups;
  for (int r = 0; r < rounds; ++r) {
    const int c = r * n_groups + group;
    const bool live = c < n;
    const uint32_t id = live ? cand[c].x : cand[0].x;
    auto x = rows.row(id, scale, j);
    const float inv = __ldg(a.rows.inv + id);
    float s;
    if (a.q.combine == 1) {
      float cs[3];
#pragma unroll
      for (int t = 0; t < 3; ++t) {
        FloatRow y{terms + static_cast<size_t>(t) * D};
        cs[t] = __fmul_rn(group_fdot(x, y, D, j, gbase), inv);
      }
      const float sa = __fmul_rn(__fadd_rn(cs[0], 1.0f), 0.5f);
      const float sb = __fmul_rn(__fadd_rn(cs[1], 1.0f), 0.5f);
      const float sc = __fmul_rn(__fadd_rn(cs[2], 1.0f), 0.5f);
      s = __fdiv_rn(__fmul_rn(sb, sc), __fadd_rn(sa, 0.001f));
    } else {
      s = 0.0f;
      for (uint32_t t = 0; t < T; ++t) {
        FloatRow y{terms + static_cast<size_t>(t) * D};
        const float ct = __fmul_rn(group_fdot(x, y, D, j, gbase), inv);
        s = __fadd_rn(s, __fmul_rn(w[t], ct));
      }
    }
    if (live && j == 0) score[c] = s;
  }
  __syncthreads();
  // Rank of each candidate: the number that igla::better() puts ahead of it.
  for (int i = static_cast<int>(threadIdx.x); i < n; i += blockDim.x) {
    const float si = score[i];
    const uint32_t id = cand[i].x;
    int rank = 0;
    for (int m = 0; m < n; ++m) {
      const float sm2 = score[m];
      rank += (sm2 > si || (sm2 == si && cand[m].x < id)) ? 1 : 0;
    }
    if (rank < k) hits[rank] = make_uint2(id, __float_as_uint(si));
  }
  const int cnt = min(n, k);
  for (int i = cnt + static_cast<int>(threadIdx.x); i < k; i += blockDim.x) hits[i] = make_uint2(0, 0);
  if (threadIdx.x == 0) a.out.count[q] = static_cast<uint32_t>(cnt);
}

__device__ __forceinline__ float row_inv(float xx) { return xx > 0.0f ? __fdiv_rn(1.0f, __fsqrt_rn(xx)) : 0.0f; }

// One row a group of 8 lanes (group_fdot's order); scale: global memory (read through L1).
template <class Rows>
__global__ __launch_bounds__(256) void row_norms_kernel(Rows rows, const float* scale, size_t n, float* inv) {
  const unsigned lane = lane_id(), j = lane & 7u, gbase = lane & ~7u;
  const size_t groups = static_cast<size_t>(gridDim.x) * (blockDim.x >> 3);
  // A warp's 4 groups take rows base .. base + 3, so every lane of the warp runs the same number
  // of rounds (group_fdot shuffles the whole warp).
  const size_t warp_first = static_cast<size_t>(blockIdx.x) * (blockDim.x >> 3) + 4 * (threadIdx.x >> 5);
  for (size_t base = warp_first; base < n; base += groups) {
    const size_t i = base + (lane >> 3);
    auto x = rows.row(static_cast<uint32_t>(i < n ? i : n - 1), scale, j);
    const float v = row_inv(group_fdot(x, x, rows.D, j, gbase));
    if (i < n && j == 0) inv[i] = v;
  }
}

}  // namespace

void rerank_row_norms(const RerankRows& rows, size_t n, float* inv, cudaStream_t s) {
  if (n == 0) return;
  const size_t blocks = std::min<size_t>((n + 31) / 32, 65535);
  if (rows.rows8)
    row_norms_kernel<<<static_cast<int>(blocks), 256, 0, s>>>(Int8Rows{rows.rows8, rows.dims, rows.stride8}, rows.scale, n, inv);
  else
    row_norms_kernel<<<static_cast<int>(blocks), 256, 0, s>>>(FloatRows{rows.rows, rows.dims}, nullptr, n, inv);
  launch_check("row_norms_kernel");
}

size_t rerank_smem_bytes(const RerankRows& rows, int max_terms, int C) {
  return (static_cast<size_t>(max_terms) * rows.dims + static_cast<size_t>(C) + static_cast<size_t>(max_terms) +
          (rows.rows8 ? rows.dims : 0)) *
         sizeof(float);
}

void rerank_search(const RerankRows& rows, const RerankQueries& q, const uint2* cand, const uint32_t* cand_count, int C,
                   int k, OutHits out, cudaStream_t s) {
  if (q.n_q <= 0) return;
  const size_t smem = rerank_smem_bytes(rows, q.max_terms, C);
  RerankArgs a{rows, q, cand, cand_count, C, k, out};
  auto launch = [&](auto kernel, auto r) {
    if (smem > 48 * 1024)  // many terms of wide rows: past the default dynamic shared memory limit
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
    kernel<<<q.n_q, kRerankThreads, smem, s>>>(a, r);
  };
  if (rows.rows8)
    launch(rerank_kernel<Int8Rows>, Int8Rows{rows.rows8, rows.dims, rows.stride8});
  else
    launch(rerank_kernel<FloatRows>, FloatRows{rows.rows, rows.dims});
  launch_check("rerank_kernel");
}

}  // namespace igla::cuda
