// igla CUDA backend: one query (kernels.hpp, SingleArgs, PersistArgs): single_kernel (one launch
// a query) and persistent_kernel (the same body, single_body, in a resident grid that takes the
// queries from a mailbox in mapped host memory); their plans, launches and shared memory limits.
#include "cuda/kernels.hpp"

#include <algorithm>
#include <array>
#include <utility>

#include "cuda/device_common.cuh"

namespace igla::cuda {

namespace {

// ---------------------------------------------------------------------------------------------
// One query: a single launch (kernels.hpp, SingleArgs). kW > 0: one-term Sum over W == kW plane
// words (query planes read straight from the parameter bank, loads fully unrolled); kW == 0: any
// query (terms and weights copied to shared memory, score_generic).
//
// Selection without serial list merges (run 18: the last CTA's 8-warp merge of 196 lists cost
// ~8 us of a 27 us search): select_lists takes n descending lists of len keys in shared memory
// (keys unique, 0 = empty) and writes their K best to out[0..K). A bound b with at least K keys
// >= b is the largest over groups of 32 lists of (the score word of) the group's K-th best head
// (K > 32: the ceil(K / 2)-th best second entry), one warp sort per group; every key >= b is a candidate (compacted with one shared atomic a
// warp), and a candidate's rank is the number of candidates above it (all ranked in parallel).
// Candidates: at most n * len. Three barriers a call.

constexpr int kSingleThreads = 256;
constexpr int kSingleWarps = kSingleThreads / 32;
constexpr int kSingleUnroll = 4;  // words per thread scored before their keys are selected

struct SelectShared {
  unsigned long long bound;
  int n_cand;
};

__device__ __forceinline__ void select_lists(const uint64_t* lists, int n, int len, int K, uint64_t* cand,
                                             uint64_t* out, SelectShared& ss) {
  const unsigned warp = threadIdx.x >> 5, lane = lane_id();
  // Entry j of each list (j = 0 for K <= 32, 1 for K <= 64): the m-th best of a group's entries j,
  // m = ceil(K / (j + 1)), has m lists with j + 1 keys each at least as high: >= K keys.
  const int j_ent = (K - 1) / 32, m_th = (K + j_ent) / (j_ent + 1);
  for (int g = static_cast<int>(warp) * 32; g < n; g += kSingleThreads) {  // warp-uniform
    // The m-th best score word of the group's entries j: at least K keys are >= (it << 32).
    const int l = g + static_cast<int>(lane);
    uint32_t h = l < n && j_ent < len ? static_cast<uint32_t>(lists[static_cast<size_t>(l) * len + j_ent] >> 32) : 0;
#pragma unroll
    for (int k = 2; k <= 32; k <<= 1) {  // bitonic sort, descending across lanes
#pragma unroll
      for (int j = k >> 1; j > 0; j >>= 1) {
        const uint32_t o = __shfl_xor_sync(kFull, h, j);
        h = (((lane & j) == 0) == ((lane & k) == 0)) ? max(h, o) : min(h, o);
      }
    }
    if (lane == static_cast<unsigned>(m_th - 1) && h)
      atomicMax(&ss.bound, static_cast<unsigned long long>(h) << 32);
  }
  __syncthreads();
  const uint64_t b = ss.bound ? ss.bound : 1;  // no group with K heads: every key
  const int total = n * len;
  for (int i0 = static_cast<int>(warp) * 32; i0 < total; i0 += kSingleThreads) {  // warp-uniform
    const int i = i0 + static_cast<int>(lane);
    const uint64_t c = i < total ? lists[i] : 0;
    const bool take = c >= b;
    const unsigned mask = __ballot_sync(kFull, take);
    if (!mask) continue;
    int at = 0;
    if (lane == 0) at = atomicAdd(&ss.n_cand, __popc(mask));  // one atomic a warp
    at = __shfl_sync(kFull, at, 0);
    if (take) cand[at + __popc(mask & ((1u << lane) - 1u))] = c;
  }
  __syncthreads();
  const int m = ss.n_cand;
  for (int i = m + static_cast<int>(threadIdx.x); i < K; i += kSingleThreads) out[i] = 0;  // ranks < m are written below
  for (int i = static_cast<int>(threadIdx.x); i < m; i += kSingleThreads) {
    const uint64_t c = cand[i];
    int r = 0;
    for (int j = 0; j < m; ++j) r += cand[j] > c;
    if (r < K) out[r] = c;
  }
  __syncthreads();
  if (threadIdx.x == 0) {  // ready for the next call (barriers of the caller come between)
    ss.bound = 0;
    ss.n_cand = 0;
  }
}

// ---------------------------------------------------------------------------------------------
// Prefix mode (SingleArgs::prefix = c > 0; K > 32, the two-stage query's 50 candidates +
// exclusions): each CTA scores one pass of 1024 words taken 8-word group by group with a stride of
// n_splits groups (so words of neighbouring ids, e.g. the frequent ones, spread over the CTAs), keeps
// only its c best keys (select_lists with K = c <= 32: the cheap K <= 32 select) and writes them.
// The last CTA takes the K best of the union U of those lists (select_top: a histogram of the score
// words, not sorted lists) and checks that it is exact: a CTA whose c-th key is among them may hold
// more keys above the K-th, and its words are scored again (rescan_split; rare when c >= 8: the
// K best would have to put c of their keys in one CTA). Every other CTA's unwritten keys are below
// its c-th key, hence below the K-th of U, hence outside the top K of all words.

constexpr int kTopBins = 1024;

// Dynamic shared memory after the query: the lists (every split's kept keys in the last CTA; a
// thread's kSingleUnroll keys in one pass), as many candidates (prefix mode: at least K + one
// rescanned split's words), the prefix mode's histogram.
__host__ __device__ constexpr int single_list_cap(int n_splits, int per_split) {
  return n_splits * per_split > kSingleThreads * kSingleUnroll ? n_splits * per_split : kSingleThreads * kSingleUnroll;
}
__host__ __device__ constexpr int single_cand_cap(int list_cap, int K, bool prefix) {
  return prefix && K + kSingleThreads * kSingleUnroll > list_cap ? K + kSingleThreads * kSingleUnroll : list_cap;
}

struct TopShared {
  uint32_t lo, hi;
  int bin, n_cand;
};

// Writes the ranks < K of the m unique keys cand[0..m) into out[0..K) (0 past m).
__device__ __forceinline__ void rank_into(const uint64_t* cand, int m, int K, uint64_t* out) {
  for (int i = m + static_cast<int>(threadIdx.x); i < K; i += kSingleThreads) out[i] = 0;
  for (int i = static_cast<int>(threadIdx.x); i < m; i += kSingleThreads) {
    const uint64_t c = cand[i];
    int r = 0;
    for (int j = 0; j < m; ++j) r += cand[j] > c;
    if (r < K) out[r] = c;
  }
}

// The K best of the n unique keys keys[0..n) (0 = empty, skipped) into out[0..K), descending (0
// past the nonzero keys). Score words are binned linearly between the lowest and highest into
// kTopBins bins; the keys of the bins from the top down to the one where the count reaches K are
// the candidates (K plus that bin's other keys), ranked by counting. hist: kTopBins words. Barriers
// inside; every thread of the CTA calls it.
__device__ __noinline__ void select_top(const uint64_t* keys, int n, int K, uint64_t* cand, uint64_t* out,
                                        uint32_t* hist, TopShared& ts) {
  const unsigned warp = threadIdx.x >> 5, lane = lane_id();
  for (int i = static_cast<int>(threadIdx.x); i < kTopBins; i += kSingleThreads) hist[i] = 0;
  if (threadIdx.x == 0) {
    ts.lo = ~0u;
    ts.hi = 0;
    ts.bin = 0;
    ts.n_cand = 0;
  }
  __syncthreads();
  uint32_t lo = ~0u, hi = 0;
  for (int i = static_cast<int>(threadIdx.x); i < n; i += kSingleThreads) {
    const uint64_t k = keys[i];
    if (!k) continue;
    const uint32_t s = static_cast<uint32_t>(k >> 32);
    lo = min(lo, s);
    hi = max(hi, s);
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    lo = min(lo, __shfl_xor_sync(kFull, lo, o));
    hi = max(hi, __shfl_xor_sync(kFull, hi, o));
  }
  if (lane == 0) {
    atomicMin(&ts.lo, lo);
    atomicMax(&ts.hi, hi);
  }
  __syncthreads();
  lo = ts.lo;
  hi = ts.hi;
  const bool any = lo <= hi;  // uniform
  int shift = 0;
  while (any && ((hi - lo) >> shift) >= static_cast<uint32_t>(kTopBins)) ++shift;
  if (any)
    for (int i = static_cast<int>(threadIdx.x); i < n; i += kSingleThreads) {
      const uint64_t k = keys[i];
      if (k) atomicAdd(&hist[(static_cast<uint32_t>(k >> 32) - lo) >> shift], 1u);
    }
  __syncthreads();
  if (warp == 0) {  // the highest bin b with count(bins >= b) >= K (0 when fewer than K keys)
    constexpr int kPer = kTopBins / 32;
    int own = 0;
    for (int j = 0; j < kPer; ++j) own += static_cast<int>(hist[lane * kPer + j]);
    int suf = own;  // keys in the bins of lanes >= lane
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const int v = __shfl_down_sync(kFull, suf, o);
      if (lane + o < 32) suf += v;
    }
    int nxt = __shfl_down_sync(kFull, suf, 1);
    if (lane == 31) nxt = 0;
    if (suf >= K && nxt < K) {  // one lane at most (suf does not grow with the lane)
      int acc = nxt;
      for (int b = static_cast<int>(lane) * kPer + kPer - 1; b >= static_cast<int>(lane) * kPer; --b) {
        acc += static_cast<int>(hist[b]);
        if (acc >= K) {
          ts.bin = b;
          break;
        }
      }
    }
  }
  __syncthreads();
  const uint32_t bin = static_cast<uint32_t>(ts.bin);
  for (int i0 = static_cast<int>(warp) * 32; i0 < n; i0 += kSingleThreads) {  // warp-uniform
    const int i = i0 + static_cast<int>(lane);
    const uint64_t c = i < n ? keys[i] : 0;
    const bool take = any && c && ((static_cast<uint32_t>(c >> 32) - lo) >> shift) >= bin;
    const unsigned mask = __ballot_sync(kFull, take);
    if (!mask) continue;
    int at = 0;
    if (lane == 0) at = atomicAdd(&ts.n_cand, __popc(mask));
    at = __shfl_sync(kFull, at, 0);
    if (take) cand[at + __popc(mask & ((1u << lane) - 1u))] = c;
  }
  __syncthreads();
  rank_into(cand, ts.n_cand, K, out);
  __syncthreads();
}

// Word u (0..kSingleUnroll) of thread t in CTA `split` of a prefix-mode grid: 8-word groups
// split, split + n_splits, ... (a thread's 8 neighbours read one 64-byte run of each plane).
__device__ __forceinline__ uint32_t prefix_word(int split, int n_splits, int u, unsigned t) {
  const uint32_t g = static_cast<uint32_t>(split) +
                     static_cast<uint32_t>(n_splits) * (static_cast<uint32_t>(u) * (kSingleThreads / 8) + (t >> 3));
  return (g << 3) | (t & 7u);
}

// Sorts v[0..N) descending (registers; N small, fully unrolled).
template <int N>
__device__ __forceinline__ void sort_desc_local(uint64_t (&v)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i)
#pragma unroll
    for (int j = 0; j + 1 < N - i; ++j) {
      const uint64_t x = umax64(v[j], v[j + 1]), y = umin64(v[j], v[j + 1]);
      v[j] = x;
      v[j + 1] = y;
    }
}

__device__ __forceinline__ unsigned long long trace_clock() { return clock64(); }

// The key of word x (< a.L) for the query a (single_body's scoring, one word; the prefix mode's rescans).
template <int kW>
__device__ __forceinline__ uint64_t score_one(const SingleArgs& a, uint32_t x, const uint64_t (&qnz)[kW > 0 ? kW : 1],
                                              const uint64_t (&qsg)[kW > 0 ? kW : 1], const uint64_t* qp,
                                              const float* ws, float w0) {
  if constexpr (kW > 0) {
    const uint64_t* wp = a.codes + static_cast<size_t>(x >> 3) * kW * 16 + (x & 7);
    int dot = 0;
#pragma unroll
    for (int j = 0; j < kW; ++j) {
      const uint64_t m = __ldg(wp + j * 16) & qnz[j];
      dot += __popcll(m) - 2 * __popcll(m & (__ldg(wp + j * 16 + 8) ^ qsg[j]));
    }
    return make_key(__fmul_rn(sum_term(0.0f, w0, dot), __ldg(a.inv + x)), x);
  } else {
    return make_key(score_generic(x, a.codes, a.W, qp, ws, static_cast<uint32_t>(a.T), a.combine, __ldg(a.inv + x)), x);
  }
}

// The prefix mode's last CTA (see select_top): best[0..K) = the K best of all words, from U =
// lists[0..n_splits * c) (each CTA's c best, descending). cand: single_cand_cap keys; hist: kTopBins words.
template <int kW>
__device__ __noinline__ void prefix_merge(const SingleArgs& a, const uint64_t* lists, uint64_t* cand, uint32_t* hist,
                                          uint64_t* best, TopShared& ts, const uint64_t (&qnz)[kW > 0 ? kW : 1],
                                          const uint64_t (&qsg)[kW > 0 ? kW : 1], const uint64_t* qp,
                                          const float* ws, float w0) {
  const int c = a.prefix, K = a.K, n = a.n_splits;
  select_top(lists, n * c, K, cand, best, hist, ts);
  const uint64_t b0 = max(best[K - 1], uint64_t{1});  // fewer than K keys in U: any full list may hold more
  for (int s0 = 0; s0 < n; s0 += kSingleThreads) {
    const int mine = s0 + static_cast<int>(threadIdx.x);
    if (!__syncthreads_or(mine < n && lists[static_cast<size_t>(mine) * c + c - 1] >= b0)) continue;
    const int s1 = min(n, s0 + kSingleThreads);
    for (int s = s0; s < s1; ++s) {  // uniform: a CTA whose c-th key is among the K best of U
      const uint64_t* own = lists + static_cast<size_t>(s) * c;
      if (own[c - 1] < b0) continue;
      const uint64_t b = max(best[K - 1], uint64_t{1});
      const int held = __syncthreads_count(threadIdx.x < static_cast<unsigned>(K) && best[threadIdx.x] != 0);
      if (threadIdx.x < static_cast<unsigned>(held)) cand[threadIdx.x] = best[threadIdx.x];  // (K <= 64 < threads)
      if (threadIdx.x == 0) ts.n_cand = held;
      __syncthreads();
#pragma unroll
      for (int u = 0; u < kSingleUnroll; ++u) {
        const uint32_t x = prefix_word(s, n, u, threadIdx.x);
        uint64_t key = x < a.L ? score_one<kW>(a, x, qnz, qsg, qp, ws, w0) : 0;
        for (int j = 0; j < c; ++j)
          if (own[j] == key) key = 0;  // already in U (and so in cand if among the K best)
        const bool take = key >= b;
        const unsigned mask = __ballot_sync(kFull, take);
        if (!mask) continue;
        int at = 0;
        if (lane_id() == 0) at = atomicAdd(&ts.n_cand, __popc(mask));
        at = __shfl_sync(kFull, at, 0);
        if (take) cand[at + __popc(mask & ((1u << lane_id()) - 1u))] = key;
      }
      __syncthreads();
      rank_into(cand, ts.n_cand, K, best);
      __syncthreads();
    }
  }
}

// The whole one-query search of one CTA (split blockIdx.x) over the query a, which lives in the
// launch's parameters (single_kernel) or in shared memory (persistent_kernel); sm: the dynamic
// shared memory (SinglePlan::smem). Returns with the CTA's threads at different points (callers
// that go on put a barrier after it).
template <int kW>
__device__ __forceinline__ void single_body(const SingleArgs& a, uint64_t* sm) {
  __shared__ uint64_t best[kMaxListK];  // this CTA's top K
  __shared__ SelectShared ss;
  __shared__ TopShared ts;
  __shared__ bool last;
  const unsigned long long t0 = a.mode == 4 ? trace_clock() : 0;
  if (threadIdx.x == 0) {  // select_lists expects it zeroed (ordered by the barrier before its first call)
    ss.bound = 0;
    ss.n_cand = 0;
  }
  unsigned long long tr[6] = {};
  const unsigned warp = threadIdx.x >> 5, lane = lane_id();
  const int split = static_cast<int>(blockIdx.x);
  uint2* const hits = reinterpret_cast<uint2*>(a.out + 2);
  if (a.mode == 2 || a.mode == 5) {  // timing floor: launch, one CTA signals, nothing scored (wrong results)
    if (split == 0 && warp == 0) {
      if (lane == 0) a.out[1] = 0;
      __threadfence_system();
      __syncwarp();
      if (lane == 0) *reinterpret_cast<volatile uint32_t*>(a.out) = a.seq;
    }
    return;
  }
  const uint32_t W = kW ? static_cast<uint32_t>(kW) : a.W;
  const uint32_t n_planes = kW ? 0u : static_cast<uint32_t>(a.T) * 2 * W;
  uint64_t* qp = sm;
  float* ws = reinterpret_cast<float*>(sm + n_planes);
  // Then: lists (max(n_splits * K, kSingleThreads * kSingleUnroll) keys) and as many candidates.
  uint64_t* lists = sm + (kW ? 0u : n_planes + (static_cast<uint32_t>(a.T) + 1) / 2);
  const bool prefix = a.prefix > 0;  // uniform
  const int per_split = prefix ? a.prefix : a.K;  // keys a CTA keeps
  const int list_cap = single_list_cap(a.n_splits, per_split);
  uint64_t* cand = lists + list_cap;
  uint32_t* hist = reinterpret_cast<uint32_t*>(cand + single_cand_cap(list_cap, a.K, prefix));
  if constexpr (kW == 0) {
    for (uint32_t i = threadIdx.x; i < n_planes; i += kSingleThreads) qp[i] = a.planes[i];
    for (int i = static_cast<int>(threadIdx.x); i < a.T; i += kSingleThreads) ws[i] = a.w[i];
    __syncthreads();
  }
  // Prefix mode: one pass over the words prefix_word gives; else the split's range in passes.
  const uint32_t s0 = prefix ? 0u : static_cast<uint32_t>(split) * a.split_len,
                 s1 = prefix ? a.L : min(s0 + a.split_len, a.L);
  const bool one_pass = prefix || a.split_len <= kSingleThreads * kSingleUnroll;  // uniform
  uint64_t qnz[kW > 0 ? kW : 1], qsg[kW > 0 ? kW : 1];  // the query's planes (specialised form)
  if constexpr (kW > 0) {
#pragma unroll
    for (int j = 0; j < kW; ++j) {
      qnz[j] = a.planes[j];
      qsg[j] = a.planes[kW + j];
    }
  }
  const float w0 = a.w[0];
  WarpList list;
  list.init(a.K);
  for (uint32_t base = s0; base < s1; base = prefix ? s1 : base + kSingleUnroll * kSingleThreads) {
    uint64_t key[kSingleUnroll];
    if constexpr (kW > 0) {
      // Every load of the kSingleUnroll words first (one L2 round trip), then the arithmetic.
      uint64_t nz[kSingleUnroll][kW], sg[kSingleUnroll][kW];
      float inv[kSingleUnroll];
#pragma unroll
      for (int u = 0; u < kSingleUnroll; ++u) {
        const uint32_t xc = min(prefix ? prefix_word(split, a.n_splits, u, threadIdx.x) : base + u * kSingleThreads + threadIdx.x,
                                s1 - 1);  // loads stay unconditional
        const uint64_t* wp = a.codes + static_cast<size_t>(xc >> 3) * kW * 16 + (xc & 7);
#pragma unroll
        for (int j = 0; j < kW; ++j) {
          nz[u][j] = __ldg(wp + j * 16);
          sg[u][j] = __ldg(wp + j * 16 + 8);
        }
        inv[u] = __ldg(a.inv + xc);
      }
#pragma unroll
      for (int u = 0; u < kSingleUnroll; ++u) {
        const uint32_t x = prefix ? prefix_word(split, a.n_splits, u, threadIdx.x) : base + u * kSingleThreads + threadIdx.x;
        int dot = 0;
#pragma unroll
        for (int j = 0; j < kW; ++j) {
          const uint64_t m = nz[u][j] & qnz[j];
          dot += __popcll(m) - 2 * __popcll(m & (sg[u][j] ^ qsg[j]));
        }
        key[u] = x < s1 ? make_key(__fmul_rn(sum_term(0.0f, w0, dot), inv[u]), x) : 0;
      }
    } else {
#pragma unroll
      for (int u = 0; u < kSingleUnroll; ++u) {
        const uint32_t x = prefix ? prefix_word(split, a.n_splits, u, threadIdx.x) : base + u * kSingleThreads + threadIdx.x;
        const uint32_t xc = min(x, s1 - 1);
        const float score =
            score_generic(xc, a.codes, W, qp, ws, static_cast<uint32_t>(a.T), a.combine, __ldg(a.inv + xc));
        key[u] = x < s1 ? make_key(score, x) : 0;
      }
    }
    if (one_pass) {  // every word of the split is in key[]: each thread's keys are one sorted list
      sort_desc_local(key);
#pragma unroll
      for (int u = 0; u < kSingleUnroll; ++u) lists[threadIdx.x * kSingleUnroll + u] = key[u];
    } else {
#pragma unroll
      for (int u = 0; u < kSingleUnroll; ++u) list.offer(key[u]);
    }
  }
  if (a.mode == 4) tr[0] = trace_clock();
  if (!one_pass) list.store(lists + warp * a.K);
  __syncthreads();
  if (one_pass) select_lists(lists, kSingleThreads, kSingleUnroll, per_split, cand, best, ss);
  else select_lists(lists, kSingleWarps, a.K, a.K, cand, best, ss);
  if (a.mode == 4) tr[1] = trace_clock();
  if (a.n_splits > 1) {
    if (threadIdx.x < static_cast<unsigned>(per_split))
      a.partial[static_cast<size_t>(split) * per_split + threadIdx.x] = best[threadIdx.x];
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) last = atomicAdd(a.counter, 1u) == static_cast<unsigned>(a.n_splits - 1);
    __syncthreads();
    if (!last) return;  // the other CTAs fenced their lists before counting; read them from L2 (__ldcg)
    if (a.mode == 4) tr[2] = trace_clock();
    if (a.mode != 3) {  // mode 3 (timing only): the last CTA's own list stands for the merge
      const int total = a.n_splits * per_split;
      constexpr int kBatch = 8;  // loads in flight per thread
      for (int i0 = 0; i0 < total; i0 += kBatch * kSingleThreads) {
        uint64_t v[kBatch];
#pragma unroll
        for (int b = 0; b < kBatch; ++b) {
          const int i = i0 + b * kSingleThreads + static_cast<int>(threadIdx.x);
          v[b] = i < total ? __ldcg(a.partial + i) : 0;
        }
#pragma unroll
        for (int b = 0; b < kBatch; ++b) {
          const int i = i0 + b * kSingleThreads + static_cast<int>(threadIdx.x);
          if (i < total) lists[i] = v[b];
        }
      }
      __syncthreads();
      if (a.mode == 4) tr[3] = trace_clock();
      if (prefix) prefix_merge<kW>(a, lists, cand, hist, best, ts, qnz, qsg, qp, ws, w0);
      else select_lists(lists, a.n_splits, a.K, a.K, cand, best, ss);
      if (a.mode == 4) tr[4] = trace_clock();
    }
    if (threadIdx.x == 0) *a.counter = 0;
  }
  if (warp != 0) return;
  // The k best of the list without the excluded ids, then the sequence flag the host waits on.
  const uint64_t v = lane < static_cast<unsigned>(a.K) ? best[lane] : 0;
  const uint64_t v2 = lane + 32 < static_cast<unsigned>(a.K) ? best[32 + lane] : 0;
  const uint32_t id = key_id(v), id2 = key_id(v2);
  bool valid = v != 0, valid2 = v2 != 0;
  for (int e = 0; e < a.n_excl; ++e) {
    if (a.excl[e] == id) valid = false;
    if (a.excl[e] == id2) valid2 = false;
  }
  const unsigned m = __ballot_sync(kFull, valid), m2 = __ballot_sync(kFull, valid2);
  const unsigned below = (1u << lane) - 1u;
  const int pos = __popc(m & below), pos2 = __popc(m) + __popc(m2 & below);
  if (valid && pos < a.k) hits[pos] = make_uint2(id, __float_as_uint(key_score(v)));
  if (valid2 && pos2 < a.k) hits[pos2] = make_uint2(id2, __float_as_uint(key_score(v2)));
  const int n = min(__popc(m) + __popc(m2), a.k);
  if (lane == 0) a.out[1] = static_cast<uint32_t>(n);
  for (int j = n + static_cast<int>(lane); j < a.k; j += 32) hits[j] = make_uint2(0, 0);
  if (a.mode == 4 && lane == 0) {  // cycles from this CTA's start: scored, selected, last, preloaded, merged, done
    tr[5] = trace_clock();
    auto* t = reinterpret_cast<unsigned long long*>(a.out + 1024);
    for (int i = 0; i < 6; ++i) t[i] = tr[i] ? tr[i] - t0 : 0;
  }
  __threadfence_system();
  __syncwarp();
  if (lane == 0) *reinterpret_cast<volatile uint32_t*>(a.out) = a.seq;
}

template <int kW>
__global__ __launch_bounds__(kSingleThreads) void single_kernel(const __grid_constant__ SingleArgs a) {
  extern __shared__ uint64_t sm[];
  single_body<kW>(a, sm);
}

using SingleKernelFn = void (*)(SingleArgs);
constexpr int kSingleMaxW = 5;  // specialised plane widths (dims <= 320); wider: the generic form
template <int... I>
constexpr auto make_single_table(std::integer_sequence<int, I...>) {
  return std::array<SingleKernelFn, sizeof...(I)>{&single_kernel<I>...};
}
constexpr auto kSingleKernels = make_single_table(std::make_integer_sequence<int, kSingleMaxW + 1>{});

// ---------------------------------------------------------------------------------------------
// One query through a persistent kernel (kernels.hpp, PersistArgs). Every wait is bounded: CTA 0
// leaves after idle_ns without a message (telling the other CTAs through the relay), the other
// CTAs after idle_ns + 2 s without a relayed message. Inside a query nothing waits (the last CTA
// to finish merges, as in single_kernel).

__device__ __forceinline__ unsigned long long global_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}
__device__ __forceinline__ unsigned long long ld_relaxed_sys(const unsigned long long* p) {
  unsigned long long v;
  asm volatile("ld.relaxed.sys.global.u64 %0, [%1];" : "=l"(v) : "l"(p) : "memory");
  return v;
}
__device__ __forceinline__ unsigned long long ld_relaxed_gpu(const unsigned long long* p) {
  unsigned long long v;
  asm volatile("ld.relaxed.gpu.global.u64 %0, [%1];" : "=l"(v) : "l"(p) : "memory");
  return v;
}
__device__ __forceinline__ void st_relaxed_gpu(unsigned long long* p, unsigned long long v) {
  asm volatile("st.relaxed.gpu.global.u64 [%0], %1;" ::"l"(p), "l"(v) : "memory");
}
__device__ __forceinline__ uint32_t ld_acquire_gpu(const uint32_t* p) {
  uint32_t v;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}
__device__ __forceinline__ void st_release_gpu(uint32_t* p, uint32_t v) {
  asm volatile("st.release.gpu.global.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}
// Polling: flat out for the first 200 us without a message (back-to-back queries), then short
// sleeps (a query after a pause pays at most ~1 us for them at each of the two polling stages).
__device__ __forceinline__ void idle_backoff(unsigned long long idle) {
  if (idle > 200000ull) __nanosleep(idle > 20000000ull ? 1000u : 200u);
}

// Its whole grid must be resident: 2 CTAs a SM for the wide forms (1M x 300: 245 CTAs), 3 for
// the narrow and generic ones (GloVe 341K x 100: 334 CTAs), so at most 128 / 80 registers.
template <int kW>
__global__ __launch_bounds__(kSingleThreads, kW >= 3 ? 2 : 3) void persistent_kernel(const __grid_constant__ PersistArgs p) {
  extern __shared__ uint64_t sm[];
  __shared__ __align__(16) uint32_t args[kBoxWords];  // the query's SingleArgs, then the command
  __shared__ int quit;
  const SingleArgs& a = *reinterpret_cast<const SingleArgs*>(args);
  const unsigned t = threadIdx.x;
  uint32_t* const flag_relay = reinterpret_cast<uint32_t*>(p.relay + kBoxWords);  // relay_flag: [0] tag, [1..] words
  for (uint32_t tag = p.tag;; tag = tag + 1 ? tag + 1 : 1) {  // tags skip 0 (the zeroed mailbox)
    if (t == 0) quit = 0;
    __syncthreads();
    if (blockIdx.x == 0) {
      // One thread a mailbox word, each until its word carries the tag.
      if (t < static_cast<unsigned>(kBoxWords)) {
        const unsigned long long t0 = global_ns();
        for (;;) {
          const unsigned long long v = ld_relaxed_sys(p.box + t);
          if (static_cast<uint32_t>(v >> 32) == tag) {
            args[t] = static_cast<uint32_t>(v);
            break;
          }
          if (*reinterpret_cast<volatile int*>(&quit)) break;
          const unsigned long long idle = global_ns() - t0;
          if (t == 0 && idle > p.idle_ns) {
            *reinterpret_cast<volatile int*>(&quit) = 1;
            break;
          }
          idle_backoff(idle);
        }
      }
      __syncthreads();
      const bool stop = quit || args[kSingleArgWords] != kCmdQuery;
      if (!stop && t == 0 && a.mode == 5) *reinterpret_cast<volatile uint32_t*>(a.out) = a.seq;  // echo: no fence
      if (t < static_cast<unsigned>(kBoxWords)) {
        const uint32_t w = t == static_cast<unsigned>(kSingleArgWords) ? (stop ? kCmdStop : kCmdQuery) : args[t];
        if (p.relay_flag) flag_relay[1 + t] = w;
        else st_relaxed_gpu(p.relay + t, (static_cast<unsigned long long>(tag) << 32) | w);  // tagged like the mailbox
      }
      if (p.relay_flag) {
        __threadfence();
        __syncthreads();
        if (t == 0) st_release_gpu(flag_relay, tag);
      }
      if (stop) return;
    } else if (p.relay_flag) {  // experiments: one flag word, then the payload
      if (t == 0) {
        const unsigned long long t0 = global_ns(), limit = p.idle_ns + 2000000000ull;
        while (ld_acquire_gpu(flag_relay) != tag) {
          const unsigned long long idle = global_ns() - t0;
          if (idle > limit) {
            quit = 1;
            break;
          }
          idle_backoff(idle);
          if (p.relay_sleep_ns) __nanosleep(p.relay_sleep_ns);
        }
      }
      __syncthreads();
      if (quit) return;
      if (t < static_cast<unsigned>(kBoxWords)) args[t] = __ldcg(flag_relay + 1 + t);
      __syncthreads();
      if (args[kSingleArgWords] != kCmdQuery) return;
    } else {  // one thread a relay word (L2), each until its word carries the tag
      if (t < static_cast<unsigned>(kBoxWords)) {
        const unsigned long long t0 = global_ns(), limit = p.idle_ns + 2000000000ull;
        for (;;) {
          const unsigned long long v = ld_relaxed_gpu(p.relay + t);
          if (static_cast<uint32_t>(v >> 32) == tag) {
            args[t] = static_cast<uint32_t>(v);
            break;
          }
          if (*reinterpret_cast<volatile int*>(&quit)) break;
          const unsigned long long idle = global_ns() - t0;
          if (t == 0 && idle > limit) {
            *reinterpret_cast<volatile int*>(&quit) = 1;
            break;
          }
          idle_backoff(idle);
          if (p.relay_sleep_ns) __nanosleep(p.relay_sleep_ns);
        }
      }
      __syncthreads();
      if (quit || args[kSingleArgWords] != kCmdQuery) return;
    }
    if (a.mode != 5) single_body<kW>(a, sm);
    __syncthreads();
  }
}

using PersistKernelFn = void (*)(PersistArgs);
template <int... I>
constexpr auto make_persist_table(std::integer_sequence<int, I...>) {
  return std::array<PersistKernelFn, sizeof...(I)>{&persistent_kernel<I>...};
}
constexpr auto kPersistKernels = make_persist_table(std::make_integer_sequence<int, kSingleMaxW + 1>{});

}  // namespace

// ---------------------------------------------------------------------------------------------

SinglePlan single_plan(const DeviceIndex& ix, uint32_t L, int K, int T, int num_sms, uint32_t split_words,
                       int prefix_keys) {
  SinglePlan p;
  constexpr uint32_t kOnePass = kSingleThreads * kSingleUnroll;  // words a CTA scores in one pass
  const size_t planes_bytes = (static_cast<size_t>(T) * 2 * ix.W + (T + 1) / 2) * 8;
  if (K > 32 && prefix_keys > 0 && prefix_keys <= 32 && !split_words) {
    // Prefix mode (select_top): one pass a CTA, c = prefix_keys keys kept a CTA, while the
    // union holds at least K keys and fits the last CTA's shared memory.
    const uint64_t n = ((static_cast<uint64_t>(L) + 7) / 8 + kOnePass / 8 - 1) / (kOnePass / 8);
    if (n * prefix_keys >= static_cast<uint64_t>(K) && n * prefix_keys <= kSingleMaxMergeKeys) {
      p.prefix = prefix_keys;
      p.n_splits = static_cast<int>(n);
      p.split_len = kOnePass;
      const int list_cap = single_list_cap(p.n_splits, prefix_keys);
      p.smem = planes_bytes + (static_cast<size_t>(list_cap) + single_cand_cap(list_cap, K, true) + kTopBins / 2) * 8 + 16;
      return p;
    }
  }
  uint32_t len = split_words;
  if (!len) {
    // One pass per CTA (768 to 1024 words) while that takes at most ~3 CTAs a SM (run 19: 100K
    // words, 768 a CTA 21.4 us vs 512 22.6 us, 2048 24.1 us; GloVe 341K, 1024 21.5 us vs 2048
    // 25.2 us); beyond, several passes over ~2 CTAs a SM (1M: 4096 55 us, 1024 82 us).
    const uint32_t per_sm = (L + num_sms - 1) / num_sms;
    if (L <= 3u * num_sms * kOnePass) len = std::clamp<uint32_t>(per_sm, 768, kOnePass);
    else len = ((per_sm + 1) / 2 + kOnePass - 1) / kOnePass * kOnePass;
  }
  len = std::max<uint32_t>(256, (len + 255) / 256 * 256);
  // The last CTA holds every split's list (and as many candidates) in shared memory: long lists
  // (the default rerank's 50 candidates + exclusions) take fewer, longer splits so that fits.
  const uint64_t max_splits = std::max<uint64_t>(1, kSingleMaxMergeKeys / static_cast<uint64_t>(std::max(K, 1)));
  if (K > 32 && (L + len - 1) / len > max_splits)  // (K <= 32: the measured plans, unchanged)
    len = static_cast<uint32_t>(((L + max_splits - 1) / max_splits + kOnePass - 1) / kOnePass * kOnePass);
  p.split_len = len;
  p.n_splits = static_cast<int>(std::max<uint32_t>(1, (L + len - 1) / len));
  const size_t list_cap = std::max<size_t>(static_cast<size_t>(p.n_splits) * K, kOnePass);
  p.smem = planes_bytes + 2 * list_cap * 8 + 16;
  return p;
}

int single_form(const SingleArgs& a) {
  return (a.T == 1 && a.combine == 0 && a.W >= 1 && a.W <= static_cast<uint32_t>(kSingleMaxW)) ? static_cast<int>(a.W)
                                                                                               : 0;
}

cudaError_t single_launch(const SingleArgs& a, const SinglePlan& p, cudaStream_t s) {
  kSingleKernels[single_form(a)]<<<p.n_splits, kSingleThreads, p.smem, s>>>(a);
  return cudaGetLastError();
}

namespace {
// Lets every kernel of a table take as much dynamic shared memory as its static part leaves.
template <class Table>
void allow_dynamic_smem(const Table& kernels, size_t max_smem) {
  for (auto f : kernels) {
    cudaFuncAttributes attr{};
    if (cudaFuncGetAttributes(&attr, f) == cudaSuccess)
      cudaFuncSetAttribute(f, cudaFuncAttributeMaxDynamicSharedMemorySize,
                           static_cast<int>(max_smem - std::min(max_smem, attr.sharedSizeBytes)));
  }
  cudaGetLastError();
}
}  // namespace

void single_prepare_attributes(size_t max_smem) { allow_dynamic_smem(kSingleKernels, max_smem); }

int persistent_capacity(int form, const SinglePlan& p, int num_sms) {
  int per_sm = 0;
  if (form < 0 || form > kSingleMaxW ||
      cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kPersistKernels[form], kSingleThreads, p.smem) !=
          cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return per_sm * num_sms;
}

cudaError_t persistent_launch(const PersistArgs& pa, int form, const SinglePlan& p, cudaStream_t s) {
  kPersistKernels[form]<<<p.n_splits, kSingleThreads, p.smem, s>>>(pa);
  return cudaGetLastError();
}

void persistent_prepare_attributes(size_t max_smem) { allow_dynamic_smem(kPersistKernels, max_smem); }

}  // namespace igla::cuda
