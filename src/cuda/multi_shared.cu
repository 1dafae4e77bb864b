// igla CUDA backend: the mt path's scan over a chunk's distinct terms (the shared-terms scan).
//
// Batches of analogies repeat their words: a chunk of 4,096 Google-analogy questions has 12,288
// terms but ~200-300 distinct ones. The per-query scan (multi.cu) runs every term of every query
// against every word on the tensor cores and pads 3 terms to 4 rows; this one runs each distinct
// term once against each word and keeps the dots as int8 in shared memory (|dot| <= the term's
// non-zeros, <= 127 where this scan is taken),
// then each query combines its terms' rows: one 8-byte load a term for 8 words and the
// prefilter's integer sum a word. The keys are the per-query scan's: the same exact dots, the same
// prefilter and float order (mt_common.cuh), so the select pass that follows sees the same keys.
//
// CTA: 16 warps; passes of kStTiles tiles (256 words) of the mma tiles (nnz-ordered, with their
// inverse norms, ids and rim), passes blockIdx.x, + gridDim.x, ...:
//   1. the pass's tiles copied into shared memory (cp.async);
//   2. D[u][x] = dot(distinct term u, word x), every u < U: warp w takes the m16 blocks w, w + 16,
//      ... of distinct terms (A fragments from global), each against the pass's 32 blocks of 8
//      words (B fragments from the tiles, as the per-query scan reads them);
//   3. a warp kStStep queries at a time (q, q + 16, ...; q = warp, warp + 16 kStStep, ...): lane l
//      takes the pass's words 8 l .. 8 l + 7 (one tile's, whose rim gives the prefilter's
//      threshold); keys >= the query's bound are appended to its candidate list as the per-query
//      scan appends them.
#include <algorithm>
#include <climits>

#include "cuda/device_common.cuh"
#include "cuda/host_common.hpp"
#include "cuda/kernels.hpp"
#include "cuda/mt_common.cuh"
#include "cuda/prepare.cuh"

namespace igla::cuda {

namespace {

constexpr int kStTiles = 2;                              // tiles a pass
constexpr int kStWords = kStTiles * kTileWords;          // 256 words a pass: 8 a lane
constexpr int kStThreads = 512;
constexpr int kStWarps = kStThreads / 32;
constexpr int kStStep = 4;  // queries a warp takes at a time in phase 3: independent loads and dp4a chains
// Bytes a distinct term's row of D; the pad spreads phase 2's stores over the banks.
constexpr uint32_t kStRow = kStWords + 16;
// The prefilter's largest fixed-point weight: 127 * 256, two int8 digits (StQuery).
constexpr float kStUnit = 32512.0f;

// What phase 3 needs of a query, computed once a chunk (st_setup_kernel): 48 bytes, three 16-byte loads.
// The prefilter's weights W_t (MtPrefilter at unit 127 * 256) as two int8 digits a term, W_t =
// 256 hi_t + lo_t, packed a byte a term: a word's sum is two dp4a of its four term dots.
struct alignas(16) StQuery {
  uint32_t whi, wlo;  // hi_t, lo_t in byte t
  uint32_t T_pre;     // terms | pre << 8 | valid << 9
  uint32_t pad;
  uint32_t row[4];    // byte offset of each term's row of D (0 past the terms: weight 0)
  float S, sumw, ts, pad2;
};

struct StArgs {
  MtScanArgs m;            // what the per-query scan takes (its trits and splits unused)
  int U;
  const int8_t* u_trits;   // U * dims: the distinct terms
  const uint32_t* term_u;  // per term: its distinct term
  StQuery* qs;
};

__global__ void st_setup_kernel(StArgs a) {
  const int q = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (q >= a.m.n_q) return;
  const uint32_t t0 = a.m.term_off[q], T = a.m.term_off[q + 1] - t0;
  float w[4];
  StQuery s{};
#pragma unroll
  for (uint32_t t = 0; t < 4; ++t) {
    w[t] = t < T ? a.m.weights[t0 + t] : 0.0f;
    s.row[t] = t < T ? a.term_u[t0 + t] * kStRow : 0;
  }
  MtPrefilter pf;
  pf.init(w, a.m.bound[q], a.m.prefilter != 0, kStUnit);
#pragma unroll
  for (int t = 0; t < 4; ++t) {
    const int lo = static_cast<int8_t>(pf.Wi[t] & 0xff), hi = (pf.Wi[t] - lo) >> 8;  // |W_t| <= unit + 1
    s.whi |= static_cast<uint32_t>(hi & 0xff) << (8 * t);
    s.wlo |= static_cast<uint32_t>(lo & 0xff) << (8 * t);
  }
  s.S = pf.S, s.sumw = pf.sumw, s.ts = pf.ts;
  s.T_pre = T | (pf.pre ? 1u << 8 : 0u) | (T <= 4 ? 1u << 9 : 0u);
  a.qs[q] = s;
}

__device__ __forceinline__ int sbyte(uint32_t v, int e) {  // byte e of v, sign-extended
  return static_cast<int>(v << (24 - 8 * e)) >> 24;
}

// Four words' prefilter flags (bit e: word e clears thr): x_t holds term t's dots of the words, a
// byte a word; the 4 x 4 byte transpose gives each word its four term dots in one register.
__device__ __forceinline__ uint32_t st_pass4(uint32_t x0, uint32_t x1, uint32_t x2, uint32_t x3, int whi, int wlo,
                                             int thr) {
  const uint32_t t0 = __byte_perm(x0, x1, 0x5140), t1 = __byte_perm(x0, x1, 0x7362);
  const uint32_t t2 = __byte_perm(x2, x3, 0x5140), t3 = __byte_perm(x2, x3, 0x7362);
  const uint32_t y[4] = {__byte_perm(t0, t2, 0x5410), __byte_perm(t0, t2, 0x7632), __byte_perm(t1, t3, 0x5410),
                         __byte_perm(t1, t3, 0x7632)};
  uint32_t m = 0;
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    const int y_e = static_cast<int>(y[e]);
    m |= (__dp4a(wlo, y_e, __dp4a(whi, y_e, 0) * 256) > thr ? 1u : 0u) << e;
  }
  return m;
}

// Phase 3's view of a lane's words: their tile's inverse norms, ids and rim, and their columns of D.
struct StLane {
  const float* tinv;
  const uint32_t* tid;
  float rim;
  const int8_t* Dl;
  int r0;  // the lane's first word in its tile
};

struct StQv {  // a query's StQuery as three 16-byte loads
  int4 p0, p1, p2;
};

// The lane's eight words' prefilter flags for a query (0 for a query not valid: past the chunk, or
// more than four terms), and its four terms' dots of them (v[t]: a byte a word).
__device__ __forceinline__ uint32_t st_pass8(const StLane& ln, const StQv& x, uint2 (&v)[4]) {
  const uint32_t tp = static_cast<uint32_t>(x.p0.z);
  // Past the terms, row 0 (any row: its weight is 0).
  v[0] = *reinterpret_cast<const uint2*>(ln.Dl + x.p1.x);
  v[1] = *reinterpret_cast<const uint2*>(ln.Dl + x.p1.y);
  v[2] = *reinterpret_cast<const uint2*>(ln.Dl + x.p1.z);
  v[3] = *reinterpret_cast<const uint2*>(ln.Dl + x.p1.w);
  if (!((tp >> 9) & 1)) return 0;
  const int thr = MtPrefilter::threshold((tp >> 8) & 1, __int_as_float(x.p2.x), __int_as_float(x.p2.y),
                                         __int_as_float(x.p2.z), ln.rim);
  return st_pass4(v[0].x, v[1].x, v[2].x, v[3].x, x.p0.x, x.p0.y, thr) |
         st_pass4(v[0].y, v[1].y, v[2].y, v[3].y, x.p0.x, x.p0.y, thr) << 4;
}

// The exact keys of the words flagged in m; those >= the query's bound appended to its candidates.
__device__ __forceinline__ void st_exact(const MtScanArgs& sa, const StLane& ln, int q, const StQv& x,
                                         const uint2 (&v)[4], uint32_t m) {
  const uint32_t T = static_cast<uint32_t>(x.p0.z) & 0xff;
  const uint32_t t0 = sa.term_off[q];
  float w[4];
#pragma unroll
  for (uint32_t t = 0; t < 4; ++t) w[t] = t < T ? sa.weights[t0 + t] : 0.0f;
  const uint64_t bound = sa.bound[q];
  while (m) {
    const int e = __ffs(m) - 1;
    m &= m - 1;
    const int r = ln.r0 + e;
    const uint32_t id = ln.tid[r];
    if (id >= sa.L) continue;  // padding (~0u) or past the limit
    const int d0 = sbyte(e < 4 ? v[0].x : v[0].y, e & 3), d1 = sbyte(e < 4 ? v[1].x : v[1].y, e & 3);
    const int d2 = sbyte(e < 4 ? v[2].x : v[2].y, e & 3), d3 = sbyte(e < 4 ? v[3].x : v[3].y, e & 3);
    const uint64_t key = make_key(mt_exact_score(w, T, d0, d1, d2, d3, ln.tinv[r]), id);
    if (key >= bound) {
      const uint32_t pos = atomicAdd(sa.cand_n + q, 1u);
      if (pos < sa.cap) sa.cand[static_cast<size_t>(q) * sa.cap + pos] = key;
    }
  }
}

template <int KS>
__global__ __launch_bounds__(kStThreads, 1) void st_scan_kernel(StArgs a) {
  extern __shared__ __align__(16) int8_t sst[];
  int8_t* tiles = sst;                                        // kStTiles * stride
  int8_t* D = sst + static_cast<size_t>(kStTiles) * a.m.stride;  // U16 rows of kStRow bytes
  const unsigned warp = threadIdx.x >> 5, lane = lane_id();
  const unsigned g = lane >> 2, tig = lane & 3;
  const int n_mb = (a.U + 15) / 16;
  const int n_passes = (static_cast<int>(a.m.n_tiles) + kStTiles - 1) / kStTiles;
  const uint32_t Kx = kTileWords * a.m.Kp;  // the extras' offset in a tile

  for (int pass = blockIdx.x; pass < n_passes; pass += gridDim.x) {
    // 1. The pass's tiles (a missing second tile: its rim set to inf and its ids to ~0 below).
    const int t_first = pass * kStTiles, n_t = min(kStTiles, static_cast<int>(a.m.n_tiles) - t_first);
    for (int t = 0; t < n_t; ++t)
      cp_async_tile(tiles + static_cast<size_t>(t) * a.m.stride, a.m.tiled + static_cast<size_t>(t_first + t) * a.m.stride,
                    a.m.stride);
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();

    // 2. D = distinct terms x the pass's words (a missing tile's columns are never read).
    for (int mb = static_cast<int>(warp); mb < n_mb; mb += kStWarps) {
      uint32_t A[KS][4];
      const int8_t* src = a.u_trits + static_cast<size_t>(mb) * 16 * a.m.dims;
      const uint32_t rows = static_cast<uint32_t>(a.U - mb * 16);
#pragma unroll
      for (int s = 0; s < KS; ++s) {
        const uint32_t k = s * 32 + tig * 4;
        A[s][0] = trits4(src, rows, g, a.m.dims, k);
        A[s][1] = trits4(src, rows, g + 8, a.m.dims, k);
        A[s][2] = trits4(src, rows, g, a.m.dims, k + 16);
        A[s][3] = trits4(src, rows, g + 8, a.m.dims, k + 16);
      }
      int8_t* d0 = D + static_cast<size_t>(mb * 16 + g) * kStRow;
      int8_t* d1 = d0 + 8 * kStRow;
      for (int nb = 0; nb < n_t * (kTileWords / 8); ++nb) {
        const int t = nb / (kTileWords / 8), gi = nb % (kTileWords / 8);
        const int8_t* bp = tiles + static_cast<size_t>(t) * a.m.stride + gi * 8 * KS * 32 + lane * 4;
        int c[4] = {0, 0, 0, 0};
#pragma unroll
        for (int s = 0; s < KS; ++s) {
          const uint32_t b0 = *reinterpret_cast<const uint32_t*>(bp + (2 * s) * 128);
          const uint32_t b1 = *reinterpret_cast<const uint32_t*>(bp + (2 * s + 1) * 128);
          mma_s8(A[s], b0, b1, c);
        }
        const int col = nb * 8 + static_cast<int>(tig) * 2;  // words col, col + 1 of the pass
        *reinterpret_cast<uint16_t*>(d0 + col) = static_cast<uint16_t>((c[0] & 0xff) | ((c[1] & 0xff) << 8));
        *reinterpret_cast<uint16_t*>(d1 + col) = static_cast<uint16_t>((c[2] & 0xff) | ((c[3] & 0xff) << 8));
      }
    }
    __syncthreads();

    // 3. A warp kStStep queries at a time (q, q + 16, ...: independent work to overlap); lane l:
    // words 8 l .. 8 l + 7 of the pass, of tile l / 16.
    const int t_lane = static_cast<int>(lane) / 16;
    const int r0 = (static_cast<int>(lane) % 16) * 8;  // the lane's first word in its tile
    if (t_lane < n_t) {
      const int8_t* tile = tiles + static_cast<size_t>(t_lane) * a.m.stride;
      const StLane ln{reinterpret_cast<const float*>(tile + Kx),
                      reinterpret_cast<const uint32_t*>(tile + Kx + kExtraIds),
                      *reinterpret_cast<const float*>(tile + Kx + kExtraRim), D + lane * 8, r0};
      const int4* qv = reinterpret_cast<const int4*>(a.qs);
      const int n_q = a.m.n_q;
      for (int q = static_cast<int>(warp); q < n_q; q += kStStep * kStWarps) {
        StQv x[kStStep];
#pragma unroll
        for (int j = 0; j < kStStep; ++j) {
          const int qj = q + j * kStWarps;
          if (qj < n_q) x[j].p0 = qv[3 * qj], x[j].p1 = qv[3 * qj + 1], x[j].p2 = qv[3 * qj + 2];
          else x[j].p0.z = 0, x[j].p1 = make_int4(0, 0, 0, 0);  // not valid
        }
        uint2 v[kStStep][4];
        uint32_t m[kStStep];
#pragma unroll
        for (int j = 0; j < kStStep; ++j) m[j] = st_pass8(ln, x[j], v[j]);
#pragma unroll
        for (int j = 0; j < kStStep; ++j)
          if (m[j]) st_exact(a.m, ln, q + j * kStWarps, x[j], v[j], m[j]);  // (rare)
      }
    }
    __syncthreads();  // the next pass overwrites the tiles and D
  }
}

// The bound pass over the chunk's distinct terms (shared_terms_bounds), 1: D[u][i] = dot(distinct
// term u, sample word i) as int8, a thread a dot (U x S of them: ~2.5 M for a chunk of 4,096
// analogies against 8,192 words, where the per-query bound pass takes ~37 M).
__global__ void st_sample_dots_kernel(const uint64_t* u_planes, int U, uint32_t W, const uint64_t* s_codes, uint32_t S,
                                      uint32_t S_pad, int8_t* D) {
  const uint32_t i = blockIdx.x * blockDim.x + threadIdx.x;
  const int u = static_cast<int>(blockIdx.y);
  if (i >= S_pad || u >= U) return;
  int dot = 0;
  if (i < S) dot = dot_planes<true>(s_codes + static_cast<size_t>(i >> 3) * W * 16 + (i & 7), u_planes + static_cast<size_t>(u) * 2 * W, W);
  D[static_cast<size_t>(u) * S_pad + i] = static_cast<int8_t>(dot);
}

// 2: a warp a query, the sample's inverse norms and ids in shared memory (read by every query of
// the CTA). Lane l scores words 4 l .. 4 l + 3 of each 128 (a 4-byte load a term's row of D), with
// the per-query bound pass's exact keys (mt_exact_score: score_generic's float order), and the
// warp keeps the query's top K keys (WarpList): the K-th is its bound.
constexpr int kSbWarps = 16;
struct StBoundArgs {
  const int8_t* D;
  uint32_t S, S_pad;
  const float* s_inv;
  const uint32_t* s_ids;
  const float* weights;
  const uint32_t* term_off;
  const uint32_t* term_u;
  int n_q, K;
  uint64_t* bound;
  uint32_t* cand_n;
};
__global__ __launch_bounds__(kSbWarps * 32) void st_bound_kernel(StBoundArgs a) {
  extern __shared__ __align__(16) float sb_inv[];  // S_pad inverse norms, then S_pad ids
  uint32_t* sb_ids = reinterpret_cast<uint32_t*>(sb_inv + a.S_pad);
  for (uint32_t i = threadIdx.x; i < a.S_pad; i += blockDim.x) {
    sb_inv[i] = i < a.S ? a.s_inv[i] : 0.0f;
    sb_ids[i] = i < a.S ? a.s_ids[i] : 0u;
  }
  __syncthreads();
  const unsigned warp = threadIdx.x >> 5, lane = lane_id();
  for (int q = static_cast<int>(blockIdx.x * kSbWarps + warp); q < a.n_q; q += static_cast<int>(gridDim.x * kSbWarps)) {
    const uint32_t t0 = a.term_off[q], T = a.term_off[q + 1] - t0;  // T <= kMultiMaxTerms (multi_plan)
    float w[4];
    const int8_t* row[4];
#pragma unroll
    for (uint32_t t = 0; t < 4; ++t) {
      w[t] = t < T ? a.weights[t0 + t] : 0.0f;
      row[t] = a.D + (t < T ? static_cast<size_t>(a.term_u[t0 + t]) * a.S_pad : 0);
    }
    WarpList list;
    list.init(a.K);
    for (uint32_t base = 0; base < a.S; base += 128) {
      const uint32_t i0 = base + 4 * lane;  // < S_pad (a multiple of 128)
      uint32_t v[4];
#pragma unroll
      for (int t = 0; t < 4; ++t) v[t] = static_cast<uint32_t>(t) < T ? *reinterpret_cast<const uint32_t*>(row[t] + i0) : 0u;
      uint64_t key[4], best = 0;
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const uint32_t i = i0 + static_cast<uint32_t>(e);
        const int d0 = sbyte(v[0], e), d1 = sbyte(v[1], e), d2 = sbyte(v[2], e), d3 = sbyte(v[3], e);
        key[e] = i < a.S ? make_key(mt_exact_score(w, T, d0, d1, d2, d3, sb_inv[i]), sb_ids[i]) : 0;
        best = umax64(best, key[e]);
      }
      // One vote for the four (once the list is full, most blocks of 128 words beat nothing).
      if (!__any_sync(kFull, best > list.threshold())) continue;
#pragma unroll
      for (int e = 0; e < 4; ++e) list.offer(key[e]);
    }
    const uint64_t thr = list.threshold();  // 0 when the sample holds fewer than K words
    if (lane == 0) {
      a.bound[q] = thr;
      if (a.cand_n) a.cand_n[q] = 0;
    }
  }
}

size_t st_bound_smem(uint32_t S_pad) { return static_cast<size_t>(S_pad) * 8; }
uint32_t st_sample_pad(uint64_t S) { return static_cast<uint32_t>((S + 127) / 128 * 128); }

size_t st_smem(const DeviceIndex& ix, int U) {
  return static_cast<size_t>(kStTiles) * ix.tile_stride + static_cast<size_t>((U + 15) / 16 * 16) * kStRow;
}

}  // namespace

bool shared_terms_fit(const DeviceIndex& ix, int U, int max_term_nnz, size_t max_smem) {
  return U >= 1 && U <= kStMaxDistinct && max_term_nnz <= 127 && ix.tiled && ix.Kp >= 32 && ix.Kp <= kMultiMaxKp &&
         st_smem(ix, U) <= max_smem;
}

size_t shared_terms_scratch_bytes(int n_q) { return static_cast<size_t>(n_q) * sizeof(StQuery) + 256; }

const void* shared_terms_kernel(int ks) {
  switch (ks) {
    case 1: return reinterpret_cast<const void*>(st_scan_kernel<1>);
    case 2: return reinterpret_cast<const void*>(st_scan_kernel<2>);
    case 3: return reinterpret_cast<const void*>(st_scan_kernel<3>);
    default: return reinterpret_cast<const void*>(st_scan_kernel<4>);
  }
}

size_t shared_terms_bounds_scratch_bytes(const DeviceIndex& ix, uint64_t S) {
  Bump b{nullptr};
  b.take<uint64_t>(static_cast<size_t>(kStMaxDistinct) * 2 * ix.W);
  b.take<int8_t>(static_cast<size_t>(kStMaxDistinct) * st_sample_pad(S));
  return b.used + 256;
}

bool shared_terms_bounds(const DeviceIndex& ix, const ChunkQueries& q, int K, const SampleWords& sw, size_t max_smem,
                         void* scratch, uint64_t* bound, uint32_t* cand_n, cudaStream_t s) {
  const int U = q.n_distinct;
  const uint32_t S_pad = st_sample_pad(sw.n);
  if (U < 1 || U > kStMaxDistinct || sw.n == 0 || q.distinct_max_nnz > 127 || K < 1 || K > kMaxListK ||
      st_bound_smem(S_pad) > max_smem)
    return false;
  Bump b{static_cast<char*>(scratch)};
  uint64_t* u_planes = b.take<uint64_t>(static_cast<size_t>(kStMaxDistinct) * 2 * ix.W);
  int8_t* D = b.take<int8_t>(static_cast<size_t>(kStMaxDistinct) * S_pad);
  query_planes(q.distinct_trits, U, ix.dims, ix.W, u_planes, s);
  st_sample_dots_kernel<<<dim3((S_pad + 255) / 256, static_cast<unsigned>(U)), 256, 0, s>>>(u_planes, U, ix.W, sw.codes,
                                                                                           sw.n, S_pad, D);
  launch_check("st_sample_dots_kernel");
  const StBoundArgs a{D, sw.n, S_pad, sw.inv, sw.ids, q.weights, q.term_off, q.term_distinct, q.n_q, K, bound, cand_n};
  st_bound_kernel<<<(q.n_q + kSbWarps - 1) / kSbWarps, kSbWarps * 32, st_bound_smem(S_pad), s>>>(a);
  launch_check("st_bound_kernel");
  return true;
}

const void* shared_terms_bound_kernel() { return reinterpret_cast<const void*>(st_bound_kernel); }

void shared_terms_scan(const DeviceIndex& ix, const MtScanArgs& sa, const ChunkQueries& q, int num_sms, void* scratch,
                       cudaStream_t s) {
  Bump b{static_cast<char*>(scratch)};
  const StArgs a{sa, q.n_distinct, q.distinct_trits, q.term_distinct, b.take<StQuery>(static_cast<size_t>(q.n_q))};
  st_setup_kernel<<<(q.n_q + 255) / 256, 256, 0, s>>>(a);
  launch_check("st_setup_kernel");
  const int n_passes = (static_cast<int>(sa.n_tiles) + kStTiles - 1) / kStTiles;
  const int grid = std::max(1, std::min(n_passes, num_sms));
  const size_t smem = st_smem(ix, q.n_distinct);
  switch (ix.Kp / 32) {
    case 1: st_scan_kernel<1><<<grid, kStThreads, smem, s>>>(a); break;
    case 2: st_scan_kernel<2><<<grid, kStThreads, smem, s>>>(a); break;
    case 3: st_scan_kernel<3><<<grid, kStThreads, smem, s>>>(a); break;
    default: st_scan_kernel<4><<<grid, kStThreads, smem, s>>>(a); break;
  }
  launch_check("st_scan_kernel");
}

}  // namespace igla::cuda
