// igla CUDA backend: the mma path (the tensor-core kernel, its plan, scratch, launch and shared
// memory limit) and probe_kernels. The other paths and the preparation have their own files
// (kernels.hpp lists them); scripts/gpu/NOTES.md has the numbers behind the design.
#include "cuda/kernels.hpp"

#include <algorithm>
#include <array>
#include <utility>

#include "cuda/device_common.cuh"
#include "cuda/host_common.hpp"
#include "cuda/prepare.cuh"

namespace igla::cuda {

namespace {

constexpr int kConsumerWarps = 8;

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
  int cap;                       // keys a row list holds in shared memory: K (sorted scan / heap lists)
                                 // or more (append lists: see the owners' comment in the kernel)
  int eager;                     // append lists: > 0 selects a row at the end of a drain once it holds
                                 // this many appended keys (its threshold rises sooner); 0: when full only
  uint32_t stage_magic;          // ceil(2^32 / stages): it / stages = umulhi(it, stage_magic)
  uint64_t* partial;
  int mode;                      // experiments (IGLA_CUDA_MMA_MODE): 1 no epilogue, 2 no slow path
  int group_soft;                // > 0: a warp whose queue holds more entries asks its warpgroup to drain
                                 // (all four warps at their next epilogue); 0: each warp on overflow only
  int group_cta;                 // 1: the request goes to all 8 consumer warps (A/B: IGLA_CUDA_GROUP_CTA)
  unsigned long long* stats;     // optional counters (IGLA_CUDA_STATS): [0] warp-tiles with a candidate,
                                 // [1] staged candidates, [2] queued keys, [3] drains, [6] list selects
  // List mode (mma_scan_lists, the CUDA IVF searcher), when work is set: CTA b scans tiles
  // [work[b].y, work[b].y + work[b].z) against query tile work[b].x, and row r of query tile t
  // writes its K keys to partial[row_slot[t * 128 + r] * K] (~0u: a padding row, never scored).
  const int4* work;
  const uint32_t* row_slot;
  // Optional (batch mode only): per query of the chunk a key below which no key of its exact top K
  // over all words lies (sample_bounds); each row's list starts from it.
  const uint64_t* start;
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

// Row lists longer than this are kept as binary min-heaps by their owners (heap_replace_min);
// shorter ones unsorted with a scan for the next smallest (run 31: the scan at K = 51 made the
// two-stage search 3.5x slower than the ternary one at 65,536 queries).
constexpr int kScanMaxK = 32;

// h[0..K) is a min-heap of keys; key > h[0] replaces the root and sifts down. Returns the new
// minimum (the row's K-th best key). Keys are unique but for zeros (empty slots).
__device__ __forceinline__ uint64_t heap_replace_min(uint64_t* h, int K, uint64_t key) {
  int i = 0;
#pragma unroll 1
  while (true) {
    const int l = 2 * i + 1;
    if (l >= K) break;
    const uint64_t lv = h[l];
    const uint64_t rv = l + 1 < K ? h[l + 1] : ~0ull;
    const bool right = rv < lv;
    const uint64_t cv = right ? rv : lv;
    if (cv >= key) break;
    h[i] = cv;
    i = l + (right ? 1 : 0);
  }
  h[i] = key;
  return h[0];
}

// kLists: list mode (MmaArgs::work; a separate instantiation, so the whole-vocabulary kernel keeps
// its registers: the runtime test made ptxas spill at KS 11 and 12).
template <int KS, bool kLists>
__global__ void __launch_bounds__(384, 1) mma_kernel(MmaArgs a) {
  extern __shared__ uint8_t smem_raw[];
  // Aligned by an offset from the __shared__ array itself (not through an integer cast), so the
  // compiler keeps the shared address space: LDS / STS rather than generic loads and stores.
  uint8_t* smem = smem_raw + ((1024u - (smem_u32(smem_raw) & 1023u)) & 1023u);
  const uint32_t Kp = a.Kp, stride = a.stride;
  uint8_t* sA = smem;
  uint8_t* sB = sA + kTileQueries * Kp;
  uint64_t* bars = reinterpret_cast<uint64_t*>(sB + static_cast<size_t>(a.stages) * stride);
  uint64_t* lists = bars + 2 * a.stages + 2;                 // [128 rows][cap]
  uint64_t* queue = lists + kTileQueries * a.cap;            // [2 row halves][kQueue][256 threads]

  int qt, split, t_begin, ntl;
  if constexpr (kLists) {
    const int4 wk = a.work[blockIdx.x];
    qt = wk.x;
    split = 0;
    t_begin = wk.y;
    ntl = wk.z;
  } else {
    qt = blockIdx.x / a.n_splits;
    split = blockIdx.x % a.n_splits;
    t_begin = split * a.tiles_per_split;
    ntl = max(0, min(t_begin + a.tiles_per_split, a.n_tiles) - t_begin);
  }
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
  for (int i = threadIdx.x; i < kTileQueries * a.cap; i += blockDim.x) lists[i] = 0;
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
  const bool v0 = kLists ? a.row_slot[static_cast<size_t>(qt) * kTileQueries + r0] != ~0u
                         : qt * kTileQueries + r0 < a.n_q;
  const bool v1 = kLists ? a.row_slot[static_cast<size_t>(qt) * kTileQueries + r0 + 8] != ~0u
                         : qt * kTileQueries + r0 + 8 < a.n_q;
  // Row owners: lane j < 16 keeps row row_base + j's top-K list (shared memory, this lane only)
  // and its exact threshold; the other lanes hold copies of their rows' thresholds that are at
  // most as high (refreshed at each drain), so every bound they apply is conservative.
  //
  // Append lists (cap > K): the row's first K slots are a sorted list (descending, zeros past its
  // keys; all zeros at the start), the keys past it arrive unsorted: an owner only appends a key
  // that beats othr, the row's K-th best key as of the last select (or the starting bound). When a
  // producer's keys might not fit (count + keys > cap) the whole warp selects that row: the sorted
  // prefix is a WarpList, the appended keys are offered 32 at a time, the K best go back to the
  // prefix and othr rises to the new K-th. Exact: a key of the row's final top K beats every
  // othr it meets (othr never exceeds the K-th best of the keys seen), so it is appended and
  // survives every select. Each key costs its owner a compare and a store instead of a sorted
  // insertion (a heap's 5 levels of dependent loads at K = 53, run by one lane while the rest of
  // the warp, and at the next wgmma its warpgroup, waits); a select, every cap - K keys or more,
  // is a few hundred warp-wide instructions.
  const int cap = a.cap;
  const bool append = cap > a.K;
  const unsigned orow = lane & 15u;
  uint64_t* olist = lists + static_cast<size_t>(row_base + static_cast<int>(orow)) * cap;
  uint64_t oib = 0;  // the row's starting bound (below: from the split's first two tiles)
  uint64_t othr = oib;
  int opos = 0;  // position of the smallest key of the owner's (unsorted) list
  int ocnt = a.K;  // append lists: keys in the owner's list (the sorted prefix counts K)
  uint64_t thr0 = 0, thr1 = 0;
  float c0 = bound_base(thr0, w0, v0), c1 = bound_base(thr1, w1, v1);
  uint64_t* myq = queue + tid_c;     // this thread's queue: [half][e] at ((half * kQueue + e) * 256)
  const uint32_t qa = smem_u32(myq);  // (its shared address, for the staging's predicated stores)
  // Group drains. A warpgroup issues its wgmma together, so a warp that drains alone holds the
  // other three at the next tile: drains of the four warps one after another cost four waits.
  // Once a queue holds more than group_soft entries the warp sets the request byte of all four;
  // each warp drains at its next epilogue that sees its byte (and clears it), so the four drains
  // overlap (A/B at 100K x 300, 65536 queries: 9.25-9.55 -> 10.0-10.96 M q/s with 4; 8: no gain).
  // A request seen late only delays a drain: overflow still drains at once. With group_cta the
  // request goes to all 8 warps (the tile ring couples the two warpgroups too): +3% in A/B
  // rounds (10.20-10.53 vs 9.90-10.35 M q/s), not yet through a full checked run, so off.
  volatile uint8_t* gflag = reinterpret_cast<volatile uint8_t*>(bars + 2 * a.stages + 1) + cw;
  int n0 = 0, n1 = 0;                // queued entries of rows r0, r0 + 8
  // Tile it's inv[128] and ids[128] in global memory (L2): the drain reads them there, so a stage
  // goes back to the producer as soon as its dots are compared.
  const uint8_t* gextra = reinterpret_cast<const uint8_t*>(a.vocab) + static_cast<size_t>(t_begin) * stride +
                          static_cast<size_t>(kTileWords) * Kp;

  // Append lists: the whole warp selects row row_base + r (see above); afterwards the row's first
  // K slots hold its K best keys sorted, and its owner's othr is their K-th.
  auto select_row = [&](int r) {
    __syncwarp();  // the owners' appends are visible to the whole warp
    uint64_t* buf = lists + static_cast<size_t>(row_base + r) * cap;
    const int cnt = __shfl_sync(kFull, ocnt, r);
    WarpList wl;
    wl.init(K);
    wl.v = lane < static_cast<unsigned>(K) ? buf[lane] : 0;
    wl.v2 = wl.two && lane + 32 < static_cast<unsigned>(K) ? buf[32 + lane] : 0;
#pragma unroll 1
    for (int b = K; b < cnt; b += 32) wl.offer(b + static_cast<int>(lane) < cnt ? buf[b + lane] : 0);
    __syncwarp();
    wl.store(buf);
    const uint64_t t = wl.threshold();
    __syncwarp();
    if (lane == static_cast<unsigned>(r)) {
      ocnt = K;
      othr = umax64(t, oib);
    }
    if (a.stats && lane == 0) atomicAdd(a.stats + 6, 1ull);
  };
  // The warp selects each row whose bit is set in `rows` (a ballot over the owners), lowest first.
  auto select_rows = [&](unsigned rows) {
#pragma unroll 1
    while (rows) {
      const int r = __ffs(static_cast<int>(rows)) - 1;
      rows &= rows - 1;
      select_row(r);
    }
  };

  // 1. Each thread turns its queued entries into keys in place (0 for padding / ids >= L and for
  //    keys that cannot beat its copy of the row threshold), four at a time with their loads in
  //    flight together. 2. The owners take the keys of their rows: lane j's row half is j / 8,
  //    its keys come from lanes 4 (j % 8) .. 4 (j % 8) + 3, each inserted (thread-private) into
  //    the row's list: K <= 32 an unsorted list where it replaces the smallest key, longer ones a
  //    heap, or with append lists appended (after a warp select of each row that might overflow).
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
      if (append) {
        const int c = hi ? chi : clo;
        select_rows(__ballot_sync(kFull, lane < 16 && ocnt + c > cap));
        if (lane < 16) {
          const uint64_t* src = queue + (hi ? kQueue * 256 : 0) + cw * 32 + static_cast<int>(qd) + s;
          for (int e = 0; e < c; ++e) {
            const uint64_t key = src[e * 256];
            if (key > othr) olist[ocnt++] = key;
          }
        }
        if (s == 3 && a.eager > 0) select_rows(__ballot_sync(kFull, lane < 16 && ocnt - K >= a.eager));
      } else if (lane < 16) {
        const int c = hi ? chi : clo;
        const uint64_t* src = queue + (hi ? kQueue * 256 : 0) + cw * 32 + static_cast<int>(qd) + s;
        for (int e = 0; e < c; ++e) {
          const uint64_t key = src[e * 256];
          if (key > othr) {
            if (K <= kScanMaxK) {
              // Short lists stay unsorted (sorted once at the end): the key replaces the smallest
              // entry, then one scan with independent loads finds the next smallest (~100 cycles
              // at K = 13 against ~350 for a sorted insertion's dependent load / store chain).
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
            } else {
              // Long lists (the two-stage query's 50 candidates + exclusions) are a binary
              // min-heap: the key replaces the root and sifts down, log2(K) levels of two
              // independent loads (5 at K = 53) instead of a scan of all K entries.
              othr = umax64(heap_replace_min(olist, K, key), oib);
            }
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
      if (req && lane == 0) {
        if (a.group_cta) *reinterpret_cast<volatile uint64_t*>(gflag - cw) = 0x0101010101010101ull;
        else *reinterpret_cast<volatile uint32_t*>(gflag - warp) = 0x01010101u;
      }
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
  }
  // A sampled start (long lists: NOTES v18): the K-th key B of a sample of the words bounds the
  // query's top K from below (each key of it is >= B); thresholds drop keys <= thr, so B - 1. A
  // valid start for each split's list too: the merge needs from a split only its words of the
  // query's top K. A guessed B (WordSample::rank, NOTES v19) is checked after the kernel:
  // refill_short_lists rescans each query whose lists hold fewer than K keys in all.
  const bool sampled = !kLists && a.start;
  if (sampled) {
    auto start_thr = [&](int r, bool v) -> uint64_t {
      const uint64_t b = v ? a.start[static_cast<size_t>(qt) * kTileQueries + r] : 0;
      return b ? b - 1 : 0;
    };
    thr0 = umax64(thr0, start_thr(r0, v0));
    thr1 = umax64(thr1, start_thr(r0 + 8, v1));
  }
  if (ntl > 0 || sampled) {  // the starting thresholds to the rows' compares and owners
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
  if (append) {
    for (int r = 0; r < 16; ++r) select_row(r);  // each row's K best, sorted, in its first K slots
  } else if (lane < 16) {  // the owner sorts its list (descending) for the merge
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
    if constexpr (kLists) {
      const uint32_t slot = a.row_slot[qrow];
      if (slot != ~0u)
        for (int j = static_cast<int>(lane); j < K; j += 32)
          a.partial[static_cast<size_t>(slot) * K + j] = lists[(row_base + r) * cap + j];
    } else {
      if (qrow < a.n_q)
        for (int j = static_cast<int>(lane); j < K; j += 32)
          a.partial[(static_cast<size_t>(qrow) * a.n_splits + split) * K + j] = lists[(row_base + r) * cap + j];
    }
  }
  }  // consumers
}

constexpr int kMaxKSteps = 12;  // dims <= 384
using MmaKernelFn = void (*)(MmaArgs);
template <bool kLists, int... I>
constexpr auto make_mma_table(std::integer_sequence<int, I...>) {
  return std::array<MmaKernelFn, sizeof...(I)>{&mma_kernel<I + 1, kLists>...};
}
constexpr auto kMmaKernels = make_mma_table<false>(std::make_integer_sequence<int, kMaxKSteps>{});
constexpr auto kMmaListKernels = make_mma_table<true>(std::make_integer_sequence<int, kMaxKSteps>{});
MmaKernelFn mma_kernel_for(uint32_t Kp, bool lists = false) {
  const uint32_t ks = Kp / 32;
  return (ks >= 1 && ks <= kMaxKSteps) ? (lists ? kMmaListKernels : kMmaKernels)[ks - 1] : nullptr;
}

size_t mma_smem_bytes(uint32_t Kp, int stages, int cap) {
  return 1024 + static_cast<size_t>(kTileQueries) * Kp + static_cast<size_t>(stages) * (kTileWords * Kp + kTileExtra) +
         8 * (2 * stages + 2) + static_cast<size_t>(kTileQueries) * cap * 8 + 2 * kQueue * 256 * 8;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

void mma_prepare_attributes(size_t max_smem) {
  for (const auto* table : {&kMmaKernels, &kMmaListKernels})
    for (MmaKernelFn f : *table)
      cudaFuncSetAttribute(f, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(max_smem));
  cudaGetLastError();
}

int mma_list_cap(int K, int append_min_k, int append_slack) {
  // The slack must take one producer lane's queue (kQueue keys) after a select.
  return K >= std::max(1, append_min_k) ? K + std::max(append_slack, kQueue) : K;
}

bool mma_plan(const DeviceIndex& ix, int n_q, uint32_t L, int K, int num_sms, size_t max_smem, MmaPlan& p,
              int max_stages, int append_min_k, int append_slack) {
  if (K < 1 || K > kMaxListK || !mma_kernel_for(ix.Kp)) return false;
  int stages = 0, cap = mma_list_cap(K, append_min_k, append_slack);
  // Append lists that leave no room for 2 stages fall back to the sorted kinds (cap = K).
  for (const int c : {cap, K}) {
    for (int s = std::clamp(max_stages, 2, 6); s >= 2 && !stages; --s)
      if (mma_smem_bytes(ix.Kp, s, c) <= max_smem) stages = s;
    if (stages) {
      cap = c;
      break;
    }
  }
  if (!stages) return false;
  p.stages = stages;
  p.max_smem = max_smem;
  p.cap = cap;
  p.smem = mma_smem_bytes(ix.Kp, stages, cap);
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
  return b.used + 256 + (p.sample.on() ? sample_bounds_scratch_bytes(ix, n_q, n_q, p.sample) + 256 : 0) +
         (p.sample.on() && p.sample.guess(K) ? refill_scratch_bytes(n_q, K) : 0);
}

void mma_search(const DeviceIndex& ix, const ChunkQueries& q, uint32_t L, int K, int k, const MmaPlan& p,
                void* scratch, OutHits out, cudaStream_t s) {
  Bump b{static_cast<char*>(scratch)};
  int8_t* qt = b.take<int8_t>(static_cast<size_t>(p.n_qt) * kTileQueries * ix.Kp);
  float* qw = b.take<float>(static_cast<size_t>(p.n_qt) * kTileQueries);
  uint64_t* partial = b.take<uint64_t>(static_cast<size_t>(q.n_q) * p.n_splits * K);
  uint64_t* start = nullptr;
  const uint64_t* planes = nullptr;
  if (p.sample.on()) {  // one term a query on this path: n_terms == n_q
    uint64_t* pl = b.take<uint64_t>(static_cast<size_t>(q.n_terms) * 2 * ix.W);
    start = b.take<uint64_t>(static_cast<size_t>(q.n_q));
    char* words = b.take<char>(sample_words_bytes(ix, uint64_t{p.sample.first} + p.sample.spread));
    sample_bounds(ix, q, L, K, 1, p.sample, p.max_smem, pl, words, start, nullptr, s);
    planes = q.planes ? q.planes : pl;
  }
  const size_t items = static_cast<size_t>(p.n_qt) * kTileQueries * (ix.Kp / 16);
  tile_queries_kernel<<<static_cast<int>(std::min<size_t>((items + 255) / 256, 65535)), 256, 0, s>>>(
      q.trits, q.weights, q.term_off, q.n_q, ix.dims, ix.Kp, p.n_qt, qt, qw);
  launch_check("tile_queries_kernel");
  MmaArgs a{ix.tiled, qt, qw, q.n_q, ix.Kp, L, ix.tile_stride, p.n_tiles, p.tiles_per_split, p.n_splits,
            K, p.stages, p.cap, p.append_eager, static_cast<uint32_t>(((uint64_t{1} << 32) + p.stages - 1) / p.stages), partial,
            p.mode, p.group_soft, p.group_cta ? 1 : 0, p.stats, nullptr, nullptr, start};
  mma_kernel_for(ix.Kp)<<<p.n_qt * p.n_splits, 384, p.smem, s>>>(a);
  launch_check("mma_kernel");
  if (start && p.sample.guess(K)) {
    char* refill = b.take<char>(refill_scratch_bytes(q.n_q, K));
    refill_short_lists(ix, q, planes, L, K, partial, p.n_splits, refill, p.stats, s);
  }
  launch_merge(partial, q.n_q, p.n_splits, K, k, q, out, s);
}

size_t mma_lists_scratch_bytes(const DeviceIndex& ix, int n_rows) {
  Bump b{nullptr};
  b.take<int8_t>(static_cast<size_t>(n_rows) * ix.Kp);
  b.take<float>(static_cast<size_t>(n_rows));
  return b.used + 256;
}

void mma_scan_lists(const DeviceIndex& ix, const MmaListWork& w, uint32_t L, int K, const MmaPlan& p, void* scratch,
                    uint64_t* partial, cudaStream_t s) {
  if (w.n_work == 0) return;
  Bump b{static_cast<char*>(scratch)};
  const int n_qt = w.n_rows / kTileQueries;
  int8_t* qt = b.take<int8_t>(static_cast<size_t>(w.n_rows) * ix.Kp);
  float* qw = b.take<float>(static_cast<size_t>(w.n_rows));
  const size_t items = static_cast<size_t>(w.n_rows) * (ix.Kp / 16);
  tile_queries_kernel<<<static_cast<int>(std::min<size_t>((items + 255) / 256, 65535)), 256, 0, s>>>(
      w.trits, w.weights, w.term_off, w.n_rows, ix.dims, ix.Kp, n_qt, qt, qw);
  launch_check("tile_queries_kernel (lists)");
  MmaArgs a{ix.tiled, qt, qw, w.n_rows, ix.Kp, L, ix.tile_stride, static_cast<int>(ix.n_tiles), 1, 1,
            K, p.stages, p.cap, p.append_eager, static_cast<uint32_t>(((uint64_t{1} << 32) + p.stages - 1) / p.stages), partial,
            p.mode, p.group_soft, p.group_cta ? 1 : 0, p.stats, w.work, w.row_slot, nullptr};
  mma_kernel_for(ix.Kp, true)<<<w.n_work, 384, p.smem, s>>>(a);
  launch_check("mma_kernel (lists)");
}

cudaError_t probe_kernels() {
  cudaFuncAttributes attr;
  cudaError_t e = cudaFuncGetAttributes(&attr, kMmaKernels[0]);
  if (e != cudaSuccess) return e;
  return popc_probe();
}

}  // namespace igla::cuda
