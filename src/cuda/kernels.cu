// igla CUDA backend: kernels. See kernels.hpp for the three paths and scripts/gpu/NOTES.md for
// the numbers behind the design.
#include "cuda/kernels.hpp"

#include <cub/device/device_segmented_sort.cuh>

#include <algorithm>
#include <array>
#include <utility>
#include <cstdio>

#include "cuda/device_common.cuh"

namespace igla::cuda {

namespace {

constexpr int kConsumerWarps = 8;

// Bump allocator over one scratch block (256-byte aligned pieces).
struct Bump {
  char* p;
  size_t used = 0;
  template <class T>
  T* take(size_t count) {
    used = (used + 255) & ~size_t{255};
    T* r = reinterpret_cast<T*>(p ? p + used : nullptr);
    used += count * sizeof(T);
    return r;
  }
};

inline void launch_check(const char* what) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) {
    std::fprintf(stderr, "igla cuda: launch of %s failed: %s\n", what, cudaGetErrorString(e));
  }
}

__device__ __forceinline__ int dot_planes(const uint64_t* wp, const uint64_t* qp, uint32_t W) {
  int dot = 0;
  for (uint32_t j = 0; j < W; ++j) {
    const uint64_t nz = __ldg(wp + j * 16), sg = __ldg(wp + j * 16 + 8);
    const uint64_t m = nz & qp[j];
    dot += __popcll(m) - 2 * __popcll(m & (sg ^ qp[W + j]));
  }
  return dot;
}

// combine_score for word x over the T terms whose planes (2W words each) start at qp.
__device__ __forceinline__ float score_generic(uint32_t x, const uint64_t* codes, uint32_t W, const uint64_t* qp,
                                               const float* w, uint32_t T, int combine, float inv) {
  const uint64_t* wp = codes + static_cast<size_t>(x >> 3) * W * 16 + (x & 7);
  if (combine == 0) {
    float s = 0.0f;
    for (uint32_t t = 0; t < T; ++t) s = sum_term(s, w[t], dot_planes(wp, qp + t * 2 * W, W));
    return __fmul_rn(s, inv);
  }
  int d[3];
#pragma unroll
  for (int t = 0; t < 3; ++t) d[t] = dot_planes(wp, qp + t * 2 * W, W);
  return cosmul_score(d, w, inv);
}

// ---------------------------------------------------------------------------------------------
// Preparation kernels.

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

// ---------------------------------------------------------------------------------------------
// Merge of per-split lists + exclusions + the final k hits.

struct MergeArgs {
  const uint64_t* partial;  // [q][split][K]
  int n_splits, K, k, n_q, wpq;
  const uint32_t* excl;
  const uint32_t* excl_off;
  uint2* hits;
  uint32_t* count;
  bool preload;
};

__device__ __forceinline__ void finalize_list(const WarpList& list, int q, int k, const uint32_t* excl,
                                              const uint32_t* excl_off, uint2* hits, uint32_t* count) {
  const unsigned lane = lane_id();
  const uint32_t id = key_id(list.v);
  bool valid = lane < static_cast<unsigned>(list.K) && list.v != 0;
  const uint32_t e0 = excl_off[q], e1 = excl_off[q + 1];
  for (uint32_t e = e0; e < e1; ++e)
    if (excl[e] == id) valid = false;
  const unsigned m = __ballot_sync(kFull, valid);
  const int pos = __popc(m & ((1u << lane) - 1u));
  uint2* row = hits + static_cast<size_t>(q) * k;
  if (valid && pos < k) row[pos] = make_uint2(id, __float_as_uint(key_score(list.v)));
  const int n = min(__popc(m), k);
  if (lane == 0) count[q] = static_cast<uint32_t>(n);
  for (int j = n + static_cast<int>(lane); j < k; j += 32) row[j] = make_uint2(0, 0);
}

// Tree merge of the lists of warps [w0, w0 + n) (n a power of two) through sh; the result ends
// in warp w0's `list`. Every thread of the block must call it.
__device__ __forceinline__ void tree_merge(WarpList& list, uint64_t (*sh)[32], int warp, int w0, int n) {
  const unsigned lane = lane_id();
  for (int h = n / 2; h >= 1; h /= 2) {
    const int rel = warp - w0;
    if (rel >= h && rel < 2 * h) sh[warp][lane] = list.v;
    __syncthreads();
    if (rel >= 0 && rel < h) list.merge_sorted(sh[warp + h][lane]);
    __syncthreads();
  }
}

__global__ __launch_bounds__(256) void merge_kernel(MergeArgs a) {
  __shared__ uint64_t sh[8][32];
  extern __shared__ uint64_t pre[];  // this block's lists when they fit (a.preload)
  const unsigned warp = threadIdx.x >> 5, lane = lane_id();
  const int qpb = 8 / a.wpq;
  const int q0 = blockIdx.x * qpb;
  const int q = q0 + static_cast<int>(warp) / a.wpq;
  const int sub = static_cast<int>(warp) % a.wpq;
  const bool active = q < a.n_q;
  const size_t per_q = static_cast<size_t>(a.n_splits) * a.K;
  if (a.preload) {  // one coalesced pass: every load of the block in flight at once
    const size_t total = static_cast<size_t>(min(qpb, a.n_q - q0)) * per_q;
    const uint64_t* src = a.partial + static_cast<size_t>(q0) * per_q;
    for (size_t i = threadIdx.x; i < total; i += blockDim.x) pre[i] = src[i];
    __syncthreads();
  }
  WarpList list;
  list.init(a.K);
  if (active) {
    const uint64_t* base =
        a.preload ? pre + static_cast<size_t>(q - q0) * per_q : a.partial + static_cast<size_t>(q) * per_q;
    auto load = [&](int s) -> uint64_t {
      return (s < a.n_splits && lane < static_cast<unsigned>(a.K)) ? base[static_cast<size_t>(s) * a.K + lane] : 0;
    };
    for (int s = sub; s < a.n_splits; s += 4 * a.wpq) {
      const uint64_t o0 = load(s), o1 = load(s + a.wpq), o2 = load(s + 2 * a.wpq), o3 = load(s + 3 * a.wpq);
      list.merge_sorted(o0);
      list.merge_sorted(o1);
      list.merge_sorted(o2);
      list.merge_sorted(o3);
    }
  }
  tree_merge(list, sh, static_cast<int>(warp), static_cast<int>(warp) - sub, a.wpq);
  if (active && sub == 0) finalize_list(list, q, a.k, a.excl, a.excl_off, a.hits, a.count);
}

void launch_merge(const uint64_t* partial, int n_q, int n_splits, int K, int k, const ChunkQueries& q, OutHits out,
                  cudaStream_t s) {
  const int wpq = n_splits >= 8 ? 8 : n_splits >= 4 ? 4 : n_splits >= 2 ? 2 : 1;
  const int qpb = 8 / wpq;
  const size_t pre = static_cast<size_t>(qpb) * n_splits * K * sizeof(uint64_t);
  MergeArgs a{partial, n_splits, K, k, n_q, wpq, q.excl, q.excl_off, out.hits, out.count, pre <= 40 * 1024};
  merge_kernel<<<(n_q + qpb - 1) / qpb, 256, a.preload ? pre : 0, s>>>(a);
  launch_check("merge_kernel");
}

// ---------------------------------------------------------------------------------------------
// popc path: one CTA per (query, vocabulary split); each warp keeps a top-K list of its words,
// the CTA merges its 8 lists and writes them for merge_kernel.

struct PopcArgs {
  const uint64_t* codes;
  const float* inv;
  uint32_t W, L;
  const uint64_t* planes;  // [term][2W]
  const float* weights;
  const uint32_t* term_off;
  int combine, K, n_splits;
  uint32_t split_len;
  uint64_t* partial;
  // The last CTA of each query to finish merges its splits' lists and writes the hits (no
  // separate merge launch): counters[q] counts finished CTAs and is reset by that last one.
  uint32_t* counters;
  int k;
  const uint32_t* excl;
  const uint32_t* excl_off;
  uint2* hits;
  uint32_t* count;
};

template <bool kSingle>
__global__ __launch_bounds__(256) void popc_kernel(PopcArgs a) {
  extern __shared__ uint64_t sm[];
  const int q = blockIdx.x / a.n_splits, split = blockIdx.x % a.n_splits;
  const uint32_t t0 = a.term_off[q], T = a.term_off[q + 1] - t0, W = a.W;
  uint64_t* lists = sm;              // 8 x 32
  uint64_t* qp = sm + 8 * 32;        // T x 2W
  float* w = reinterpret_cast<float*>(qp + T * 2 * W);
  for (uint32_t i = threadIdx.x; i < T * 2 * W; i += blockDim.x) qp[i] = a.planes[static_cast<size_t>(t0) * 2 * W + i];
  for (uint32_t i = threadIdx.x; i < T; i += blockDim.x) w[i] = a.weights[t0 + i];
  __syncthreads();

  const unsigned warp = threadIdx.x >> 5, lane = lane_id();
  const uint32_t s0 = split * a.split_len;
  const uint32_t s1 = min(s0 + a.split_len, a.L);
  WarpList list;
  list.init(a.K);
  for (uint32_t base = s0 + warp * 32; base < s1; base += 256) {
    const uint32_t x = base + lane;
    uint64_t key = 0;
    if (x < s1) {
      float score;
      if (kSingle) {
        const uint64_t* wp = a.codes + static_cast<size_t>(x >> 3) * W * 16 + (x & 7);
        score = __fmul_rn(sum_term(0.0f, w[0], dot_planes(wp, qp, W)), __ldg(a.inv + x));
      } else {
        score = score_generic(x, a.codes, W, qp, w, T, a.combine, __ldg(a.inv + x));
      }
      key = make_key(score, x);
    }
    list.offer(key);
  }
  tree_merge(list, reinterpret_cast<uint64_t(*)[32]>(lists), static_cast<int>(warp), 0, 8);
  if (a.n_splits == 1) {  // the whole vocabulary was this CTA's: finish here
    if (warp == 0) finalize_list(list, q, a.k, a.excl, a.excl_off, a.hits, a.count);
    return;
  }
  if (warp == 0 && lane < static_cast<unsigned>(a.K))
    a.partial[(static_cast<size_t>(q) * a.n_splits + split) * a.K + lane] = list.v;
  if (!a.counters) return;  // merge_kernel merges the splits

  // Last CTA of this query: merge every split's list.
  __shared__ bool last;
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) last = atomicAdd(a.counters + q, 1u) == static_cast<unsigned>(a.n_splits - 1);
  __syncthreads();
  if (!last) return;
  __threadfence();
  uint64_t* pre = qp + T * 2 * W + (T + 1) / 2;  // after the weights
  const size_t total = static_cast<size_t>(a.n_splits) * a.K;
  const uint64_t* src = a.partial + static_cast<size_t>(q) * total;
  for (size_t i = threadIdx.x; i < total; i += blockDim.x) pre[i] = __ldcg(src + i);
  __syncthreads();
  list.init(a.K);
  for (int sp = static_cast<int>(warp); sp < a.n_splits; sp += 8)
    list.merge_sorted(lane < static_cast<unsigned>(a.K) ? pre[static_cast<size_t>(sp) * a.K + lane] : 0);
  tree_merge(list, reinterpret_cast<uint64_t(*)[32]>(lists), static_cast<int>(warp), 0, 8);
  if (warp == 0) finalize_list(list, q, a.k, a.excl, a.excl_off, a.hits, a.count);
  if (threadIdx.x == 0) a.counters[q] = 0;
}

// ---------------------------------------------------------------------------------------------
// One query: a single launch (kernels.hpp, SingleArgs). kW > 0: one-term Sum over W == kW plane
// words (query planes read straight from the parameter bank, loads fully unrolled); kW == 0: any
// query (terms and weights copied to shared memory, score_generic).
//
// Selection without serial list merges (run 18: the last CTA's 8-warp merge of 196 lists cost
// ~8 us of a 27 us search): select_lists takes n descending lists of len keys in shared memory
// (keys unique, 0 = empty) and writes their K best to out[0..K). A bound b with at least K keys
// >= b is the largest over groups of 32 lists of (the score word of) the group's K-th best head,
// one warp sort per group; every key >= b is a candidate (compacted with one shared atomic a
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
  for (int g = static_cast<int>(warp) * 32; g < n; g += kSingleThreads) {  // warp-uniform
    // The K-th best score word of the group's heads: at least K keys are >= (it << 32).
    const int l = g + static_cast<int>(lane);
    uint32_t h = l < n ? static_cast<uint32_t>(lists[static_cast<size_t>(l) * len] >> 32) : 0;
#pragma unroll
    for (int k = 2; k <= 32; k <<= 1) {  // bitonic sort, descending across lanes
#pragma unroll
      for (int j = k >> 1; j > 0; j >>= 1) {
        const uint32_t o = __shfl_xor_sync(kFull, h, j);
        h = (((lane & j) == 0) == ((lane & k) == 0)) ? max(h, o) : min(h, o);
      }
    }
    if (lane == static_cast<unsigned>(K - 1) && h)
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

// The whole one-query search of one CTA (split blockIdx.x) over the query a, which lives in the
// launch's parameters (single_kernel) or in shared memory (persistent_kernel); sm: the dynamic
// shared memory (SinglePlan::smem). Returns with the CTA's threads at different points (callers
// that go on put a barrier after it).
template <int kW>
__device__ __forceinline__ void single_body(const SingleArgs& a, uint64_t* sm) {
  __shared__ uint64_t best[32];  // this CTA's top K
  __shared__ SelectShared ss;
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
  const int list_cap = max(a.n_splits * a.K, kSingleThreads * kSingleUnroll);
  uint64_t* cand = lists + list_cap;
  if constexpr (kW == 0) {
    for (uint32_t i = threadIdx.x; i < n_planes; i += kSingleThreads) qp[i] = a.planes[i];
    for (int i = static_cast<int>(threadIdx.x); i < a.T; i += kSingleThreads) ws[i] = a.w[i];
    __syncthreads();
  }
  const uint32_t s0 = static_cast<uint32_t>(split) * a.split_len, s1 = min(s0 + a.split_len, a.L);
  const bool one_pass = a.split_len <= kSingleThreads * kSingleUnroll;  // uniform
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
  for (uint32_t base = s0; base < s1; base += kSingleUnroll * kSingleThreads) {
    uint64_t key[kSingleUnroll];
    if constexpr (kW > 0) {
      // Every load of the kSingleUnroll words first (one L2 round trip), then the arithmetic.
      uint64_t nz[kSingleUnroll][kW], sg[kSingleUnroll][kW];
      float inv[kSingleUnroll];
#pragma unroll
      for (int u = 0; u < kSingleUnroll; ++u) {
        const uint32_t xc = min(base + u * kSingleThreads + threadIdx.x, s1 - 1);  // loads stay unconditional
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
        const uint32_t x = base + u * kSingleThreads + threadIdx.x;
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
        const uint32_t x = base + u * kSingleThreads + threadIdx.x;
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
  if (!one_pass && lane < static_cast<unsigned>(a.K)) lists[warp * a.K + lane] = list.v;
  __syncthreads();
  if (one_pass) select_lists(lists, kSingleThreads, kSingleUnroll, a.K, cand, best, ss);
  else select_lists(lists, kSingleWarps, a.K, a.K, cand, best, ss);
  if (a.mode == 4) tr[1] = trace_clock();
  if (a.n_splits > 1) {
    if (threadIdx.x < static_cast<unsigned>(a.K)) a.partial[static_cast<size_t>(split) * a.K + threadIdx.x] = best[threadIdx.x];
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) last = atomicAdd(a.counter, 1u) == static_cast<unsigned>(a.n_splits - 1);
    __syncthreads();
    if (!last) return;  // the other CTAs fenced their lists before counting; read them from L2 (__ldcg)
    if (a.mode == 4) tr[2] = trace_clock();
    if (a.mode != 3) {  // mode 3 (timing only): the last CTA's own list stands for the merge
      const int total = a.n_splits * a.K;
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
      select_lists(lists, a.n_splits, a.K, a.K, cand, best, ss);
      if (a.mode == 4) tr[4] = trace_clock();
    }
    if (threadIdx.x == 0) *a.counter = 0;
  }
  if (warp != 0) return;
  // The k best of the list without the excluded ids, then the sequence flag the host waits on.
  const uint64_t v = lane < static_cast<unsigned>(a.K) ? best[lane] : 0;
  const uint32_t id = key_id(v);
  bool valid = v != 0;
  for (int e = 0; e < a.n_excl; ++e)
    if (a.excl[e] == id) valid = false;
  const unsigned m = __ballot_sync(kFull, valid);
  const int pos = __popc(m & ((1u << lane) - 1u));
  if (valid && pos < a.k) hits[pos] = make_uint2(id, __float_as_uint(key_score(v)));
  const int n = min(__popc(m), a.k);
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

// ---------------------------------------------------------------------------------------------
// mma path: warp-specialized wgmma kernel.
//   warpgroup 0: one thread streams vocabulary tiles (bulk copies, mbarrier completion) into a
//                ring of `stages` shared-memory buffers;
//   warpgroups 1, 2: 64 queries each; per tile, wgmma m64n128k32 (Kp / 32 steps) gives the
//                64 x 128 int32 dot products in registers; the epilogue compares each against
//                an integer bound derived from the row's current K-th best score (the words of a
//                tile have (nearly) equal norms, tile_order, so the bound is (nearly) exact),
//                queues the rare passing ones raw (dot, tile, column) per thread; when a queue
//                might overflow the warp drains: each thread scores its entries exactly (inv and
//                ids from L2), and lanes 0..15 of each warp, owners of its 16 rows' top-K lists,
//                take the keys that beat their row's threshold (thread-private insertion).
//                A warp whose queue fills past a soft limit asks the other three warps of its
//                warpgroup to drain with it (they wait for each other at every wgmma anyway).

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  asm volatile(
      "{\n"
      ".reg .pred P1;\n"
      "LAB_WAIT:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 P1, [%0], %1;\n"
      "@P1 bra DONE;\n"
      "bra LAB_WAIT;\n"
      "DONE:\n"
      "}\n" ::"r"(bar),
      "r"(parity)
      : "memory");
}
__device__ __forceinline__ void bulk_g2s(uint32_t dst, const void* src, uint32_t bytes, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(dst),
      "l"(src), "r"(bytes), "r"(bar)
      : "memory");
}
__device__ __forceinline__ uint64_t make_desc(uint32_t saddr, uint32_t lbo, uint32_t sbo) {
  return static_cast<uint64_t>((saddr & 0x3ffffu) >> 4) | (static_cast<uint64_t>((lbo >> 4) & 0x3fffu) << 16) |
         (static_cast<uint64_t>((sbo >> 4) & 0x3fffu) << 32);
}
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void wgmma_wait0() { asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory"); }
__device__ __forceinline__ void wgmma_wait1() { asm volatile("wgmma.wait_group.sync.aligned 1;" ::: "memory"); }
__device__ __forceinline__ void fence_operand(int& r) { asm volatile("" : "+r"(r)::"memory"); }

__device__ __forceinline__ void wgmma_m64n128k32(int (&d)[64], uint64_t da, uint64_t db, int scale_d) {
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "setp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k32.s32.s8.s8 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, "
      "%64, %65, p;\n"
      "}\n"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3]), "+r"(d[4]), "+r"(d[5]), "+r"(d[6]), "+r"(d[7]),
        "+r"(d[8]), "+r"(d[9]), "+r"(d[10]), "+r"(d[11]), "+r"(d[12]), "+r"(d[13]), "+r"(d[14]), "+r"(d[15]),
        "+r"(d[16]), "+r"(d[17]), "+r"(d[18]), "+r"(d[19]), "+r"(d[20]), "+r"(d[21]), "+r"(d[22]), "+r"(d[23]),
        "+r"(d[24]), "+r"(d[25]), "+r"(d[26]), "+r"(d[27]), "+r"(d[28]), "+r"(d[29]), "+r"(d[30]), "+r"(d[31]),
        "+r"(d[32]), "+r"(d[33]), "+r"(d[34]), "+r"(d[35]), "+r"(d[36]), "+r"(d[37]), "+r"(d[38]), "+r"(d[39]),
        "+r"(d[40]), "+r"(d[41]), "+r"(d[42]), "+r"(d[43]), "+r"(d[44]), "+r"(d[45]), "+r"(d[46]), "+r"(d[47]),
        "+r"(d[48]), "+r"(d[49]), "+r"(d[50]), "+r"(d[51]), "+r"(d[52]), "+r"(d[53]), "+r"(d[54]), "+r"(d[55]),
        "+r"(d[56]), "+r"(d[57]), "+r"(d[58]), "+r"(d[59]), "+r"(d[60]), "+r"(d[61]), "+r"(d[62]), "+r"(d[63])
      : "l"(da), "l"(db), "r"(scale_d));
}

struct MmaArgs {
  const int8_t* vocab;  // tiles of `stride` bytes
  const int8_t* q;
  const float* qw;
  int n_q;
  uint32_t Kp, L, stride;
  int n_tiles, tiles_per_split, n_splits, K, stages;
  uint32_t stage_magic;          // ceil(2^32 / stages): it / stages = umulhi(it, stage_magic)
  uint64_t* partial;
  int mode;                      // experiments (IGLA_CUDA_MMA_MODE): 1 no epilogue, 2 no slow path
  int group_soft;                // > 0: a warp whose queue holds more entries asks its warpgroup to drain
                                 // (all four warps at their next epilogue); 0: each warp on overflow only
  unsigned long long* stats;     // optional counters (IGLA_CUDA_STATS): warp-tiles with a candidate,
                                 // staged candidates, queued keys, drains
};

// The integer prefilter. A row whose K-th best key is thr (score ts) can only gain a word of a
// tile whose dot satisfies score = (w * dot) * inv >= ts, and score <= w * dot * inv_max (1 + 2^-23)^2
// for dot > 0, w > 0; so dot > floor(ts / (w * inv_max) * 0.9999) is necessary (the 1e-4 relative
// margin covers every rounding of the bound's own arithmetic). Per row the bound is kept as
// c = ts / w, per tile as rim = 1 / inv_max (carried in the tile): one multiply a tile.
constexpr int kAll = -(1 << 30), kNone = 1 << 30;
__device__ __forceinline__ float bound_base(uint64_t thr, float w, bool valid) {
  if (!valid) return __int_as_float(0x7f800000);  // +inf: nothing passes
  if (thr == 0 || !(w > 0.0f)) return __int_as_float(0xff800000);  // -inf: everything passes
  const float ts = key_score(thr);
  if (!(ts > 0.0f)) return __int_as_float(0xff800000);
  return __fdiv_rn(ts, w);
}
__device__ __forceinline__ int tile_bound(float c, float rim) {
  float t = __fmul_rn(__fmul_rn(c, rim), 0.9999f);
  t = (t == t) ? t : static_cast<float>(kNone);  // NaN (c = 0, rim = inf: an all-zero tile, ts > 0)
  // Branch-free (it starts every epilogue): clamped to [kAll, kNone] (both exact floats).
  return __float2int_rd(fminf(fmaxf(t, static_cast<float>(kAll)), static_cast<float>(kNone)));
}

constexpr int kStage = 8;    // accumulators per sub-round of the candidate path
constexpr int kQueue = 12;   // entries per thread and row half waiting for a drain

// Stages this thread's accumulators SR*8 .. SR*8+7 that pass their row's bound as entries in the
// queue of their row half: (tile << 32) | (column << 16) | (dot & 0xffff). Branch-free: each
// entry is a predicated store (inline PTX: written as `if (pass) {store; ++n}` ptxas made a
// branch and a reconvergence point of each, and the I-cache misses at those were a large share
// of the candidate path's stalls). Scoring waits for the next drain, off the path that gates the
// warpgroup's next wgmma. The caller guarantees room for 4 entries a half (a sub-round holds 4
// accumulators of each). qa: the shared address of this thread's queue.
__device__ __forceinline__ void st_shared_if(uint32_t addr, uint64_t v, int pred) {
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "setp.ne.b32 p, %2, 0;\n"
      "@p st.shared.u64 [%0], %1;\n"
      "}\n" ::"r"(addr),
      "l"(v), "r"(pred)
      : "memory");
}
template <int SR>
__device__ __forceinline__ void stage_sub(const int (&acc)[64], int T0, int T1, uint32_t qa, uint64_t base, int& n0,
                                          int& n1) {
#pragma unroll
  for (int ii = 0; ii < kStage; ++ii) {
    const int i = SR * kStage + ii;
    const bool hi = (i & 2) != 0;
    const int pass = acc[i] > (hi ? T1 : T0) ? 1 : 0;
    const uint64_t e = base | (static_cast<uint64_t>(8 * (i >> 2) + (i & 1)) << 16) |
                       (static_cast<uint32_t>(acc[i]) & 0xffffu);
    if (hi) {
      st_shared_if(qa + static_cast<uint32_t>(kQueue + n1) * 256u * 8u, e, pass);
      n1 += pass;
    } else {
      st_shared_if(qa + static_cast<uint32_t>(n0) * 256u * 8u, e, pass);
      n0 += pass;
    }
  }
}

template <int KS>
__global__ void __launch_bounds__(384, 1) mma_kernel(MmaArgs a) {
  extern __shared__ uint8_t smem_raw[];
  // Aligned by an offset from the __shared__ array itself (not through an integer cast), so the
  // compiler keeps the shared address space: LDS / STS rather than generic loads and stores.
  uint8_t* smem = smem_raw + ((1024u - (smem_u32(smem_raw) & 1023u)) & 1023u);
  const uint32_t Kp = a.Kp, stride = a.stride;
  uint8_t* sA = smem;
  uint8_t* sB = sA + kTileQueries * Kp;
  uint64_t* bars = reinterpret_cast<uint64_t*>(sB + static_cast<size_t>(a.stages) * stride);
  uint64_t* lists = bars + 2 * a.stages + 2;                 // [128 rows][K], descending
  uint64_t* queue = lists + kTileQueries * a.K;              // [2 row halves][kQueue][256 threads]

  const int qt = blockIdx.x / a.n_splits, split = blockIdx.x % a.n_splits;
  const int t_begin = split * a.tiles_per_split;
  const int ntl = max(0, min(t_begin + a.tiles_per_split, a.n_tiles) - t_begin);
  const uint32_t full0 = smem_u32(bars), empty0 = smem_u32(bars + a.stages), abar = smem_u32(bars + 2 * a.stages);
  // it / stages as a multiply-high by the host's ceil(2^32 / stages), exact for it < 2^28 (tile
  // indices stay below 2^25 with 32-bit word ids). A division by the runtime stage count was ~50
  // dependent instructions before every tile's wgmma and again in its epilogue (A/B: +5%).
  auto stage_round = [&](int it) -> uint32_t { return __umulhi(static_cast<uint32_t>(it), a.stage_magic); };

  if (threadIdx.x == 0) {
    for (int s = 0; s < a.stages; ++s) {
      mbar_init(full0 + 8 * s, 1);
      mbar_init(empty0 + 8 * s, kConsumerWarps);
    }
    mbar_init(abar, 1);
    bars[2 * a.stages + 1] = 0;  // group-drain requests: a byte per consumer warp
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  for (int i = threadIdx.x; i < kTileQueries * a.K; i += blockDim.x) lists[i] = 0;
  __syncthreads();

  // Warp-specialised: the producer warpgroup gives registers to the two consumer warpgroups
  // (128 x 40 + 256 x 232 <= 64 K), which hold two 64-register accumulator sets each.
  const int wg = threadIdx.x / 128;
  if (wg == 0) {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 40;" ::: "memory");
    if (threadIdx.x == 0) {
      mbar_expect_tx(abar, kTileQueries * Kp);
      bulk_g2s(smem_u32(sA), a.q + static_cast<size_t>(qt) * kTileQueries * Kp, kTileQueries * Kp, abar);
      // Stage and phase by running counters (no division; see stage_round).
      for (int it = 0, st = 0, ph = 0; it < ntl; ++it) {
        if (it >= a.stages) mbar_wait(empty0 + 8 * st, ph ^ 1);
        mbar_expect_tx(full0 + 8 * st, stride);
        bulk_g2s(smem_u32(sB + static_cast<size_t>(st) * stride), a.vocab + static_cast<size_t>(t_begin + it) * stride,
                 stride, full0 + 8 * st);
        if (++st == a.stages) {
          st = 0;
          ph ^= 1;
        }
      }
    }
  } else {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 232;" ::: "memory");
  // Consumers. Thread (warp, lane) holds, of each tile, the dots of rows r0 = lane / 4 and r0 + 8
  // of its warp's 16, columns 8 j + 2 (lane % 4) + {0, 1} (the wgmma m64n128 accumulator layout).
  const int g = wg - 1;
  const unsigned warp = (threadIdx.x / 32) % 4, lane = lane_id();
  const int cw = g * 4 + static_cast<int>(warp);
  const int tid_c = static_cast<int>(threadIdx.x) - 128;       // 0..255
  const int row_base = g * 64 + static_cast<int>(warp) * 16;  // this warp's 16 rows (CTA-local)
  const int r0 = row_base + static_cast<int>(lane >> 2);
  const int K = a.K;
  const float w0 = a.qw[static_cast<size_t>(qt) * kTileQueries + r0];
  const float w1 = a.qw[static_cast<size_t>(qt) * kTileQueries + r0 + 8];
  // Rows past the batch (the last tile's padding) never pass.
  const bool v0 = qt * kTileQueries + r0 < a.n_q, v1 = qt * kTileQueries + r0 + 8 < a.n_q;
  // Row owners: lane j < 16 keeps row row_base + j's top-K list (shared memory, this lane only)
  // and its exact threshold; the other lanes hold copies of their rows' thresholds that are at
  // most as high (refreshed at each drain), so every bound they apply is conservative.
  const unsigned orow = lane & 15u;
  uint64_t* olist = lists + static_cast<size_t>(row_base + static_cast<int>(orow)) * K;
  uint64_t oib = 0;  // the row's starting bound (below: from the split's first two tiles)
  uint64_t othr = oib;
  int opos = 0;  // position of the smallest key of the owner's (unsorted) list
  uint64_t thr0 = 0, thr1 = 0;
  float c0 = bound_base(thr0, w0, v0), c1 = bound_base(thr1, w1, v1);
  uint64_t* myq = queue + tid_c;     // this thread's queue: [half][e] at ((half * kQueue + e) * 256)
  const uint32_t qa = smem_u32(myq);  // (its shared address, for the staging's predicated stores)
  // Group drains. A warpgroup issues its wgmma together, so a warp that drains alone holds the
  // other three at the next tile: drains of the four warps one after another cost four waits.
  // Once a queue holds more than group_soft entries the warp sets the request byte of all four;
  // each warp drains at its next epilogue that sees its byte (and clears it), so the four drains
  // overlap (A/B at 100K x 300, 65536 queries: 9.25-9.55 -> 10.0-10.96 M q/s with 4; 8: no gain).
  // A request seen late only delays a drain: overflow still drains at once.
  volatile uint8_t* gflag = reinterpret_cast<volatile uint8_t*>(bars + 2 * a.stages + 1) + cw;
  int n0 = 0, n1 = 0;                // queued entries of rows r0, r0 + 8
  // Tile it's inv[128] and ids[128] in global memory (L2): the drain reads them there, so a stage
  // goes back to the producer as soon as its dots are compared.
  const uint8_t* gextra = reinterpret_cast<const uint8_t*>(a.vocab) + static_cast<size_t>(t_begin) * stride +
                          static_cast<size_t>(kTileWords) * Kp;

  // 1. Each thread turns its queued entries into keys in place (0 for padding / ids >= L and for
  //    keys that cannot beat its copy of the row threshold), four at a time with their loads in
  //    flight together. 2. The owners take the keys of their rows: lane j's row half is j / 8,
  //    its keys come from lanes 4 (j % 8) .. 4 (j % 8) + 3, each inserted (thread-private) into
  //    the row's unsorted list, where it replaces the smallest key.
  auto drain = [&]() {
    const int nq = n0 + n1;
#pragma unroll 1
    for (int e0 = 0; e0 < nq; e0 += 4) {
      uint64_t ent[4];
      float inv[4];
      uint32_t id[4];
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        const int e = e0 + u;
        ent[u] = 0;
        if (e < nq) ent[u] = myq[(e < n0 ? e : kQueue + e - n0) * 256];
      }
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        inv[u] = 0.0f;
        id[u] = ~0u;
        if (e0 + u < nq) {
          const uint8_t* ex = gextra + static_cast<size_t>(ent[u] >> 32) * stride;
          const uint32_t col = static_cast<uint32_t>(ent[u] >> 16) & 127u;
          inv[u] = __ldg(reinterpret_cast<const float*>(ex) + col);
          id[u] = __ldg(reinterpret_cast<const uint32_t*>(ex + kExtraIds) + col);
        }
      }
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        const int e = e0 + u;
        if (e < nq) {
          const bool hi = e >= n0;
          const int dot = static_cast<int16_t>(static_cast<uint32_t>(ent[u]) & 0xffffu);
          uint64_t key = 0;
          if (id[u] < a.L) {
            key = make_key(__fmul_rn(sum_term(0.0f, hi ? w1 : w0, dot), inv[u]), id[u]);
            if (key <= (hi ? thr1 : thr0)) key = 0;
          }
          myq[(hi ? kQueue + e - n0 : e) * 256] = key;
          if (a.stats && key) atomicAdd(a.stats + 2, 1ull);
        }
      }
    }
    __syncwarp();
    const bool hi = orow >= 8;
    const unsigned qd = 4 * (orow & 7u);
#pragma unroll
    for (int s = 0; s < 4; ++s) {
      const int clo = __shfl_sync(kFull, n0, static_cast<int>(qd) + s);
      const int chi = __shfl_sync(kFull, n1, static_cast<int>(qd) + s);
      if (lane < 16) {
        const int c = hi ? chi : clo;
        const uint64_t* src = queue + (hi ? kQueue * 256 : 0) + cw * 32 + static_cast<int>(qd) + s;
        for (int e = 0; e < c; ++e) {
          const uint64_t key = src[e * 256];
          if (key > othr) {
            // The list is kept unsorted (sorted once at the end): the key replaces the smallest
            // entry, then one scan with independent loads finds the next smallest (~100 cycles
            // against ~350 for a sorted insertion's dependent load / store chain).
            olist[opos] = key;
            uint64_t mn = olist[0];
            int p = 0;
#pragma unroll 4
            for (int j = 1; j < K; ++j) {
              const uint64_t v = olist[j];
              if (v < mn) {
                mn = v;
                p = j;
              }
            }
            opos = p;
            othr = umax64(mn, oib);
          }
        }
      }
    }
    __syncwarp();
    thr0 = shfl64(othr, static_cast<int>(lane >> 2));
    thr1 = shfl64(othr, static_cast<int>(lane >> 2) + 8);
    c0 = bound_base(thr0, w0, v0);
    c1 = bound_base(thr1, w1, v1);
    n0 = 0;
    n1 = 0;
    if (a.stats && lane == 0) atomicAdd(a.stats + 3, 1ull);
  };

  const uint32_t a_base = smem_u32(sA) + g * 64 * Kp;
  const uint32_t b_base0 = smem_u32(sB);
  const uint32_t sbo = 8 * Kp;

  // Issues tile `it`'s MMAs into acc (asynchronous; completes in commit order). Past the last
  // tile (valid false) it multiplies whatever a finished stage holds and the result is dropped:
  // the issue and epilogue sequences stay unconditional, so the compiler never has to move an
  // accumulator register that an MMA in flight may still write (which would serialise them).
  // Also reads the tile's 1 / max inv (rim) for its epilogue, so that the epilogue can give the
  // stage back before it touches shared memory.
  auto issue = [&](int (&acc)[64], int it, bool valid, float& rim) {
    const uint32_t round = stage_round(it);
    const int st = it - static_cast<int>(round) * a.stages;
    if (valid) {
      mbar_wait(full0 + 8 * st, round & 1);
      rim = *reinterpret_cast<const float*>(sB + static_cast<size_t>(st) * stride + kTileWords * Kp + kExtraRim);
    }
#pragma unroll
    for (int i = 0; i < 64; ++i) fence_operand(acc[i]);
    wgmma_fence();
    const uint64_t da = make_desc(a_base, 128, sbo), db = make_desc(b_base0 + st * stride, 128, sbo);
#pragma unroll
    for (int s = 0; s < KS; ++s) wgmma_m64n128k32(acc, da + 16 * s, db + 16 * s, s > 0);  // +256 bytes a step
    wgmma_commit();
  };

  // Tile `it`'s MMAs are done. Per tile: one bound per row half (a multiply), the stage goes
  // back to the producer, 64 integer compares; the rare passing dots are queued as raw entries
  // (predicated stores, nothing else), and scored and inserted only at a drain, when a queue
  // might overflow. Nothing waits on another warp outside a drain.
  auto epilogue = [&](int (&acc)[64], int it, bool valid, float rim) {
#pragma unroll
    for (int i = 0; i < 64; ++i) fence_operand(acc[i]);
    if (!valid) return;
    const int st = it - static_cast<int>(stage_round(it)) * a.stages;
    // Nothing below reads the stage (dots in registers, rim read at the issue, inv and ids from L2
    // at the drain).
    __syncwarp();
    if (lane == 0) mbar_arrive(empty0 + 8 * st);
    if (a.mode == 1) return;
    int T0 = tile_bound(c0, rim), T1 = tile_bound(c1, rim);
    unsigned anym = 0;  // bit sr: some accumulator of sub-round sr passes
#pragma unroll
    for (int sr = 0; sr < 64 / kStage; ++sr) {
      bool x = false;
#pragma unroll
      for (int ii = 0; ii < kStage; ++ii) {
        const int i = sr * kStage + ii;
        x |= acc[i] > ((i & 2) ? T1 : T0);
      }
      anym |= x ? (1u << sr) : 0u;
    }
    // (Or a warp of this warpgroup asked for a group drain: see gflag.)
    if (a.mode == 2 || (!__any_sync(kFull, anym != 0) && !(a.group_soft && *gflag))) return;  // (most warp-tiles)
    if (a.stats && lane == 0) atomicAdd(a.stats + 0, 1ull);
    const uint64_t base = (static_cast<uint64_t>(it) << 32) | (static_cast<uint64_t>(2 * (lane & 3)) << 16);
    const int before = n0 + n1;
    // Each sub-round adds at most 4 entries a row half. Common case: room for all of this lane's
    // active sub-rounds (after at most one drain): each sub-round where some lane has a candidate
    // is staged behind one warp-uniform branch, no further votes. Otherwise (early tiles, loose
    // bounds) a runtime loop over the sub-rounds checks the room before each (the switch keeps
    // the accumulator indices compile-time constants).
    const int need = 4 * __popc(anym);
    if ((a.group_soft && *gflag) || __any_sync(kFull, n0 + need > kQueue || n1 + need > kQueue)) {
      __syncwarp();
      if (a.group_soft && lane == 0) *gflag = 0;
      drain();
      T0 = tile_bound(c0, rim);
      T1 = tile_bound(c1, rim);
    }
    unsigned wm = __reduce_or_sync(kFull, anym);
    if (!__any_sync(kFull, need > kQueue)) {
#define IGLA_STAGE(SR) \
  if (wm & (1u << SR)) { \
    if ((anym >> SR) & 1u) stage_sub<SR>(acc, T0, T1, qa, base, n0, n1); \
  }
      IGLA_STAGE(0) IGLA_STAGE(1) IGLA_STAGE(2) IGLA_STAGE(3) IGLA_STAGE(4) IGLA_STAGE(5) IGLA_STAGE(6) IGLA_STAGE(7)
#undef IGLA_STAGE
      wm = 0;
    }
#pragma unroll 1
    while (wm) {
      const int sr = __ffs(static_cast<int>(wm)) - 1;
      wm &= wm - 1;
      const bool mine = (anym >> sr) & 1u;
      if (__any_sync(kFull, n0 > kQueue - 4 || n1 > kQueue - 4)) {
        drain();
        T0 = tile_bound(c0, rim);
        T1 = tile_bound(c1, rim);
      }
      if (mine) {
        switch (sr) {
          case 0: stage_sub<0>(acc, T0, T1, qa, base, n0, n1); break;
          case 1: stage_sub<1>(acc, T0, T1, qa, base, n0, n1); break;
          case 2: stage_sub<2>(acc, T0, T1, qa, base, n0, n1); break;
          case 3: stage_sub<3>(acc, T0, T1, qa, base, n0, n1); break;
          case 4: stage_sub<4>(acc, T0, T1, qa, base, n0, n1); break;
          case 5: stage_sub<5>(acc, T0, T1, qa, base, n0, n1); break;
          case 6: stage_sub<6>(acc, T0, T1, qa, base, n0, n1); break;
          default: stage_sub<7>(acc, T0, T1, qa, base, n0, n1); break;
        }
      }
    }
    if (a.group_soft) {
      const bool req = __any_sync(kFull, n0 > a.group_soft || n1 > a.group_soft);
      if (req && lane == 0) *reinterpret_cast<volatile uint32_t*>(gflag - warp) = 0x01010101u;
    }
    if (a.stats) {
      const int staged = n0 + n1 - before;  // (a drain in between resets the counts: then a lower bound)
      if (staged > 0) atomicAdd(a.stats + 1, static_cast<unsigned long long>(staged));
    }
  };

  // Two accumulator sets: tile it+1's MMAs run on the tensor cores while tile it is selected.
  // Each accumulator register gets its own opaque definition: were two of them (or one and a
  // constant) coalesced, reading one while an MMA writes the other would serialise the MMAs.
  int acc0[64], acc1[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) {
    asm volatile("mov.b32 %0, 0;" : "=r"(acc0[i]));
    asm volatile("mov.b32 %0, 0;" : "=r"(acc1[i]));
  }

  mbar_wait(abar, 0);
  // The starting bounds come from the split's first two tiles:
  // per row the K-th largest dot d among their words of id < L (a binary search over counts of
  // this thread's 64 dots a tile, summed over the row's 4 lanes), taken as the score
  // w * d * inv_min, inv_min the smallest non-zero inverse norm of those words. At least K
  // words of the split score at least that (score = (w * dot) * inv rounded, monotone in both),
  // so every word of the row's global top K still passes; tiles are nnz-sorted, so inv_min is
  // close to every counted word's inv and the bound close to the K-th best score. Both tiles'
  // MMAs are issued again by the loop (two extra MMAs a CTA). (A split's list may so end with
  // fewer than K keys, but it holds every global top-K word of the split: all the merge needs.)
  if (ntl > 0) {
    float r0 = 0.0f, r1 = 0.0f;
    issue(acc0, 0, true, r0);
    issue(acc1, 1, ntl > 1, r1);
    wgmma_wait0();
#pragma unroll
    for (int i = 0; i < 64; ++i) {
      fence_operand(acc0[i]);
      fence_operand(acc1[i]);
    }
    const uint8_t* ex0 = sB + static_cast<size_t>(kTileWords) * Kp;
    const uint8_t* ex1 = ex0 + stride;
    // Column slot s of this thread (accumulators 4 (s / 2) + s % 2 and + 2): word id < L; mn: the
    // smallest non-zero inverse norm of those words over the row's 4 lanes (every word with a
    // dot > 0 has one). A runtime loop: its loads are not all hoisted (register pressure).
    uint32_t ok0 = 0, ok1 = 0;
    float mn = __int_as_float(0x7f800000);
#pragma unroll 4
    for (int sl = 0; sl < 32; ++sl) {
      const uint32_t col = 8 * (sl >> 1) + 2 * (lane & 3) + (sl & 1);
      if (reinterpret_cast<const uint32_t*>(ex0 + kExtraIds)[col] < a.L) {
        ok0 |= 1u << sl;
        const float v = reinterpret_cast<const float*>(ex0)[col];
        if (v > 0.0f) mn = fminf(mn, v);
      }
      if (ntl > 1 && reinterpret_cast<const uint32_t*>(ex1 + kExtraIds)[col] < a.L) {
        ok1 |= 1u << sl;
        const float v = reinterpret_cast<const float*>(ex1)[col];
        if (v > 0.0f) mn = fminf(mn, v);
      }
    }
    mn = fminf(mn, __shfl_xor_sync(kFull, mn, 1));
    mn = fminf(mn, __shfl_xor_sync(kFull, mn, 2));
    const int lo_start = -static_cast<int>(Kp) - 1;
    int lo0 = lo_start, hi0 = static_cast<int>(Kp) + 1, lo1 = lo_start, hi1 = hi0;
#pragma unroll 1
    for (int step = 0; step < 12; ++step) {  // 2^12 > 2 * 384 + 2
      const int m0 = (lo0 + hi0) >> 1, m1 = (lo1 + hi1) >> 1;
      int k0 = 0, k1 = 0;
#pragma unroll
      for (int i = 0; i < 64; ++i) {
        const int sl = 2 * (i >> 2) + (i & 1);
        const int m = (i & 2) ? m1 : m0;
        const int c = static_cast<int>(((ok0 >> sl) & 1u) && acc0[i] >= m) + static_cast<int>(((ok1 >> sl) & 1u) && acc1[i] >= m);
        if (i & 2) k1 += c;
        else k0 += c;
      }
      k0 += __shfl_xor_sync(kFull, k0, 1);
      k0 += __shfl_xor_sync(kFull, k0, 2);
      k1 += __shfl_xor_sync(kFull, k1, 1);
      k1 += __shfl_xor_sync(kFull, k1, 2);
      if (k0 >= K) lo0 = m0;
      else hi0 = m0;
      if (k1 >= K) lo1 = m1;
      else hi1 = m1;
    }
    auto first_key = [&](int d, float w, float mn) -> uint64_t {
      if (d <= 0 || !(w > 0.0f) || !(mn > 0.0f) || !(mn < __int_as_float(0x7f800000))) return 0;
      const float ts = __fmul_rn(sum_term(0.0f, w, d), mn);
      return ts > 0.0f ? static_cast<uint64_t>(ord_of(ts)) << 32 : 0;  // below every key of score >= ts
    };
    thr0 = v0 ? first_key(lo0, w0, mn) : 0;
    thr1 = v1 ? first_key(lo1, w1, mn) : 0;
    c0 = bound_base(thr0, w0, v0);
    c1 = bound_base(thr1, w1, v1);
    const uint64_t olo = shfl64(thr0, static_cast<int>(4 * (orow & 7u)));
    const uint64_t ohi = shfl64(thr1, static_cast<int>(4 * (orow & 7u)));
    oib = orow >= 8 ? ohi : olo;
    othr = oib;
  }
  // Each epilogue runs while the next tile's MMAs are on the tensor cores. Nothing is in flight
  // at the loop's back edge: ptxas then proves the accumulators read are complete (with an MMA
  // pending across the back edge it serialises every wgmma instead, warning C7514).
  float rim0 = 0.0f, rim1 = 0.0f;  // the 1 / max inv of the tiles in acc0 / acc1
  issue(acc0, 0, ntl > 0, rim0);
  for (int it = 0; it < ntl; it += 2) {
    issue(acc1, it + 1, it + 1 < ntl, rim1);
    wgmma_wait1();
    epilogue(acc0, it, true, rim0);
    wgmma_wait0();
    issue(acc0, it + 2, it + 2 < ntl, rim0);
    epilogue(acc1, it + 1, it + 1 < ntl, rim1);
    wgmma_wait0();
  }
  wgmma_wait0();  // the prologue's dummy MMA when there was no tile
#pragma unroll
  for (int i = 0; i < 64; ++i) {
    fence_operand(acc0[i]);
    fence_operand(acc1[i]);
  }
  if (__any_sync(kFull, (n0 | n1) != 0)) drain();
  if (lane < 16) {  // the owner sorts its list (descending) for the merge
    for (int i = 1; i < K; ++i) {
      const uint64_t key = olist[i];
      int j = i;
      while (j > 0 && olist[j - 1] < key) {
        olist[j] = olist[j - 1];
        --j;
      }
      olist[j] = key;
    }
  }
  __syncwarp();
  for (int r = 0; r < 16; ++r) {
    const int qrow = qt * kTileQueries + row_base + r;
    if (qrow < a.n_q && lane < static_cast<unsigned>(K))
      a.partial[(static_cast<size_t>(qrow) * a.n_splits + split) * K + lane] = lists[(row_base + r) * K + lane];
  }
  }  // consumers
}

constexpr int kMaxKSteps = 12;  // dims <= 384
using MmaKernelFn = void (*)(MmaArgs);
template <int... I>
constexpr auto make_mma_table(std::integer_sequence<int, I...>) {
  return std::array<MmaKernelFn, sizeof...(I)>{&mma_kernel<I + 1>...};
}
constexpr auto kMmaKernels = make_mma_table(std::make_integer_sequence<int, kMaxKSteps>{});
MmaKernelFn mma_kernel_for(uint32_t Kp) {
  const uint32_t ks = Kp / 32;
  return (ks >= 1 && ks <= kMaxKSteps) ? kMmaKernels[ks - 1] : nullptr;
}

size_t mma_smem_bytes(uint32_t Kp, int stages, int K) {
  return 1024 + static_cast<size_t>(kTileQueries) * Kp + static_cast<size_t>(stages) * (kTileWords * Kp + kTileExtra) +
         8 * (2 * stages + 2) + static_cast<size_t>(kTileQueries) * K * 8 + 2 * kQueue * 256 * 8;
}

}  // namespace

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

void mma_prepare_attributes(size_t max_smem) {
  cudaFuncSetAttribute(popc_kernel<true>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(max_smem));
  cudaFuncSetAttribute(popc_kernel<false>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(max_smem));
  for (MmaKernelFn f : kMmaKernels)
    cudaFuncSetAttribute(f, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(max_smem));
  for (SingleKernelFn f : kSingleKernels) {
    cudaFuncAttributes attr{};
    if (cudaFuncGetAttributes(&attr, f) == cudaSuccess)
      cudaFuncSetAttribute(f, cudaFuncAttributeMaxDynamicSharedMemorySize,
                           static_cast<int>(max_smem - std::min(max_smem, attr.sharedSizeBytes)));
  }
  cudaGetLastError();
}

bool mma_plan(const DeviceIndex& ix, int n_q, uint32_t L, int K, int num_sms, size_t max_smem, MmaPlan& p,
              int max_stages) {
  if (K < 1 || K > kMaxListK || !mma_kernel_for(ix.Kp)) return false;
  int stages = 0;
  for (int s = std::clamp(max_stages, 2, 6); s >= 2; --s)
    if (mma_smem_bytes(ix.Kp, s, K) <= max_smem) {
      stages = s;
      break;
    }
  if (!stages) return false;
  p.stages = stages;
  p.smem = mma_smem_bytes(ix.Kp, stages, K);
  p.n_qt = (n_q + kTileQueries - 1) / kTileQueries;
  // Every word of id < L lies in the first ceil(L / kSuperBlock) super-blocks (tile_order).
  const uint64_t l_sb = std::min<uint64_t>(ix.n, (uint64_t{L} + kSuperBlock - 1) / kSuperBlock * kSuperBlock);
  p.n_tiles = static_cast<int>((l_sb + kTileWords - 1) / kTileWords);
  // Vocabulary splits: as many as keep every CTA in one wave (one CTA a SM). ceil(SMs / query
  // tiles) could need a second, nearly empty wave that doubles the time (1024 queries:
  // 8 x 17 = 136 CTAs on 132 SMs; 8192: 64 x 3 = 192).
  int splits = std::max(1, num_sms / std::max(1, p.n_qt));
  splits = std::min(splits, std::max(1, p.n_tiles / 2));
  p.tiles_per_split = std::max(1, (p.n_tiles + splits - 1) / splits);
  p.n_splits = std::max(1, (p.n_tiles + p.tiles_per_split - 1) / p.tiles_per_split);
  return true;
}

size_t mma_scratch_bytes(const DeviceIndex& ix, int n_q, int K, const MmaPlan& p) {
  Bump b{nullptr};
  b.take<int8_t>(static_cast<size_t>(p.n_qt) * kTileQueries * ix.Kp);
  b.take<float>(static_cast<size_t>(p.n_qt) * kTileQueries);
  b.take<uint64_t>(static_cast<size_t>(n_q) * p.n_splits * K);
  return b.used + 256;
}

void mma_search(const DeviceIndex& ix, const ChunkQueries& q, uint32_t L, int K, int k, const MmaPlan& p,
                void* scratch, OutHits out, cudaStream_t s) {
  Bump b{static_cast<char*>(scratch)};
  int8_t* qt = b.take<int8_t>(static_cast<size_t>(p.n_qt) * kTileQueries * ix.Kp);
  float* qw = b.take<float>(static_cast<size_t>(p.n_qt) * kTileQueries);
  uint64_t* partial = b.take<uint64_t>(static_cast<size_t>(q.n_q) * p.n_splits * K);
  const size_t items = static_cast<size_t>(p.n_qt) * kTileQueries * (ix.Kp / 16);
  tile_queries_kernel<<<static_cast<int>(std::min<size_t>((items + 255) / 256, 65535)), 256, 0, s>>>(
      q.trits, q.weights, q.term_off, q.n_q, ix.dims, ix.Kp, p.n_qt, qt, qw);
  launch_check("tile_queries_kernel");
  MmaArgs a{ix.tiled, qt, qw, q.n_q, ix.Kp, L, ix.tile_stride, p.n_tiles, p.tiles_per_split, p.n_splits,
            K, p.stages, static_cast<uint32_t>(((uint64_t{1} << 32) + p.stages - 1) / p.stages), partial,
            p.mode, p.group_soft, p.stats};
  mma_kernel_for(ix.Kp)<<<p.n_qt * p.n_splits, 384, p.smem, s>>>(a);
  launch_check("mma_kernel");
  launch_merge(partial, q.n_q, p.n_splits, K, k, q, out, s);
}

PopcPlan popc_plan(const DeviceIndex&, int n_q, uint32_t L, int num_sms, int max_terms, bool single) {
  PopcPlan p;
  p.single = single;
  p.max_terms = max_terms;
  const uint32_t max_splits = std::max<uint32_t>(1, (L + 511) / 512);
  uint32_t splits = std::max<uint32_t>(1, (2u * num_sms + n_q - 1) / n_q);
  splits = std::min(splits, max_splits);
  p.split_len = std::max<uint32_t>(256, ((L + splits - 1) / splits + 255) / 256 * 256);
  p.n_splits = static_cast<int>(std::max<uint32_t>(1, (L + p.split_len - 1) / p.split_len));
  return p;
}

size_t popc_smem_bytes(const DeviceIndex& ix, int max_terms, int K, int n_splits) {
  return 8 * 32 * 8 + static_cast<size_t>(max_terms) * 2 * ix.W * 8 + (max_terms + 1) / 2 * 8 +
         (n_splits > 1 ? static_cast<size_t>(n_splits) * K * 8 : 0) + 16;
}

size_t popc_scratch_bytes(const DeviceIndex& ix, int n_q, int n_terms, int K, const PopcPlan& p) {
  Bump b{nullptr};
  b.take<uint64_t>(static_cast<size_t>(n_terms) * 2 * ix.W);
  b.take<uint64_t>(static_cast<size_t>(n_q) * p.n_splits * K);
  return b.used + 256;
}

void popc_search(const DeviceIndex& ix, const ChunkQueries& q, uint32_t L, int K, int k, const PopcPlan& p,
                 void* scratch, OutHits out, cudaStream_t s) {
  Bump b{static_cast<char*>(scratch)};
  uint64_t* planes = b.take<uint64_t>(static_cast<size_t>(q.n_terms) * 2 * ix.W);
  uint64_t* partial = b.take<uint64_t>(static_cast<size_t>(q.n_q) * p.n_splits * K);
  if (q.planes) {
    planes = const_cast<uint64_t*>(q.planes);
  } else {
    const size_t items = static_cast<size_t>(q.n_terms) * ix.W;
    query_planes_kernel<<<static_cast<int>(std::max<size_t>(1, std::min<size_t>((items + 127) / 128, 65535))), 128,
                          0, s>>>(q.trits, q.n_terms, ix.dims, ix.W, planes);
    launch_check("query_planes_kernel");
  }
  PopcArgs a{ix.codes,  ix.inv,      ix.W,    L,        planes, q.weights,  q.term_off,   q.combine, K,
             p.n_splits, p.split_len, partial, p.counters, k,    q.excl, q.excl_off, out.hits, out.count};
  const size_t smem = popc_smem_bytes(ix, p.max_terms, K, p.n_splits);
  const int grid = q.n_q * p.n_splits;
  // The splits are merged by merge_kernel (batches; a single query normally takes single_kernel,
  // and this path only when it does not fit that kernel's parameters).
  a.counters = nullptr;
  if (p.single) popc_kernel<true><<<grid, 256, smem, s>>>(a);
  else popc_kernel<false><<<grid, 256, smem, s>>>(a);
  launch_check("popc_kernel");
  if (p.n_splits > 1) launch_merge(partial, q.n_q, p.n_splits, K, k, q, out, s);
}

SinglePlan single_plan(const DeviceIndex& ix, uint32_t L, int K, int T, int num_sms, uint32_t split_words) {
  SinglePlan p;
  constexpr uint32_t kOnePass = kSingleThreads * kSingleUnroll;  // words a CTA scores in one pass
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
  p.split_len = len;
  p.n_splits = static_cast<int>(std::max<uint32_t>(1, (L + len - 1) / len));
  const size_t list_cap = std::max<size_t>(static_cast<size_t>(p.n_splits) * K, kOnePass);
  p.smem = (static_cast<size_t>(T) * 2 * ix.W + (T + 1) / 2) * 8 + 2 * list_cap * 8 + 16;
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

void persistent_prepare_attributes(size_t max_smem) {
  for (PersistKernelFn f : kPersistKernels) {
    cudaFuncAttributes attr{};
    if (cudaFuncGetAttributes(&attr, f) == cudaSuccess)
      cudaFuncSetAttribute(f, cudaFuncAttributeMaxDynamicSharedMemorySize,
                           static_cast<int>(max_smem - std::min(max_smem, attr.sharedSizeBytes)));
  }
  cudaGetLastError();
}

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
  const size_t items = static_cast<size_t>(q.n_terms) * ix.W;
  query_planes_kernel<<<static_cast<int>(std::max<size_t>(1, std::min<size_t>((items + 127) / 128, 65535))), 128, 0,
                        s>>>(q.trits, q.n_terms, ix.dims, ix.W, planes);
  launch_check("query_planes_kernel");
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

cudaError_t probe_kernels() {
  cudaFuncAttributes attr;
  cudaError_t e = cudaFuncGetAttributes(&attr, kMmaKernels[0]);
  if (e != cudaSuccess) return e;
  return cudaFuncGetAttributes(&attr, popc_kernel<true>);
}

}  // namespace igla::cuda
