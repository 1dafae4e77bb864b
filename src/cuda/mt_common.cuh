// igla CUDA backend: pieces of the mt path's scan shared by its two forms, the per-query scan
// (multi.cu: each query's terms on the tensor cores) and the shared-terms scan (multi_shared.cu:
// the distinct terms of a chunk on the tensor cores once, their dots combined per query):
// mma.sync and cp.async wrappers, the A-fragment loader, and the fixed-point prefilter. Both forms
// must keep exactly the same keys (the same prefilter, the same float order), so they live here once.
#pragma once

#include <climits>
#include <cstdint>

#include "cuda/device_common.cuh"
#include "cuda/kernels.hpp"

namespace igla::cuda {

__device__ __forceinline__ void mma_s8(const uint32_t (&a)[4], uint32_t b0, uint32_t b1, int (&c)[4]) {
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ void cp_async16(void* dst, const void* src) {
  const unsigned d = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(d), "l"(src));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
// One tile (bytes: a multiple of 16) into shared memory by the whole block; the caller commits.
__device__ __forceinline__ void cp_async_tile(int8_t* dst, const int8_t* src, uint32_t bytes) {
  const int4* s4 = reinterpret_cast<const int4*>(src);
  int4* d4 = reinterpret_cast<int4*>(dst);
  for (uint32_t i = threadIdx.x; i < bytes / 16; i += blockDim.x) cp_async16(d4 + i, s4 + i);
}
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// Four trits of term t (k .. k + 3) packed little-endian, 0 past the term count or the dims.
__device__ __forceinline__ uint32_t trits4(const int8_t* src, uint32_t T, uint32_t t, uint32_t dims, uint32_t k) {
  if (t >= T) return 0;
  uint32_t v = 0;
#pragma unroll
  for (uint32_t e = 0; e < 4; ++e)
    if (k + e < dims) v |= static_cast<uint32_t>(static_cast<uint8_t>(src[static_cast<size_t>(t) * dims + k + e])) << (8 * e);
  return v;
}

// What either scan reads and writes: the mma tiles, the chunk's queries, their bounds and
// candidate lists (multi_search builds it once).
struct MtScanArgs {
  const int8_t* tiled;
  uint32_t stride, Kp, n_tiles, L, dims;
  int tiles_per_split, n_q;  // tiles_per_split: the per-query scan's vocabulary splits
  const int8_t* trits;
  const float* weights;
  const uint32_t* term_off;
  const uint64_t* bound;
  uint64_t* cand;
  uint32_t* cand_n;
  uint32_t cap;
  int prefilter;  // 1: the fixed-point prefilter before the exact score (A/B: IGLA_CUDA_MT_PREFILTER)
};

// The shared-terms scan (multi_shared.cu), called by multi_search where shared_terms_fit.
size_t shared_terms_scratch_bytes(int n_q);
const void* shared_terms_kernel(int ks);  // its scan kernel for Kp / 32 (shared memory attributes)
void shared_terms_scan(const DeviceIndex& ix, const MtScanArgs& sa, const ChunkQueries& q, int num_sms, void* scratch,
                       cudaStream_t s);

// The bound pass over a chunk's distinct terms (multi_shared.cu), taken by sample_bounds where the
// chunk gives them and they fit (false: not taken, nothing launched): each distinct term's dots
// with the gathered sample once, combined per query into the per-query bound pass's keys
// (mt_list_kernel<false>), so the bounds are the same. scratch: shared_terms_bounds_scratch_bytes.
struct SampleWords {  // gather_sample_kernel's output: n words' codes (the codes' layout), inverse norms, ids
  const uint64_t* codes;
  const float* inv;
  const uint32_t* ids;
  uint32_t n;
};
size_t shared_terms_bounds_scratch_bytes(const DeviceIndex& ix, uint64_t S);
bool shared_terms_bounds(const DeviceIndex& ix, const ChunkQueries& q, int K, const SampleWords& sw, size_t max_smem,
                         void* scratch, uint64_t* bound, uint32_t* cand_n, cudaStream_t s);
const void* shared_terms_bound_kernel();  // its bound kernel (shared memory attributes)

// The prefilter: the exact score (three I2F, quarter rate, and ~20 instructions a word) only for
// words whose fixed-point sum si = sum_t W_t dot_t, W_t = rn(w_t * S), S = unit / max |w_t| (unit
// 2^20; the shared-terms scan's 127 * 256, so that each W_t is two int8 digits for dp4a), clears
// the tile's integer threshold. A key >= bound (score >= ts > 0) needs s >= ts * rim / (1 + 2^-24)
// (inv <= 1 / rim), the exact sum R >= s - 3.1e-5 sum |w_t| (four roundings of terms <= 128
// |w_t|), si >= S R - 0.57 sum |dot_t| >= S R - 292 (|W_t - w_t S| <= 0.57 at either unit;
// |si| <= 2^29); so si > floor(S (ts * rim * 0.9999 - 1e-4 sum |w_t|)) - 400 is necessary (the
// 0.9999 and the extra 76 cover the float arithmetic of the threshold itself).
struct MtPrefilter {
  int Wi[4] = {0, 0, 0, 0};
  float S = 0.0f, sumw = 0.0f, ts = 0.0f;
  bool pre = false;

  // w: the query's weights (0 past its terms); bound: its key bound (0 or ~0: no prefilter);
  // unit: the largest |W_t|.
  __device__ __forceinline__ void init(const float (&w)[4], uint64_t bound, bool on, float unit = 1048576.0f) {
    if (!on || bound == 0 || bound == ~0ull) return;
    ts = key_score(bound);
    float wmax = 0.0f;
#pragma unroll
    for (int t = 0; t < 4; ++t) {
      wmax = fmaxf(wmax, fabsf(w[t]));
      sumw = __fadd_rn(sumw, fabsf(w[t]));
    }
    pre = ts > 0.0f && wmax > 0.0f && wmax < 1e30f && ts < 1e30f;
    if (pre) {
      S = __fdiv_rn(unit, wmax);
#pragma unroll
      for (int t = 0; t < 4; ++t) Wi[t] = __float2int_rn(__fmul_rn(w[t], S));
    }
  }
  // The integer threshold of a tile whose words' inverse norms are <= 1 / rim; INT_MIN: no prefilter.
  __device__ __forceinline__ int tile_threshold(float rim) const { return threshold(pre, S, sumw, ts, rim); }
  __device__ static __forceinline__ int threshold(bool pre, float S, float sumw, float ts, float rim) {
    if (!pre) return INT_MIN;
    const float tr = __fsub_rn(__fmul_rn(__fmul_rn(ts, rim), 0.9999f), __fmul_rn(1e-4f, sumw));
    const float tf = __fsub_rn(__fmul_rn(tr, S), 400.0f);
    if (!(tf < 1.0e9f)) return INT_MAX;  // also NaN-free: ts, rim > 0 (rim = inf: an all-zero tile)
    if (tf < -1.0e9f) return INT_MIN;
    return __float2int_rd(tf);
  }
};

// The exact score of a word from its term dots: combine_score's Sum, in its float order.
__device__ __forceinline__ float mt_exact_score(const float (&w)[4], uint32_t T, int d0, int d1, int d2, int d3,
                                                float inv) {
  float s = 0.0f;
  s = sum_term(s, w[0], d0);
  if (T > 1) s = sum_term(s, w[1], d1);
  if (T > 2) s = sum_term(s, w[2], d2);
  if (T > 3) s = sum_term(s, w[3], d3);
  return __fmul_rn(s, inv);
}

}  // namespace igla::cuda
