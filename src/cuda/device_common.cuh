// igla CUDA backend: device helpers shared by the kernels (ranking keys, warp lists, scoring
// against bitplanes, the end of a query's list).
//
// Ranking keys. A hit (score, id) becomes one 64-bit key whose unsigned order is the order of
// igla::better(): the high word is the score mapped to an order-preserving unsigned integer
// (-0.0 folded onto +0.0, since better() treats them as equal), the low word is ~id, so of two
// equal scores the lower id has the larger key. Key 0 means "empty" (no real float maps to it
// except a negative NaN with every mantissa bit set).
//
// Warp lists. A top-K list (K <= 64) lives in one warp: lane i holds the i-th best key (and the
// (32 + i)-th when K > 32), entries past K hold 0. Candidates are merged in either one at a time
// (ballot + shuffle: the common case once the list is warm) or 32 at a time through a bitonic
// sort and merge.
#pragma once

#include <cstdint>

namespace igla::cuda {

constexpr unsigned kFull = 0xffffffffu;

__device__ __forceinline__ uint32_t ord_of(float s) {
  uint32_t u = __float_as_uint(s);
  if (u == 0x80000000u) u = 0;
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ __forceinline__ float score_of_ord(uint32_t o) {
  const uint32_t u = (o & 0x80000000u) ? (o & 0x7fffffffu) : ~o;
  return __uint_as_float(u);
}
__device__ __forceinline__ uint64_t make_key(float s, uint32_t id) {
  return (static_cast<uint64_t>(ord_of(s)) << 32) | static_cast<uint32_t>(~id);
}
__device__ __forceinline__ uint32_t key_id(uint64_t key) { return ~static_cast<uint32_t>(key); }
__device__ __forceinline__ float key_score(uint64_t key) { return score_of_ord(static_cast<uint32_t>(key >> 32)); }

__device__ __forceinline__ uint64_t shfl64(uint64_t v, int src) { return __shfl_sync(kFull, v, src); }
__device__ __forceinline__ uint64_t shfl_xor64(uint64_t v, int m) { return __shfl_xor_sync(kFull, v, m); }
__device__ __forceinline__ uint64_t shfl_up64(uint64_t v, int d) { return __shfl_up_sync(kFull, v, d); }
__device__ __forceinline__ uint64_t umax64(uint64_t a, uint64_t b) { return a > b ? a : b; }
__device__ __forceinline__ uint64_t umin64(uint64_t a, uint64_t b) { return a < b ? a : b; }
__device__ __forceinline__ unsigned lane_id() { return threadIdx.x & 31u; }

// Bitonic sort of one key per lane, descending across lanes 0..31.
__device__ __forceinline__ uint64_t warp_sort_desc(uint64_t x) {
  const unsigned lane = lane_id();
#pragma unroll
  for (int k = 2; k <= 32; k <<= 1) {
#pragma unroll
    for (int j = k >> 1; j > 0; j >>= 1) {
      const uint64_t o = shfl_xor64(x, j);
      const bool desc_block = (lane & k) == 0;
      const bool lower = (lane & j) == 0;
      x = (lower == desc_block) ? umax64(x, o) : umin64(x, o);
    }
  }
  return x;
}

// v, o: descending lists across lanes. Returns the 32 largest of both, descending.
__device__ __forceinline__ uint64_t warp_merge_desc(uint64_t v, uint64_t o) {
  const unsigned lane = lane_id();
  uint64_t x = umax64(v, shfl64(o, 31 - lane));
#pragma unroll
  for (int j = 16; j > 0; j >>= 1) {
    const uint64_t y = shfl_xor64(x, j);
    x = (lane & j) == 0 ? umax64(x, y) : umin64(x, y);
  }
  return x;
}

// v, o: descending lists across lanes. hi: the 32 largest of both, lo: the 32 smallest, each
// descending (the two halves of one bitonic merge).
__device__ __forceinline__ uint64_t warp_merge_split(uint64_t v, uint64_t o, uint64_t& lo) {
  const unsigned lane = lane_id();
  const uint64_t r = shfl64(o, 31 - lane);
  uint64_t x = umax64(v, r), y = umin64(v, r);
#pragma unroll
  for (int j = 16; j > 0; j >>= 1) {
    const uint64_t xo = shfl_xor64(x, j), yo = shfl_xor64(y, j);
    const bool low = (lane & j) == 0;
    x = low ? umax64(x, xo) : umin64(x, xo);
    y = low ? umax64(y, yo) : umin64(y, yo);
  }
  lo = y;
  return x;
}

// A top-K list in a warp (K in 1..kMaxListK = 64): lane i holds the i-th best key in v and, when
// K > 32, the (32 + i)-th in v2; entries past K are 0. K is warp-uniform, so a list of K <= 32
// takes the one-register path throughout.
struct WarpList {
  uint64_t v;   // rank lane
  uint64_t v2;  // rank 32 + lane (K > 32)
  int K;
  bool two;
  unsigned kmask, kmask2;  // lanes < K in v, lanes < K - 32 in v2

  __device__ __forceinline__ void init(int k) {
    K = k;
    two = k > 32;
    kmask = k >= 32 ? kFull : ((1u << k) - 1u);
    kmask2 = !two ? 0u : (k >= 64 ? kFull : ((1u << (k - 32)) - 1u));
    v = 0;
    v2 = 0;
  }
  __device__ __forceinline__ uint64_t threshold() const { return two ? shfl64(v2, K - 33) : shfl64(v, K - 1); }
  __device__ __forceinline__ void clear_tail() {
    const unsigned lane = lane_id();
    if (lane >= static_cast<unsigned>(K)) v = 0;
    if (two && lane + 32 >= static_cast<unsigned>(K)) v2 = 0;
  }
  // Rank r's key (r < 64) into memory order: entry r of a descending array.
  __device__ __forceinline__ void store(uint64_t* dst) const {
    const unsigned lane = lane_id();
    if (lane < static_cast<unsigned>(K)) dst[lane] = v;
    if (two && lane + 32 < static_cast<unsigned>(K)) dst[32 + lane] = v2;
  }
  // Inserts the warp-uniform key c, known to beat threshold().
  __device__ __forceinline__ void insert_one(uint64_t c) {
    const unsigned lane = lane_id();
    unsigned pos = __popc(__ballot_sync(kFull, v > c) & kmask);
    const uint64_t up = shfl_up64(v, 1);
    if (two) {
      pos += __popc(__ballot_sync(kFull, v2 > c) & kmask2);
      const uint64_t last = shfl64(v, 31), up2 = shfl_up64(v2, 1);
      if (lane + 32 > pos) v2 = lane == 0 ? last : up2;
      else if (lane + 32 == pos) v2 = c;
    }
    if (lane > pos) v = up;
    else if (lane == pos) v = c;
    clear_tail();
  }
  // Merges a descending 32-list x (whole, already masked) into the list.
  __device__ __forceinline__ void merge32(uint64_t x) {
    if (!two) {
      v = warp_merge_desc(v, x);
    } else {
      uint64_t lo;
      v = warp_merge_split(v, x, lo);
      v2 = warp_merge_desc(v2, lo);
    }
    clear_tail();
  }
  // Offers one candidate per lane (0: none). Exact: afterwards the list holds the K best of the
  // list and the candidates.
  __device__ __forceinline__ void offer(uint64_t c) {
    uint64_t thr = threshold();
    unsigned m = __ballot_sync(kFull, c > thr);
    if (!m) return;
    if (__popc(m) <= 3) {
      while (m) {
        const int src = __ffs(m) - 1;
        m &= m - 1;
        const uint64_t cc = shfl64(c, src);
        if (cc > thr) {
          insert_one(cc);
          thr = threshold();
        }
      }
    } else {
      merge32(warp_sort_desc(c > thr ? c : 0));
    }
  }
  // Merges 32 keys of another list o (descending across lanes, zero past its end).
  __device__ __forceinline__ void merge_sorted(uint64_t o) {
    const uint64_t thr = threshold();
    const unsigned m = __ballot_sync(kFull, o > thr);
    if (!m) return;
    if (__popc(m) <= 2) offer(o);
    else merge32(o);
  }
  // Merges another list of this K held as (o, o2) like v, v2.
  __device__ __forceinline__ void merge_list(uint64_t o, uint64_t o2) {
    merge_sorted(o);
    if (two) merge_sorted(o2);
  }
  // Merges the list of this K stored descending at src (entries past K not read).
  __device__ __forceinline__ void merge_stored(const uint64_t* src) {
    const unsigned lane = lane_id();
    const uint64_t o = lane < static_cast<unsigned>(K) ? src[lane] : 0;
    const uint64_t o2 = two && lane + 32 < static_cast<unsigned>(K) ? src[32 + lane] : 0;
    merge_list(o, o2);
  }
};

// float(dot) * w ... in exactly combine_score's order (no contraction: explicit _rn intrinsics).
__device__ __forceinline__ float sum_term(float s, float w, int dot) {
  return __fadd_rn(s, __fmul_rn(w, __int2float_rn(dot)));
}
__device__ __forceinline__ float cosmul_score(const int* dots, const float* w, float inv) {
  const float ca = __fmul_rn(__fmul_rn(w[0], __int2float_rn(dots[0])), inv);
  const float cb = __fmul_rn(__fmul_rn(w[1], __int2float_rn(dots[1])), inv);
  const float cc = __fmul_rn(__fmul_rn(w[2], __int2float_rn(dots[2])), inv);
  const float sa = __fmul_rn(__fadd_rn(ca, 1.0f), 0.5f);
  const float sb = __fmul_rn(__fadd_rn(cb, 1.0f), 0.5f);
  const float sc = __fmul_rn(__fadd_rn(cc, 1.0f), 0.5f);
  return __fdiv_rn(__fmul_rn(sb, sc), __fadd_rn(sa, 0.001f));
}

// Scoring of one word against a query's bitplanes (popc, one-query and sort paths). kGlobal: the
// word's planes lie in global memory (read through the read-only cache); false: in shared memory
// (one_term_bound_kernel's sample), plain loads.
template <bool kGlobal>
__device__ __forceinline__ uint64_t load_plane(const uint64_t* p) {
  if constexpr (kGlobal) return __ldg(p);
  else return *p;
}
template <bool kGlobal = true>
__device__ __forceinline__ int dot_planes(const uint64_t* wp, const uint64_t* qp, uint32_t W) {
  int dot = 0;
  for (uint32_t j = 0; j < W; ++j) {
    const uint64_t nz = load_plane<kGlobal>(wp + j * 16), sg = load_plane<kGlobal>(wp + j * 16 + 8);
    const uint64_t m = nz & qp[j];
    dot += __popcll(m) - 2 * __popcll(m & (sg ^ qp[W + j]));
  }
  return dot;
}

// combine_score for word x over the T terms whose planes (2W words each) start at qp (kGlobal:
// where codes lie, as dot_planes).
template <bool kGlobal = true>
__device__ __forceinline__ float score_generic(uint32_t x, const uint64_t* codes, uint32_t W, const uint64_t* qp,
                                               const float* w, uint32_t T, int combine, float inv) {
  const uint64_t* wp = codes + static_cast<size_t>(x >> 3) * W * 16 + (x & 7);
  if (combine == 0) {
    float s = 0.0f;
    for (uint32_t t = 0; t < T; ++t) s = sum_term(s, w[t], dot_planes<kGlobal>(wp, qp + t * 2 * W, W));
    return __fmul_rn(s, inv);
  }
  int d[3];
#pragma unroll
  for (int t = 0; t < 3; ++t) d[t] = dot_planes<kGlobal>(wp, qp + t * 2 * W, W);
  return cosmul_score(d, w, inv);
}

// Shared memory of the popc and mt list kernels (one CTA a query or a query's split): 8 warp lists
// of 64 keys, then query q's T terms' bitplanes (2W words each) and their weights, loaded by the
// whole CTA, which is synchronized on return.
struct SharedQuery {
  uint64_t* lists;  // 8 x 64
  uint64_t* qp;     // T x 2W
  float* w;         // T
  uint32_t T;
};
__device__ __forceinline__ SharedQuery load_shared_query(uint64_t* sm, int q, uint32_t W, const uint64_t* planes,
                                                         const float* weights, const uint32_t* term_off) {
  const uint32_t t0 = term_off[q], T = term_off[q + 1] - t0;
  SharedQuery s{sm, sm + 8 * 64, nullptr, T};
  s.w = reinterpret_cast<float*>(s.qp + T * 2 * W);
  for (uint32_t i = threadIdx.x; i < T * 2 * W; i += blockDim.x) s.qp[i] = planes[static_cast<size_t>(t0) * 2 * W + i];
  for (uint32_t i = threadIdx.x; i < T; i += blockDim.x) s.w[i] = weights[t0 + i];
  __syncthreads();
  return s;
}

// The end of a query's top-K list (merge and popc paths): its k hits without the query's
// exclusions, and the tree merge of a CTA's warp lists.
__device__ __forceinline__ void finalize_list(const WarpList& list, int q, int k, const uint32_t* excl,
                                              const uint32_t* excl_off, uint2* hits, uint32_t* count) {
  const unsigned lane = lane_id();
  const uint32_t id = key_id(list.v), id2 = key_id(list.v2);
  bool valid = lane < static_cast<unsigned>(list.K) && list.v != 0;
  bool valid2 = list.two && lane + 32 < static_cast<unsigned>(list.K) && list.v2 != 0;
  const uint32_t e0 = excl_off[q], e1 = excl_off[q + 1];
  for (uint32_t e = e0; e < e1; ++e) {
    const uint32_t x = excl[e];
    if (x == id) valid = false;
    if (x == id2) valid2 = false;
  }
  const unsigned m = __ballot_sync(kFull, valid), m2 = __ballot_sync(kFull, valid2);
  const unsigned below = (1u << lane) - 1u;
  const int pos = __popc(m & below), pos2 = __popc(m) + __popc(m2 & below);
  uint2* row = hits + static_cast<size_t>(q) * k;
  if (valid && pos < k) row[pos] = make_uint2(id, __float_as_uint(key_score(list.v)));
  if (valid2 && pos2 < k) row[pos2] = make_uint2(id2, __float_as_uint(key_score(list.v2)));
  const int n = min(__popc(m) + __popc(m2), k);
  if (lane == 0) count[q] = static_cast<uint32_t>(n);
  for (int j = n + static_cast<int>(lane); j < k; j += 32) row[j] = make_uint2(0, 0);
}

// Tree merge of the lists of warps [w0, w0 + n) (n a power of two) through sh (kMaxListK keys a
// warp); the result ends in warp w0's `list`. Every thread of the block must call it.
__device__ __forceinline__ void tree_merge(WarpList& list, uint64_t (*sh)[64], int warp, int w0, int n) {
  const unsigned lane = lane_id();
  for (int h = n / 2; h >= 1; h /= 2) {
    const int rel = warp - w0;
    if (rel >= h && rel < 2 * h) {
      sh[warp][lane] = list.v;
      sh[warp][32 + lane] = list.v2;
    }
    __syncthreads();
    if (rel >= 0 && rel < h) list.merge_list(sh[warp + h][lane], sh[warp + h][32 + lane]);
    __syncthreads();
  }
}

}  // namespace igla::cuda
