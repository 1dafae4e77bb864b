// igla CUDA backend: the multi-term tensor-core path (mt): Sum queries of 1-4 terms (3CosAdd,
// most_similar with few words), top-K <= 64, dims padded to <= 128. Three launches a chunk:
//   1. bound   one CTA a query scores a sample of the words (WordSample; popcount, as the popc path)
//              and keeps the exact top-K; its K-th key is a lower bound on the K-th key over all words
//              (the K-th largest of a subset is never above the K-th largest of the whole set).
//   2. scan    the exact int32 dot of every term with every word on the tensor cores (mma.sync
//              m16n8k32 s8 x s8 -> s32: each query's terms are rows r, r + 8 of two m16 A tiles,
//              so one thread holds all of a query's dots for two words), the score combined in
//              combine_score's float order, and each key >= the bound appended to the query's
//              candidate list (atomic count; at most `cap` kept).
//   3. select  one CTA a query: the exact top-K of its candidates (warp lists), its exclusions
//              dropped, k hits written. A query whose candidates overflowed the cap is scanned
//              in full here instead (popcount, every word): slower, never wrong.
// Words come from the mma path's int8 tiles (the wgmma canonical layout: an 8-word x 16-byte core
// matrix is contiguous, which is also an m16n8k32 B fragment's order), copied into shared memory
// two tiles deep with cp.async.
// Also here, shared with the mma path: sample_bounds (one-term queries, the mma path's, take
// one_term_bound_kernel, the sample in shared memory, instead of the bound pass above) and
// refill_short_lists (the rescans after the mma path's guessed starts).
#include "cuda/kernels.hpp"

#include <algorithm>
#include <climits>
#include <string>

#include "cuda/device_common.cuh"
#include "cuda/host_common.hpp"
#include "cuda/mt_common.cuh"
#include "cuda/prepare.cuh"
#include "igla/error.hpp"

namespace igla::cuda {

namespace {

constexpr int kMtWarps = 8;
constexpr int kMtQueriesPerWarp = 8;
constexpr int kMtQueriesPerCta = kMtWarps * kMtQueriesPerWarp;

struct MtListArgs {
  const uint64_t* codes;
  const float* inv;
  uint32_t W, L, cap;
  const uint64_t* planes;  // [term][2W]
  const float* weights;
  const uint32_t* term_off;
  int K, k;
  uint64_t* bound;
  uint64_t* cand;
  uint32_t* cand_n;  // the bound pass zeroes it when set
  const uint32_t* excl;
  const uint32_t* excl_off;
  uint2* hits;
  uint32_t* count;
  unsigned long long* stats;  // optional: [4] candidates, [5] overflowed queries
  // The bound pass: the sample's words gathered (gather_sample_kernel): s_n words, their codes in
  // the codes' layout, inverse norms and ids.
  const uint64_t* s_codes;
  const float* s_inv;
  const uint32_t* s_ids;
  uint32_t s_n;
};

// The sample's word ids (WordSample: the first `first` ids, then `spread` ids spread evenly over
// the rest below L) and each one's codes and inverse norm, gathered so that the bound pass reads
// them as it reads consecutive words (the spread ids' planes lie apart: 4x the L2 sectors a word;
// run 59: ~10 ms to bound 65,536 queries with 4,096 spread words).
__global__ void gather_sample_kernel(const uint64_t* codes, const float* inv, uint32_t W, uint32_t first,
                                     uint32_t spread, uint32_t rest, uint64_t* s_codes, float* s_inv,
                                     uint32_t* s_ids) {
  const uint32_t S = first + spread;
  for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < S; i += gridDim.x * blockDim.x) {
    const uint32_t x =
        i < first ? i : first + static_cast<uint32_t>(static_cast<uint64_t>(i - first) * rest / spread);
    const uint64_t* src = codes + static_cast<size_t>(x >> 3) * W * 16 + (x & 7);
    uint64_t* dst = s_codes + static_cast<size_t>(i >> 3) * W * 16 + (i & 7);
    for (uint32_t j = 0; j < 2 * W; ++j) dst[j * 8] = src[j * 8];
    s_inv[i] = inv[x];
    s_ids[i] = x;
  }
}

// kSelect false: the bound pass over the gathered sample (distinct words, so its K-th key is a
// K-th of a subset); true: the select pass.
template <bool kSelect>
__global__ __launch_bounds__(256) void mt_list_kernel(MtListArgs a) {
  extern __shared__ uint64_t sm[];
  const int q = blockIdx.x;
  const uint32_t W = a.W;
  const SharedQuery sq = load_shared_query(sm, q, W, a.planes, a.weights, a.term_off);
  uint64_t* const lists = sq.lists;
  const uint64_t* const qp = sq.qp;
  const float* const w = sq.w;
  const uint32_t T = sq.T;
  const unsigned warp = threadIdx.x >> 5, lane = lane_id();
  WarpList list;
  list.init(a.K);
  uint32_t n = 0;
  bool over = true;  // the bound pass, or candidates past the cap: score the words themselves
  if constexpr (kSelect) {
    n = a.cand_n[q];
    over = n > a.cap;
  }
  if (!over) {
    const uint64_t* c = a.cand + static_cast<size_t>(q) * a.cap;
    for (uint32_t base = warp * 32; base < n; base += 256) list.offer(base + lane < n ? __ldcg(c + base + lane) : 0);
  } else if (kSelect) {
    for (uint32_t base = warp * 32; base < a.L; base += 256) {
      const uint32_t x = base + lane;
      uint64_t key = 0;
      if (x < a.L) key = make_key(score_generic(x, a.codes, W, qp, w, T, 0, __ldg(a.inv + x)), x);
      list.offer(key);
    }
  } else {
    for (uint32_t base = warp * 32; base < a.s_n; base += 256) {
      const uint32_t i = base + lane;
      uint64_t key = 0;
      if (i < a.s_n) key = make_key(score_generic(i, a.s_codes, W, qp, w, T, 0, __ldg(a.s_inv + i)), __ldg(a.s_ids + i));
      list.offer(key);
    }
  }
  tree_merge(list, reinterpret_cast<uint64_t(*)[64]>(lists), static_cast<int>(warp), 0, 8);
  if (warp != 0) return;
  if (kSelect) {
    finalize_list(list, q, a.k, a.excl, a.excl_off, a.hits, a.count);
    if (a.stats && lane == 0) {
      atomicAdd(a.stats + 4, static_cast<unsigned long long>(n));
      if (over) atomicAdd(a.stats + 5, 1ull);
    }
  } else {
    const uint64_t thr = list.threshold();  // the K-th key, 0 when the sample holds fewer than K words
    if (lane == 0) {
      a.bound[q] = thr;
      if (a.cand_n) a.cand_n[q] = 0;
    }
  }
}

// KS: Kp / 32 (k32 steps). CTA: 8 warps x 8 queries; blockIdx.y: the vocabulary split.
template <int KS>
__global__ __launch_bounds__(256) void mt_scan_kernel(MtScanArgs a) {
  extern __shared__ __align__(16) int8_t smt[];
  const unsigned warp = threadIdx.x >> 5, lane = lane_id();
  const unsigned g = lane >> 2, tig = lane & 3;
  const int q = blockIdx.x * kMtQueriesPerCta + static_cast<int>(warp) * kMtQueriesPerWarp + static_cast<int>(g);
  const bool qv = q < a.n_q;
  const uint32_t t0 = qv ? a.term_off[q] : 0, T = qv ? a.term_off[q + 1] - t0 : 0;
  float w[4];
#pragma unroll
  for (uint32_t t = 0; t < 4; ++t) w[t] = t < T ? a.weights[t0 + t] : 0.0f;
  const uint64_t bound = qv ? a.bound[q] : ~0ull;
  MtPrefilter pf;
  pf.init(w, bound, a.prefilter && qv);
  // A fragments: tile h holds terms 2h (rows 0-7) and 2h + 1 (rows 8-15) of the warp's 8 queries.
  uint32_t A[2][KS][4];
  const int8_t* src = a.trits + static_cast<size_t>(t0) * a.dims;
#pragma unroll
  for (int h = 0; h < 2; ++h)
#pragma unroll
    for (int s = 0; s < KS; ++s) {
      const uint32_t k = s * 32 + tig * 4;
      A[h][s][0] = trits4(src, T, 2 * h, a.dims, k);
      A[h][s][1] = trits4(src, T, 2 * h + 1, a.dims, k);
      A[h][s][2] = trits4(src, T, 2 * h, a.dims, k + 16);
      A[h][s][3] = trits4(src, T, 2 * h + 1, a.dims, k + 16);
    }
  const bool four = __any_sync(kFull, T > 2);  // the second A tile (terms 3, 4) is needed

  const int tb = blockIdx.y * a.tiles_per_split;
  const int te = min(tb + a.tiles_per_split, static_cast<int>(a.n_tiles));
  auto issue = [&](int tile, int buf) {
    cp_async_tile(smt + static_cast<size_t>(buf) * a.stride, a.tiled + static_cast<size_t>(tile) * a.stride, a.stride);
    cp_async_commit();
  };
  if (tb < te) issue(tb, 0);
  for (int it = tb; it < te; ++it) {
    const int buf = (it - tb) & 1;
    if (it + 1 < te) {
      issue(it + 1, buf ^ 1);
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const int8_t* tile = smt + static_cast<size_t>(buf) * a.stride;
    const float* tinv = reinterpret_cast<const float*>(tile + kTileWords * a.Kp);
    const uint32_t* tid = reinterpret_cast<const uint32_t*>(tile + kTileWords * a.Kp + kExtraIds);
    const int tthr = pf.tile_threshold(*reinterpret_cast<const float*>(tile + kTileWords * a.Kp + kExtraRim));
#pragma unroll 2
    for (int gi = 0; gi < kTileWords / 8; ++gi) {
      int c0[4] = {0, 0, 0, 0}, c1[4] = {0, 0, 0, 0};
      const int8_t* bp = tile + gi * 8 * KS * 32 + lane * 4;
#pragma unroll
      for (int s = 0; s < KS; ++s) {
        const uint32_t b0 = *reinterpret_cast<const uint32_t*>(bp + (2 * s) * 128);
        const uint32_t b1 = *reinterpret_cast<const uint32_t*>(bp + (2 * s + 1) * 128);
        mma_s8(A[0][s], b0, b1, c0);
        if (four) mma_s8(A[1][s], b0, b1, c1);
      }
      if (qv) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          if (pf.Wi[0] * c0[e] + pf.Wi[1] * c0[2 + e] + pf.Wi[2] * c1[e] + pf.Wi[3] * c1[2 + e] <= tthr) continue;
          const int r = gi * 8 + static_cast<int>(tig) * 2 + e;
          const uint32_t id = tid[r];
          if (id < a.L) {  // not padding (~0u), not past the limit
            const uint64_t key = make_key(mt_exact_score(w, T, c0[e], c0[2 + e], c1[e], c1[2 + e], tinv[r]), id);
            if (key >= bound) {
              const uint32_t pos = atomicAdd(a.cand_n + q, 1u);
              if (pos < a.cap) a.cand[static_cast<size_t>(q) * a.cap + pos] = key;
            }
          }
        }
      }
    }
    __syncthreads();  // the next iteration's copy overwrites this buffer
  }
}

template <int KS>
void launch_scan(const MtScanArgs& a, const MultiPlan& p, cudaStream_t s) {
  mt_scan_kernel<KS><<<dim3(p.n_qb, p.n_splits), 256, p.smem, s>>>(a);
}

const void* scan_kernel_for(int ks) {
  switch (ks) {
    case 1: return reinterpret_cast<const void*>(mt_scan_kernel<1>);
    case 2: return reinterpret_cast<const void*>(mt_scan_kernel<2>);
    case 3: return reinterpret_cast<const void*>(mt_scan_kernel<3>);
    default: return reinterpret_cast<const void*>(mt_scan_kernel<4>);
  }
}

size_t list_smem(const DeviceIndex& ix, int max_terms) {
  return 8 * 64 * 8 + static_cast<size_t>(max_terms) * 2 * ix.W * 8 + (max_terms + 1) / 2 * 8 + 16;
}

struct RefillArgs {
  const uint64_t* codes;
  const float* inv;
  uint32_t W, L;
  const uint64_t* planes;
  const float* weights;
  const uint32_t* term_off;
  int K, n_splits, n_q;
  uint64_t* partial;  // [q][split][K]
  uint32_t* short_n;  // the short queries: their count (zeroed before the check) and ids
  uint32_t* short_q;
  uint64_t* slots;    // [kRefillSlots][kRefillParts][K]: the parts' top K
  unsigned long long* stats;
};

// refill_short_lists, 1: a warp a query counts its lists' keys; a short query's id is listed.
__global__ __launch_bounds__(256) void refill_check_kernel(RefillArgs a) {
  const int q = static_cast<int>(blockIdx.x) * 8 + static_cast<int>(threadIdx.x >> 5);
  if (q >= a.n_q) return;
  const unsigned lane = lane_id();
  const int per_q = a.n_splits * a.K;
  const uint64_t* lists = a.partial + static_cast<size_t>(q) * per_q;
  int c = 0;
  for (int i = static_cast<int>(lane); i < per_q; i += 32) c += lists[i] != 0;
  c = __reduce_add_sync(kFull, c);
  if (lane == 0 && c < a.K) a.short_q[atomicAdd(a.short_n, 1u)] = static_cast<uint32_t>(q);
}

// The kernel for W (kW = W up to 4, else 0: W read at run time).
template <template <int> class Fn>
auto by_w(uint32_t W) {
  switch (W) {
    case 1: return Fn<1>::f;
    case 2: return Fn<2>::f;
    case 3: return Fn<3>::f;
    case 4: return Fn<4>::f;
    default: return Fn<0>::f;
  }
}

// A short query's full scan: its words below L in kRefillParts parts, their top K merged after.
// One CTA a (short query, part) read the words from L2 once a query (~0.3 ms a chunk of 16,896
// nearest queries, ~1.2 of a reranked 65,536 batch's 22.6 ms, run 80); a CTA now takes a part
// for kRefillGroup short queries, a warp each, the part's words staged in shared memory a tile at
// a time, so each word is read once a group. Slots for kRefillSlots short queries a chunk (~75
// at K = 53 with the sample's 3rd key, NOTES v19); the merge scans any further ones in full, a
// CTA each (slower, exact).
constexpr int kRefillParts = 64;
constexpr int kRefillGroup = 8;  // = the CTA's warps
constexpr int kRefillSlots = 512;

// Words a tile of the scan: as many as fit in ~40 KB (multiples of 32, at most 512).
uint32_t refill_tile_words(uint32_t W) {
  return std::clamp<uint32_t>(40u * 1024u / (16u * W + 4u) / 32u * 32u, 32u, 512u);
}
size_t refill_scan_smem(uint32_t W) {
  return static_cast<size_t>(refill_tile_words(W)) * (16u * W + 4u) + kRefillGroup * (2 * W * 8 + 8) + 16;
}

// Scores words [x0, x1) for the query sq into `list` (a warp's part: words x0 + 128 i + 32 u +
// lane, four a lane in flight).
__device__ __forceinline__ void scan_words(WarpList& list, const RefillArgs& a, const SharedQuery& sq, uint32_t x0,
                                           uint32_t x1, unsigned warp, unsigned n_warps) {
  const unsigned lane = lane_id();
  for (uint32_t base = x0 + warp * 128; base < x1; base += n_warps * 128) {
    uint64_t key[4];
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const uint32_t x = base + 32 * u + lane;
      key[u] = x < x1 ? make_key(score_generic(x, a.codes, a.W, sq.qp, sq.w, sq.T, 0, __ldg(a.inv + x)), x) : 0;
    }
#pragma unroll
    for (int u = 0; u < 4; ++u) list.offer(key[u]);
  }
}

// 2: CTA (g, r): warp w scores short query j = kRefillGroup g + w (a one-term query: the mma
// path's) over part r of the words below L into slot (j, r). The part's words are staged a tile
// at a time (whole blocks of 8 in the codes' layout, so a tile is one contiguous copy).
template <int kW>
__global__ __launch_bounds__(256) void refill_scan_kernel(RefillArgs a, uint32_t tile_words) {
  extern __shared__ uint64_t sm[];
  const uint32_t W = a.W;
  uint64_t* tc = sm;                                             // tile_words * 2W, the codes' layout
  float* tinv = reinterpret_cast<float*>(tc + static_cast<size_t>(tile_words) * 2 * W);  // tile_words
  uint64_t* qps = reinterpret_cast<uint64_t*>(tinv + tile_words);  // [warp][2W]
  float* ws = reinterpret_cast<float*>(qps + kRefillGroup * 2 * W);  // [warp]
  const uint32_t g = blockIdx.x / kRefillParts, r = blockIdx.x % kRefillParts;
  const uint32_t n_short = min(*a.short_n, static_cast<uint32_t>(kRefillSlots));
  if (g * kRefillGroup >= n_short) return;  // (CTA-uniform)
  const unsigned warp = threadIdx.x >> 5, lane = lane_id();
  const uint32_t j = g * kRefillGroup + warp;
  const bool live = j < n_short;
  uint64_t* qp = qps + warp * 2 * W;
  if (live) {
    const uint32_t t0 = a.term_off[a.short_q[j]];
    for (uint32_t i = lane; i < 2 * W; i += 32) qp[i] = a.planes[static_cast<size_t>(t0) * 2 * W + i];
    if (lane == 0) ws[warp] = a.weights[t0];
  }
  const uint32_t x0 = static_cast<uint32_t>(uint64_t{a.L} * r / kRefillParts);
  const uint32_t x1 = static_cast<uint32_t>(uint64_t{a.L} * (r + 1) / kRefillParts);
  __syncwarp();
  uint64_t qn[kW > 0 ? kW : 1], qs[kW > 0 ? kW : 1];  // kW > 0: the query's planes (nz, sign)
  const float qw = live ? ws[warp] : 0.0f;
  if constexpr (kW > 0) {
#pragma unroll
    for (int j = 0; j < kW; ++j) qn[j] = live ? qp[j] : 0, qs[j] = live ? qp[kW + j] : 0;
  }
  WarpList list;
  list.init(a.K);
  for (uint32_t b0 = x0 & ~7u; b0 < x1; b0 += tile_words) {
    const uint32_t nb = min(tile_words, (x1 - b0 + 7) & ~7u);  // whole blocks (the codes are padded to 8)
    __syncthreads();  // the previous tile is scored (and, the first time, qp and ws are written)
    const uint64_t* src = a.codes + static_cast<size_t>(b0 >> 3) * 16 * W;
    for (uint32_t i = threadIdx.x; i < nb * 2 * W; i += blockDim.x) tc[i] = __ldg(src + i);
    for (uint32_t i = threadIdx.x; i < nb; i += blockDim.x) tinv[i] = b0 + i < x1 ? __ldg(a.inv + b0 + i) : 0.0f;
    __syncthreads();
    if (!live) continue;
    // Four keys a lane in flight, one vote for them: once the list is full, most beat nothing.
    for (uint32_t base = 0; base < nb; base += 128) {
      uint64_t key[4], best = 0;
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        const uint32_t i = base + 32 * u + lane, x = b0 + i;
        if (!(i < nb && x >= x0 && x < x1)) {
          key[u] = 0;
        } else if constexpr (kW > 0) {  // score_generic's arithmetic, the query's planes in registers
          const uint64_t* wp = tc + static_cast<size_t>(i >> 3) * kW * 16 + (i & 7);
          int dot = 0;
#pragma unroll
          for (int j = 0; j < kW; ++j) {
            const uint64_t m = wp[j * 16] & qn[j];
            dot += __popcll(m) - 2 * __popcll(m & (wp[j * 16 + 8] ^ qs[j]));
          }
          key[u] = make_key(__fmul_rn(sum_term(0.0f, qw, dot), tinv[i]), x);
        } else {
          key[u] = make_key(score_generic<false>(i, tc, W, qp, ws + warp, 1, 0, tinv[i]), x);
        }
        best = umax64(best, key[u]);
      }
      if (!__any_sync(kFull, best > list.threshold())) continue;
#pragma unroll
      for (int u = 0; u < 4; ++u) list.offer(key[u]);
    }
  }
  if (live) list.store(a.slots + (static_cast<size_t>(j) * kRefillParts + r) * a.K);
}
template <int kW> struct RefillScanFn { static constexpr auto f = refill_scan_kernel<kW>; };

// 3: CTA j merges slot j's parts into the query's lists (split 0; the others emptied); past the
// slots, the CTAs scan the remaining short queries in full, a CTA each.
__global__ __launch_bounds__(256) void refill_merge_kernel(RefillArgs a) {
  extern __shared__ uint64_t sm[];
  const unsigned warp = threadIdx.x >> 5, lane = lane_id();
  const uint32_t n_short = *a.short_n;
  const int per_q = a.n_splits * a.K;
  auto put = [&](WarpList& list, int q) {
    uint64_t* lists = a.partial + static_cast<size_t>(q) * per_q;
    for (int i = a.K + static_cast<int>(threadIdx.x); i < per_q; i += blockDim.x) lists[i] = 0;
    if (warp == 0) {
      list.store(lists);
      if (a.stats && lane == 0) atomicAdd(a.stats + 5, 1ull);
    }
  };
  if (blockIdx.x < min(n_short, static_cast<uint32_t>(kRefillSlots))) {
    WarpList list;
    list.init(a.K);
    for (int r = static_cast<int>(warp); r < kRefillParts; r += 8)
      list.merge_stored(a.slots + (static_cast<size_t>(blockIdx.x) * kRefillParts + r) * a.K);
    tree_merge(list, reinterpret_cast<uint64_t(*)[64]>(sm), static_cast<int>(warp), 0, 8);
    put(list, static_cast<int>(a.short_q[blockIdx.x]));
  }
  for (uint32_t j = kRefillSlots + blockIdx.x; j < n_short; j += gridDim.x) {  // (CTA-uniform)
    __syncthreads();  // the previous query's planes and lists are read
    const int q = static_cast<int>(a.short_q[j]);
    const SharedQuery sq = load_shared_query(sm, q, a.W, a.planes, a.weights, a.term_off);
    WarpList list;
    list.init(a.K);
    scan_words(list, a, sq, 0, a.L, warp, 8);
    tree_merge(list, reinterpret_cast<uint64_t(*)[64]>(sq.lists), static_cast<int>(warp), 0, 8);
    put(list, q);
  }
}

// The bound pass of one-term queries (the mma path's start) with the gathered sample in shared
// memory: a warp a query, a CTA kBoundQueries queries, so the sample is read from L2 once a CTA
// instead of once a query (mt_list_kernel<false>, one CTA a query: ~0.45 ms a chunk of 16,896
// queries at 2,048 words, run 65; this kernel 0.28 ms, run 68, and no faster with 16 warps a
// CTA, run 69).
constexpr int kBoundQueries = 64;
struct OneTermBoundArgs {
  const uint64_t* planes;
  const float* weights;
  const uint32_t* term_off;
  const uint64_t* s_codes;
  const float* s_inv;
  const uint32_t* s_ids;
  uint32_t s_n, W;
  int n_q, K;
  uint64_t* bound;
  uint32_t* cand_n;
};
// The gathered sample (codes, inverse norms, ids) into the block's shared memory.
__device__ __forceinline__ void load_sample(const OneTermBoundArgs& a, size_t code_words, uint64_t* sc, float* sinv,
                                            uint32_t* sid) {
  for (size_t i = threadIdx.x; i < code_words; i += blockDim.x) sc[i] = a.s_codes[i];
  for (uint32_t i = threadIdx.x; i < a.s_n; i += blockDim.x) {
    sinv[i] = a.s_inv[i];
    sid[i] = a.s_ids[i];
  }
  __syncthreads();
}
size_t one_term_bound_smem(uint32_t S, uint32_t W) {
  return static_cast<size_t>((S + 7) / 8) * 16 * W * 8 + static_cast<size_t>(S) * 8 + 8 * 2 * W * 8 + 16;
}
__global__ __launch_bounds__(256) void one_term_bound_kernel(OneTermBoundArgs a) {
  extern __shared__ uint64_t smb[];
  const uint32_t W = a.W, S = a.s_n;
  const size_t code_words = static_cast<size_t>((S + 7) / 8) * 16 * W;
  uint64_t* sc = smb;
  uint64_t* qps = sc + code_words;                 // [8 warps][2W]
  float* sinv = reinterpret_cast<float*>(qps + 8 * 2 * W);
  uint32_t* sid = reinterpret_cast<uint32_t*>(sinv + S);
  load_sample(a, code_words, sc, sinv, sid);
  const unsigned warp = threadIdx.x >> 5, lane = lane_id();
  uint64_t* qp = qps + warp * 2 * W;
  const int q_end = min(a.n_q, static_cast<int>(blockIdx.x + 1) * kBoundQueries);
  for (int q = static_cast<int>(blockIdx.x) * kBoundQueries + static_cast<int>(warp); q < q_end; q += 8) {
    const uint32_t t0 = a.term_off[q];
    for (uint32_t i = lane; i < 2 * W; i += 32) qp[i] = a.planes[static_cast<size_t>(t0) * 2 * W + i];
    const float w = a.weights[t0];
    __syncwarp();
    WarpList list;
    list.init(a.K);
    for (uint32_t base = 0; base < S; base += 32) {
      const uint32_t i = base + lane;
      uint64_t key = 0;
      if (i < S) {
        key = make_key(score_generic<false>(i, sc, W, qp, &w, 1, 0, sinv[i]), sid[i]);
      }
      list.offer(key);
    }
    const uint64_t thr = list.threshold();  // 0 when the sample holds fewer than K words
    if (lane == 0) {
      a.bound[q] = thr;
      if (a.cand_n) a.cand_n[q] = 0;
    }
    __syncwarp();  // the next query's planes overwrite qp
  }
}

// The bound pass with per-lane lists (WordSample::lane_bound; the default since run 73, NOTES
// v21): a warp scores kLaneQ queries at once against each sample word (its planes read once),
// each lane keeping its own top 4 keys a query in registers (compare-swaps, no shuffles in the
// loop: compact code, NOTES v20); at the end the r-th key over the warp's lanes (r <= 4) by r
// rounds of a warp max.
constexpr int kLaneQ = 4;
size_t lane_bound_smem(uint32_t S, uint32_t W) {
  return static_cast<size_t>((S + 7) / 8) * 16 * W * 8 + static_cast<size_t>(S) * 8 +
         8 * (kLaneQ * 2 * W * 8 + kLaneQ * 4) + 16;
}
__device__ __forceinline__ uint64_t warp_max64(uint64_t v) {
#pragma unroll
  for (int o = 16; o; o >>= 1) v = umax64(v, shfl_xor64(v, o));
  return v;
}
template <int kW>
__global__ __launch_bounds__(256) void lane_bound_kernel(OneTermBoundArgs a) {
  extern __shared__ uint64_t smb[];
  const uint32_t W = a.W, S = a.s_n;
  const size_t code_words = static_cast<size_t>((S + 7) / 8) * 16 * W;
  uint64_t* sc = smb;
  float* sinv = reinterpret_cast<float*>(sc + code_words);
  uint32_t* sid = reinterpret_cast<uint32_t*>(sinv + S);
  uint64_t* gq = reinterpret_cast<uint64_t*>(sid + S);
  load_sample(a, code_words, sc, sinv, sid);
  const unsigned warp = threadIdx.x >> 5, lane = lane_id();
  uint64_t* qp = gq + warp * (kLaneQ * 2 * W + kLaneQ / 2);
  float* w = reinterpret_cast<float*>(qp + kLaneQ * 2 * W);
  const int q_end = min(a.n_q, static_cast<int>(blockIdx.x + 1) * kBoundQueries);
  for (int q0 = static_cast<int>(blockIdx.x) * kBoundQueries + static_cast<int>(warp) * kLaneQ; q0 < q_end;
       q0 += 8 * kLaneQ) {
    const int n = min(kLaneQ, q_end - q0);
    for (uint32_t i = lane; i < kLaneQ * 2 * W; i += 32) {
      const int g = static_cast<int>(i / (2 * W));
      qp[i] = g < n ? a.planes[static_cast<size_t>(a.term_off[q0 + g]) * 2 * W + i % (2 * W)] : 0;
    }
    if (lane < kLaneQ) w[lane] = static_cast<int>(lane) < n ? a.weights[a.term_off[q0 + static_cast<int>(lane)]] : 0.0f;
    __syncwarp();
    uint64_t t[kLaneQ][4];
#pragma unroll
    for (int g = 0; g < kLaneQ; ++g)
#pragma unroll
      for (int j = 0; j < 4; ++j) t[g][j] = 0;
    for (uint32_t i = lane; i < S; i += 32) {
      const uint64_t* wp = sc + static_cast<size_t>(i >> 3) * W * 16 + (i & 7);
      int d[kLaneQ];
      if constexpr (kW > 0) {
        uint64_t nz[kW], sg[kW];
#pragma unroll
        for (int j = 0; j < kW; ++j) {
          nz[j] = wp[j * 16];
          sg[j] = wp[j * 16 + 8];
        }
#pragma unroll
        for (int g = 0; g < kLaneQ; ++g) {
          int dot = 0;
#pragma unroll
          for (int j = 0; j < kW; ++j) {
            const uint64_t m = nz[j] & qp[g * 2 * kW + j];
            dot += __popcll(m) - 2 * __popcll(m & (sg[j] ^ qp[g * 2 * kW + kW + j]));
          }
          d[g] = dot;
        }
      } else {
#pragma unroll
        for (int g = 0; g < kLaneQ; ++g) d[g] = dot_planes<false>(wp, qp + g * 2 * W, W);
      }
      const float xi = sinv[i];
      const uint32_t id = sid[i];
#pragma unroll
      for (int g = 0; g < kLaneQ; ++g) {
        uint64_t k = make_key(__fmul_rn(sum_term(0.0f, w[g], d[g]), xi), id);  // as score_generic
#pragma unroll
        for (int j = 0; j < 4; ++j) {  // into the lane's descending top 4 (k drops out when smaller)
          const uint64_t hi = umax64(t[g][j], k);
          k = umin64(t[g][j], k);
          t[g][j] = hi;
        }
      }
    }
#pragma unroll
    for (int g = 0; g < kLaneQ; ++g) {
      uint64_t m = 0;
      for (int r = 0; r < a.K; ++r) {  // a.K: the bound's rank, <= 4 (keys unique but for zeros)
        m = warp_max64(t[g][0]);
        if (m != 0 && t[g][0] == m) {
          t[g][0] = t[g][1];
          t[g][1] = t[g][2];
          t[g][2] = t[g][3];
          t[g][3] = 0;
        }
      }
      if (lane == 0 && g < n) {
        a.bound[q0 + g] = m;  // 0 when the sample holds fewer than r words
        if (a.cand_n) a.cand_n[q0 + g] = 0;
      }
    }
    __syncwarp();  // the next queries' planes overwrite qp
  }
}
template <int kW> struct LaneBoundFn { static constexpr auto f = lane_bound_kernel<kW>; };

}  // namespace

size_t sample_words_bytes(const DeviceIndex& ix, uint64_t S) {
  Bump b{nullptr};
  b.take<uint64_t>(static_cast<size_t>((S + 7) / 8) * 16 * ix.W);
  b.take<float>(static_cast<size_t>(S));
  b.take<uint32_t>(static_cast<size_t>(S));
  return b.used + 256;
}

size_t refill_scratch_bytes(int n_q, int K) {
  Bump b{nullptr};
  b.take<uint32_t>(static_cast<size_t>(n_q) + 1);
  b.take<uint64_t>(static_cast<size_t>(std::min(n_q, kRefillSlots)) * kRefillParts * K);
  return b.used + 256;
}

void refill_short_lists(const DeviceIndex& ix, const ChunkQueries& q, const uint64_t* planes, uint32_t L, int K,
                        uint64_t* partial, int n_splits, void* scratch, unsigned long long* stats, cudaStream_t s) {
  if (q.n_q == 0) return;
  Bump b{static_cast<char*>(scratch)};
  auto* short_n = b.take<uint32_t>(static_cast<size_t>(q.n_q) + 1);
  uint64_t* slots = b.take<uint64_t>(static_cast<size_t>(std::min(q.n_q, kRefillSlots)) * kRefillParts * K);
  RefillArgs a{ix.codes, ix.inv, ix.W, L, planes, q.weights, q.term_off, K, n_splits, q.n_q, partial,
               short_n, short_n + 1, slots, stats};
  if (const cudaError_t e = cudaMemsetAsync(short_n, 0, sizeof(uint32_t), s); e != cudaSuccess)
    cuda_fail(e, "cudaMemsetAsync (refill)");
  refill_check_kernel<<<(q.n_q + 7) / 8, 256, 0, s>>>(a);
  launch_check("refill_check_kernel");
  const size_t smem = list_smem(ix, 1);
  const int slots_used = std::min(q.n_q, kRefillSlots);
  const int groups = (slots_used + kRefillGroup - 1) / kRefillGroup;
  by_w<RefillScanFn>(ix.W)<<<groups * kRefillParts, 256, refill_scan_smem(ix.W), s>>>(a, refill_tile_words(ix.W));
  launch_check("refill_scan_kernel");
  refill_merge_kernel<<<slots_used, 256, smem, s>>>(a);
  launch_check("refill_merge_kernel");
}

void multi_prepare_attributes(size_t max_smem) {
  auto set = [&](const void* f) {
    cudaFuncAttributes attr{};
    if (cudaFuncGetAttributes(&attr, f) == cudaSuccess)
      cudaFuncSetAttribute(f, cudaFuncAttributeMaxDynamicSharedMemorySize,
                           static_cast<int>(max_smem - std::min(max_smem, attr.sharedSizeBytes)));
  };
  for (int ks = 1; ks <= 4; ++ks) {
    set(scan_kernel_for(ks));
    set(shared_terms_kernel(ks));
  }
  set(reinterpret_cast<const void*>(one_term_bound_kernel));
  for (uint32_t w = 0; w <= 4; ++w) set(reinterpret_cast<const void*>(by_w<LaneBoundFn>(w)));
  set(shared_terms_bound_kernel());
  cudaGetLastError();
}

bool multi_plan(const DeviceIndex& ix, int n_q, uint32_t L, int K, int max_terms, int num_sms, size_t max_smem,
                uint32_t cap, WordSample sample, MultiPlan& p) {
  if (!ix.tiled || ix.Kp == 0 || ix.Kp > kMultiMaxKp || max_terms < 1 || max_terms > kMultiMaxTerms || K < 1 ||
      K > kMaxListK || n_q < 1 || L == 0)
    return false;
  p.ks = static_cast<int>(ix.Kp / 32);
  p.smem = 2 * static_cast<size_t>(ix.tile_stride);
  if (p.smem + 1024 > max_smem || list_smem(ix, max_terms) > max_smem) return false;
  // Every word of id < L lies in the first ceil(L / kSuperBlock) super-blocks (tile_order).
  const uint64_t l_sb = std::min<uint64_t>(ix.n, (uint64_t{L} + kSuperBlock - 1) / kSuperBlock * kSuperBlock);
  p.n_tiles = static_cast<int>(std::min<uint64_t>(ix.n_tiles, (l_sb + kTileWords - 1) / kTileWords));
  p.n_qb = (n_q + kMtQueriesPerCta - 1) / kMtQueriesPerCta;
  // Vocabulary splits: ~4 CTAs a SM. (Splits filling exactly one wave of resident CTAs, 3 a SM
  // at 74 registers, timed no gain in runs 61-62: 22.2 vs 21.8 ms.)
  const int want = std::max(1, (4 * num_sms + p.n_qb - 1) / p.n_qb);
  p.n_splits = std::min(want, p.n_tiles);
  p.tiles_per_split = (p.n_tiles + p.n_splits - 1) / p.n_splits;
  p.n_splits = (p.n_tiles + p.tiles_per_split - 1) / p.tiles_per_split;
  p.cap = std::max<uint32_t>(1, std::min(cap, L));
  p.sample = sample;
  if (!p.sample.on()) p.sample.first = 1;
  p.max_terms = max_terms;
  p.max_smem = max_smem;
  p.num_sms = num_sms;
  return true;
}

size_t multi_scratch_bytes(const DeviceIndex& ix, int n_q, int n_terms, const MultiPlan& p) {
  Bump b{nullptr};
  b.take<uint64_t>(static_cast<size_t>(n_terms) * 2 * ix.W);
  b.take<uint64_t>(static_cast<size_t>(n_q));
  b.take<uint32_t>(static_cast<size_t>(n_q));
  b.take<uint64_t>(static_cast<size_t>(n_q) * p.cap);
  b.take<char>(sample_words_bytes(ix, uint64_t{p.sample.first} + p.sample.spread));
  b.take<char>(shared_terms_scratch_bytes(n_q));
  if (p.shared_bound) b.take<char>(shared_terms_bounds_scratch_bytes(ix, uint64_t{p.sample.first} + p.sample.spread));
  return b.used + 256;
}

void sample_bounds(const DeviceIndex& ix, const ChunkQueries& q, uint32_t L, int K, int max_terms, WordSample ws,
                   size_t max_smem, uint64_t* planes_scratch, void* sample_scratch, uint64_t* bound, uint32_t* cand_n,
                   cudaStream_t s, void* distinct_scratch) {
  const uint64_t* planes = q.planes;
  if (!planes) {
    query_planes(q.trits, q.n_terms, ix.dims, ix.W, planes_scratch, s);
    planes = planes_scratch;
  }
  const uint32_t first = std::min(ws.first, L), rest = L - first, spread = std::min(ws.spread, rest);
  const uint32_t S = first + spread;
  Bump b{static_cast<char*>(sample_scratch)};
  uint64_t* s_codes = b.take<uint64_t>(static_cast<size_t>((S + 7) / 8) * 16 * ix.W);
  float* s_inv = b.take<float>(S);
  uint32_t* s_ids = b.take<uint32_t>(S);
  if (S > 0) {
    gather_sample_kernel<<<static_cast<int>(std::min<uint32_t>((S + 255) / 256, 1024)), 256, 0, s>>>(
        ix.codes, ix.inv, ix.W, first, spread, rest, s_codes, s_inv, s_ids);
    launch_check("gather_sample_kernel");
  }
  if (max_terms == 1 && S > 0 && ws.lane_bound && ws.bound_rank(K) <= 4 && lane_bound_smem(S, ix.W) <= max_smem) {
    OneTermBoundArgs oa{planes, q.weights, q.term_off, s_codes, s_inv, s_ids,
                        S,      ix.W,      q.n_q,      ws.bound_rank(K), bound, cand_n};
    by_w<LaneBoundFn>(ix.W)<<<(q.n_q + kBoundQueries - 1) / kBoundQueries, 256, lane_bound_smem(S, ix.W), s>>>(oa);
    launch_check("lane_bound_kernel");
    return;
  }
  const size_t one_smem = one_term_bound_smem(S, ix.W);
  if (max_terms == 1 && S > 0 && one_smem <= max_smem) {
    OneTermBoundArgs oa{planes, q.weights, q.term_off, s_codes, s_inv, s_ids,
                        S,      ix.W,      q.n_q,      ws.bound_rank(K), bound, cand_n};
    one_term_bound_kernel<<<(q.n_q + kBoundQueries - 1) / kBoundQueries, 256, one_smem, s>>>(oa);
    launch_check("one_term_bound_kernel");
    return;
  }
  if (distinct_scratch && q.n_distinct > 0 && max_terms <= kMultiMaxTerms &&
      shared_terms_bounds(ix, q, ws.bound_rank(K), SampleWords{s_codes, s_inv, s_ids, S}, max_smem, distinct_scratch,
                          bound, cand_n, s))
    return;
  MtListArgs la{};
  la.codes = ix.codes, la.inv = ix.inv, la.W = ix.W, la.L = L;
  la.planes = planes, la.weights = q.weights, la.term_off = q.term_off, la.K = ws.bound_rank(K), la.bound = bound;
  la.cand_n = cand_n;
  la.s_codes = s_codes, la.s_inv = s_inv, la.s_ids = s_ids, la.s_n = S;
  mt_list_kernel<false><<<q.n_q, 256, list_smem(ix, max_terms), s>>>(la);
  launch_check("mt_list_kernel (bound)");
}

size_t sample_bounds_scratch_bytes(const DeviceIndex& ix, int n_q, int n_terms, WordSample ws) {
  const uint64_t S = uint64_t{ws.first} + ws.spread;
  Bump b{nullptr};
  b.take<uint64_t>(static_cast<size_t>(n_terms) * 2 * ix.W);
  b.take<uint64_t>(static_cast<size_t>(n_q));
  b.take<char>(sample_words_bytes(ix, S));
  return b.used;
}

void multi_search(const DeviceIndex& ix, const ChunkQueries& q, uint32_t L, int K, int k, const MultiPlan& p,
                  void* scratch, OutHits out, cudaStream_t s) {
  if (q.combine != 0) throw Error("cuda: the mt path takes Sum queries only");
  Bump b{static_cast<char*>(scratch)};
  uint64_t* planes = b.take<uint64_t>(static_cast<size_t>(q.n_terms) * 2 * ix.W);
  uint64_t* bound = b.take<uint64_t>(static_cast<size_t>(q.n_q));
  uint32_t* cand_n = b.take<uint32_t>(static_cast<size_t>(q.n_q));
  uint64_t* cand = b.take<uint64_t>(static_cast<size_t>(q.n_q) * p.cap);
  char* words = b.take<char>(sample_words_bytes(ix, uint64_t{p.sample.first} + p.sample.spread));
  char* st_scratch = b.take<char>(shared_terms_scratch_bytes(q.n_q));
  char* sb_scratch = p.shared_bound ? b.take<char>(shared_terms_bounds_scratch_bytes(ix, uint64_t{p.sample.first} + p.sample.spread))
                                    : nullptr;
  sample_bounds(ix, q, L, K, p.max_terms, p.sample, p.max_smem, planes, words, bound, cand_n, s, sb_scratch);
  if (q.planes) planes = const_cast<uint64_t*>(q.planes);
  MtListArgs la{ix.codes, ix.inv,     ix.W,   L,        p.cap,  planes, q.weights, q.term_off,
                K,        k,          bound,  cand,     cand_n,   q.excl, q.excl_off, out.hits, out.count, p.stats,
                nullptr,  nullptr,    nullptr, 0};
  const size_t lsm = list_smem(ix, p.max_terms);
  MtScanArgs sa{ix.tiled, ix.tile_stride, ix.Kp, static_cast<uint32_t>(p.n_tiles), L, ix.dims, p.tiles_per_split,
                q.n_q, q.trits, q.weights, q.term_off, bound, cand, cand_n, p.cap, p.prefilter ? 1 : 0};
  if (q.n_distinct > 0 && shared_terms_fit(ix, q.n_distinct, q.distinct_max_nnz, p.max_smem)) {
    shared_terms_scan(ix, sa, q, p.num_sms, st_scratch, s);
  } else {
    switch (p.ks) {
      case 1: launch_scan<1>(sa, p, s); break;
      case 2: launch_scan<2>(sa, p, s); break;
      case 3: launch_scan<3>(sa, p, s); break;
      case 4: launch_scan<4>(sa, p, s); break;
      default: {
        std::string m = "cuda: the mt path takes up to ";  // (no "literal" + string: GCC 12's false -Wrestrict)
        m += std::to_string(kMultiMaxKp);
        m += " padded dims";
        throw Error(m);
      }
    }
    launch_check("mt_scan_kernel");
  }
  mt_list_kernel<true><<<q.n_q, 256, lsm, s>>>(la);
  launch_check("mt_list_kernel (select)");
}

}  // namespace igla::cuda
