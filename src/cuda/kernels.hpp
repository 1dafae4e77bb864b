// igla CUDA backend: the kernels' launch interface (host side). Included by src/cuda only.
//
// Three search paths, all exact (design notes and measurements: scripts/gpu/NOTES.md, RESULTS.md):
//   mma   one-term Sum queries (cosine), top-K <= 64: int8 trits on the tensor cores (wgmma
//         m64n128k32 s8*s8 -> s32), top-K fused into the epilogue; the score matrix never
//         leaves the SM. Vocabulary resident as int8 in the wgmma canonical layout.
//   popc  any query (several terms, CosMul), top-K <= 64: 2-bit bitplanes, AND + popcount on the
//         CUDA cores, warp top-K lists. Also the small-batch path.
//   one   a batch of one query, top-K <= 64 (single_kernel): the popc scoring in one launch, the
//         query in the launch parameters, the hits into mapped host memory; or the same work in
//         a persistent kernel that takes the query from a mailbox in mapped host memory
//         (persistent_kernel: no launch per query).
//   sort  any query, any K: every key written to memory, segmented radix sort (CUB).
// Every path computes each score with combine_score's float operations in its order, with
// round-to-nearest intrinsics (no contraction), and ranks by one 64-bit key (score, ~id).
// Files: prepare.cu (index and query tiling, bitplanes), mma.cu (the tensor-core path and
// probe_kernels), popc.cu, single.cu (one: single_kernel, persistent_kernel), sort.cu, merge.cu
// (per-split lists of mma and popc), rerank.cu (the float rescoring of candidates); helpers shared by them: device_common.cuh (device),
// host_common.hpp and prepare.cuh (host).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace igla::cuda {

constexpr int kTileWords = 128;  // vocabulary words per mma tile (wgmma N)
constexpr int kTileQueries = 128;  // queries per mma CTA (2 consumer warpgroups x m64)
constexpr int kMaxListK = 64;     // top-K held in one warp (two keys a lane past 32)
// Bytes after each tile's int8 codes: inv_norm of its 128 words (float[128]), their word ids
// (uint32[128]; ~0u for padding), then 1 / max(inv_norm) (float), so one bulk copy brings
// everything the epilogue reads.
constexpr uint32_t kTileExtra = 1040;  // multiple of 16 (bulk copies)
constexpr uint32_t kExtraIds = 512;    // byte offsets inside the extra block
constexpr uint32_t kExtraRim = 1024;
// The mma path's tiles hold the words of each run of kSuperBlock ids sorted by their number of
// non-zero trits (ids carried in the tile), so the inverse norms inside a tile are (nearly) equal
// and the integer prefilter bound is (nearly) exact. Words of ids < L all lie in the first
// ceil(L / kSuperBlock) super-blocks.
constexpr uint32_t kSuperBlock = 8192;

// The vocabulary on the device.
struct DeviceIndex {
  uint32_t dims = 0, W = 0;
  uint32_t n = 0;           // real words
  uint32_t n_tiles = 0;     // ceil(n / kTileWords)
  uint32_t Kp = 0;          // dims padded to a multiple of 32 (wgmma k32 steps)
  const uint64_t* codes = nullptr;     // blocked bitplanes, as in ternary.hpp
  const float* inv = nullptr;          // n_tiles * kTileWords, 0 past n
  const int8_t* tiled = nullptr;       // n_tiles tiles of tile_stride bytes: codes (wgmma canonical
                                       // K-major layout), then kTileExtra bytes (inv, ids, 1/inv max)
  uint32_t tile_stride = 0;            // kTileWords * Kp + kTileExtra
};

// The order of the words in the mma tiles: position -> word id (~0u past n), n_tiles * kTileWords
// entries; within each super-block of kSuperBlock ids, by non-zero count (stable).
void tile_order(const float* inv_norms, uint32_t n, uint32_t n_tiles, uint32_t* perm);
// Builds the tiled int8 codes from the bitplanes, inv and perm (tile_order) already on the device.
void build_device_index(DeviceIndex& ix, const float* inv, const uint32_t* perm, int8_t* tiled, cudaStream_t s);

// One chunk of queries as uploaded (chunk-relative offsets).
struct ChunkQueries {
  int n_q = 0;
  int n_terms = 0;
  int combine = 0;                 // 0 Sum, 1 CosMul
  const int8_t* trits = nullptr;   // n_terms * dims
  const float* weights = nullptr;  // n_terms
  const uint32_t* term_off = nullptr;  // n_q + 1
  const uint32_t* excl = nullptr;
  const uint32_t* excl_off = nullptr;  // n_q + 1
  const uint64_t* planes = nullptr;    // optional: the terms' bitplanes, packed by the host
  // Optional (the mt path's shared-terms scan): the chunk's distinct terms and each term's index
  // among them (src/core/distinct_rows.hpp); n_distinct 0: none given.
  int n_distinct = 0;
  int distinct_max_nnz = 0;                // the most non-zero trits of a distinct term
  const int8_t* distinct_trits = nullptr;  // n_distinct * dims
  const uint32_t* term_distinct = nullptr; // n_terms
};

struct OutHits {
  uint2* hits = nullptr;      // n_q * k (id, score bits)
  uint32_t* count = nullptr;  // n_q
};

// Words whose exact top-K bounds a scan from below (the mt path; the mma path's start for long
// lists): the first `first` ids below L (the most frequent words) and `spread` ids spread evenly
// over the rest. Either kind alone is weak for some queries: frequent words bound the queries of
// frequent words well and those of rare words badly, and an even spread the other way round
// (NOTES v18: GloVe, K = 53: 16,384 words give 1,921 / 1,072 / 712 keys above the bound a
// 3CosAdd question for first / spread / half of each).
//
// rank r in 1..K-1 makes the bound a guess: the sample's r-th key instead of its K-th. Fewer keys
// reach it (a sample of S spread words out of L: the r-th lies near rank r L / S over all words
// against K L / S), but for some queries fewer than K keys over all words do; the caller checks
// that K keys reached it and rescans the queries where not (the mma path: refill_short_lists), so
// answers stay exact (NOTES v19). (On the mt path, whose sample holds the first words, a guess
// missed for a fifth of the eval's questions and their rescans cost more than it saved: run 63.)
struct WordSample {
  uint32_t first = 0, spread = 0;
  uint32_t rank = 0;  // 0: the K-th key (a bound, never a guess)
  bool lane_bound = false;    // one-term bound pass with per-lane lists (rank <= 4; NOTES v21)
  bool on() const { return first + spread > 0; }
  bool guess(int K) const { return rank > 0 && static_cast<int>(rank) < K; }
  int bound_rank(int K) const { return guess(K) ? static_cast<int>(rank) : K; }
};
// Per query of the chunk, the K-th best key (score, ~id) over the sample, or 0 when it holds fewer
// than K words: every key of the query's exact top K over the words below L is >= it (the K-th
// largest of a subset never exceeds the K-th largest of the set); with ws.guess(K), the
// ws.rank-th key instead (see WordSample). Popcount over the sample's bitplanes (gathered first
// into sample_scratch): one-term queries a warp each with the sample in shared memory when it
// fits in max_smem (the device's opt-in bytes per block), else one CTA a query, up to max_terms
// terms; or, given distinct_scratch (shared_terms_bounds_scratch_bytes, mt_common.cuh) and a chunk
// with its distinct terms (q.n_distinct), each distinct term's dots with the sample once, combined
// per query (the same keys). planes_scratch takes the queries' packed planes unless q.planes holds
// them; cand_n (optional) is zeroed. sample_bounds_scratch_bytes: planes + bound + the gathered sample.
void sample_bounds(const DeviceIndex& ix, const ChunkQueries& q, uint32_t L, int K, int max_terms, WordSample ws,
                   size_t max_smem, uint64_t* planes_scratch, void* sample_scratch, uint64_t* bound, uint32_t* cand_n,
                   cudaStream_t s, void* distinct_scratch = nullptr);
size_t sample_bounds_scratch_bytes(const DeviceIndex& ix, int n_q, int n_terms, WordSample ws);
// Scratch of the gathered sample alone (part of sample_bounds_scratch_bytes).
size_t sample_words_bytes(const DeviceIndex& ix, uint64_t S);
// After a scan whose lists started from guessed bounds (WordSample::guess): partial holds per
// query n_splits lists of K keys (sorted, 0 past their keys). A query whose lists hold fewer than
// K keys in all (fewer than K keys over all words reached its guess, so its top K may lie below)
// gets its exact top K over the words below L by a full popcount scan, written as split 0's list
// (the other splits' emptied). Exact either way: with K keys at or above the guess, every key of
// the top K is one of them and each split kept those of its words. One-term queries (the mma
// path's); planes: their packed planes; scratch: refill_scratch_bytes(n_q, K); stats (optional):
// [5] += the queries rescanned. Three launches: a warp a query lists the short ones, CTAs of 8
// short queries (a warp each) scan a part of the words each, one merges a query's parts.
void refill_short_lists(const DeviceIndex& ix, const ChunkQueries& q, const uint64_t* planes, uint32_t L, int K,
                        uint64_t* partial, int n_splits, void* scratch, unsigned long long* stats, cudaStream_t s);
size_t refill_scratch_bytes(int n_q, int K);

// --- mma path --------------------------------------------------------------------------------
// Row lists of the mma kernel: K <= 32 keys kept unsorted with a scan for the smallest (sorted
// once at the end), longer ones (the two-stage query's candidates + exclusions) as a binary
// min-heap; or, from K = append_min_k on, append lists: K sorted keys plus `slack` slots where keys
// that beat the K-th are appended unsorted and selected by the warp when full (mma.cu, NOTES v16).
// Append lists are OFF by default (kAppendMinK past kMaxListK) until a GPU run has checked and
// timed them (run 55 was lost with its machine); IGLA_CUDA_APPEND_K=33 turns them on for K > 32.
constexpr int kAppendMinK = 65;
constexpr int kAppendSlack = 32;
// Keys a row list of K holds in shared memory (K, or K + slack for append lists).
int mma_list_cap(int K, int append_min_k = kAppendMinK, int append_slack = kAppendSlack);

struct MmaPlan {
  int n_qt = 0, n_splits = 0, tiles_per_split = 0, n_tiles = 0, stages = 0;
  int cap = 0;                              // keys a row list holds (mma_list_cap; K when append lists do not fit)
  int append_eager = 0;                     // append lists: select a row once it holds this many appended keys
                                            // (0: when full only; IGLA_CUDA_APPEND_EAGER for A/B runs)
  size_t smem = 0;
  int mode = 0;                             // experiments only (scripts/gpu): 1 no epilogue, 2 no slow path
  int group_soft = 4;                       // a queue past this asks its warpgroup to drain together
                                            // (0: drains on overflow only; IGLA_CUDA_GROUP for A/B runs)
  bool group_cta = false;                   // the request goes to all 8 warps (IGLA_CUDA_GROUP_CTA=1)
  unsigned long long* stats = nullptr;      // optional device counters[7]: warp-tiles with a candidate,
                                            // staged candidates, queued keys, drains; [6] list selects
  WordSample sample;                        // on: each row's list starts from its sample_bounds key
                                            // (one-term queries; the caller sets it, for long lists)
  size_t max_smem = 0;                      // the device's opt-in shared memory a block (sample_bounds)
};
// False when this dims/K does not fit the kernel's shared memory (use popc). The tile ring takes
// as many stages (2..max_stages, at most 6) as fit, with append lists when K >= append_min_k (and
// they fit with 2 stages).
bool mma_plan(const DeviceIndex& ix, int n_q, uint32_t L, int K, int num_sms, size_t max_smem, MmaPlan& p,
              int max_stages = 6, int append_min_k = kAppendMinK, int append_slack = kAppendSlack);
size_t mma_scratch_bytes(const DeviceIndex& ix, int n_q, int K, const MmaPlan& p);
void mma_search(const DeviceIndex& ix, const ChunkQueries& q, uint32_t L, int K, int k, const MmaPlan& p,
                void* scratch, OutHits out, cudaStream_t s);
void mma_prepare_attributes(size_t max_smem);
// List mode (the CUDA IVF searcher, src/cuda/ivf_searcher.cpp): ix.tiled holds each IVF list's
// words in tiles of their own (a list starts a tile; ids are word ids). The gathered query rows
// (one term each, n_rows a multiple of kTileQueries: each query tile's rows probe one list, padding
// rows have row_slot ~0u) are tiled like mma_search's; work item b (one CTA) is
// {query tile, first list tile, list tiles, 0}; row r of query tile t writes its K best keys of
// that list (score, ~id; fewer padded with 0) to partial[row_slot[128 t + r] * K ..]. Words of id >= L
// are skipped. p: a plan of mma_plan (stages, shared memory; its split fields are unused).
struct MmaListWork {
  const int8_t* trits = nullptr;       // the rows' terms, dims each
  const float* weights = nullptr;      // per term
  const uint32_t* term_off = nullptr;  // n_rows: row r's term (padding rows may share a zero term)
  int n_rows = 0;
  const int4* work = nullptr;          // n_work
  int n_work = 0;
  const uint32_t* row_slot = nullptr;  // n_rows
};
size_t mma_lists_scratch_bytes(const DeviceIndex& ix, int n_rows);
void mma_scan_lists(const DeviceIndex& ix, const MmaListWork& w, uint32_t L, int K, const MmaPlan& p, void* scratch,
                    uint64_t* partial, cudaStream_t s);

// --- popc path -------------------------------------------------------------------------------
struct PopcPlan {
  int n_splits = 0;
  uint32_t split_len = 0;
  int max_terms = 0;
  bool single = false;
  uint32_t* counters = nullptr;  // per query of the chunk, zero between launches (the kernel
                                 // resets what it used); the searcher owns them
};
PopcPlan popc_plan(const DeviceIndex& ix, int n_q, uint32_t L, int num_sms, int max_terms, bool single);
// Dynamic shared memory of the popc kernel (the searcher checks it against the device limit).
size_t popc_smem_bytes(const DeviceIndex& ix, int max_terms, int K, int n_splits);
size_t popc_scratch_bytes(const DeviceIndex& ix, int n_q, int n_terms, int K, const PopcPlan& p);
void popc_search(const DeviceIndex& ix, const ChunkQueries& q, uint32_t L, int K, int k, const PopcPlan& p,
                 void* scratch, OutHits out, cudaStream_t s);
// Dynamic shared memory limit of the popc kernels (the searcher calls each path's
// *_prepare_attributes once, with the device's opt-in limit).
void popc_prepare_attributes(size_t max_smem);

// --- one query ---------------------------------------------------------------------------------
// A batch of one query: one kernel launch and nothing else. The query's bitplanes, weights and
// exclusions travel in the kernel's parameters (no copy), one CTA per vocabulary split scores its
// words and keeps a top-K list, the last CTA to finish (atomic counter) merges the splits' lists
// and writes the k hits straight into mapped pinned host memory, then a sequence number the host
// spins on. Queries that do not fit the parameter block go through the batch paths.
// The parameter block is kept small (~0.6 KB): one term up to 1536 dims, three up to 512.
constexpr int kSingleMaxTerms = 6;
constexpr int kSingleMaxExcl = 16;
constexpr int kSinglePlaneWords = 48;  // T * 2W uint64 words of query bitplanes
constexpr uint32_t kSingleMaxMergeKeys = 6144;  // splits x K merged by the last CTA (96 KB with candidates)
struct SingleArgs {
  const uint64_t* codes = nullptr;
  const float* inv = nullptr;
  uint64_t* partial = nullptr;   // n_splits * K keys (device)
  uint32_t* counter = nullptr;   // one word, zero between launches (the last CTA resets it)
  uint32_t* out = nullptr;       // mapped host block (8 KB): [0] sequence flag, [1] count, [2..] k hits (uint2);
                                 // trace mode: 6 uint64 cycle counts at [1024..]
  uint32_t W = 0, L = 0, split_len = 0, seq = 0;
  int T = 0, combine = 0, K = 0, k = 0, n_splits = 0, n_excl = 0;
  int prefix = 0;  // > 0: prefix mode (single.cu, select_top): each CTA keeps this many keys (SinglePlan::prefix)
  int mode = 0;  // experiments only (IGLA_CUDA_SINGLE): 2 no work (CTA 0 signals at once), 3 no merge, 4 trace,
                 // 5 echo (persistent: CTA 0 signals as soon as the message is in, no fence; else as 2)
  float w[kSingleMaxTerms] = {};
  uint32_t excl[kSingleMaxExcl] = {};
  uint64_t planes[kSinglePlaneWords] = {};  // term t: nz words [2Wt, 2Wt + W), sign words after
};
struct SinglePlan {
  int n_splits = 0;
  uint32_t split_len = 0;
  size_t smem = 0;
  int prefix = 0;  // keys kept a CTA in prefix mode (0: every CTA keeps K, merged by the last)
};
// split_words: vocabulary words per CTA (0: automatic). prefix_keys: for K > 32 and automatic
// splits, the prefix mode's keys a CTA (one pass of 1,024 words a CTA, words strided over the CTAs;
// single.cu says why it is exact) where the splits x prefix_keys fit the last CTA; 0: never.
SinglePlan single_plan(const DeviceIndex& ix, uint32_t L, int K, int T, int num_sms, uint32_t split_words,
                       int prefix_keys = 0);
// Launches the kernel (one term Sum: a.T == 1 && a.combine == 0 takes the specialised kernel).
cudaError_t single_launch(const SingleArgs& a, const SinglePlan& p, cudaStream_t s);
// Dynamic shared memory limits of the one-launch kernels (max_smem less their static shared memory).
void single_prepare_attributes(size_t max_smem);

// One query through a persistent kernel (scripts/gpu/NOTES.md, "Run P"): the single_kernel grid
// stays resident and takes queries from a mailbox in mapped pinned host memory, so a search costs
// no launch. Mailbox: kBoxWords 64-bit words, word i = (tag << 32) | payload word i, where the
// payload is the SingleArgs body (kSingleArgWords 32-bit words) and then a command word
// (kCmdQuery or kCmdStop). The host writes every word of a message with one new tag (each word
// carries its tag, so no ordering between the words is needed); the kernel's CTA 0 polls the
// words over PCIe (one thread a word: the message arrives in one round trip) and forwards them,
// tagged the same way, into `relay` (device memory, kBoxWords words), which the other CTAs' threads
// poll in L2 (one thread a word again: no fence, no flag). Each CTA then runs the one-launch
// kernel's body; the last one answers into the mapped result block as before. The kernel exits on
// kCmdStop or after idle_ns without a message (the host restarts it lazily). One such kernel runs
// per GPU and belongs to the device, not to a searcher: src/cuda/device.hpp (OneQueryKernel) says
// who posts to it, who stops it (work that needs the SMs: batches, one-launch queries, frees) and
// that no searcher stops it for a reason of its own.
constexpr int kSingleArgWords = static_cast<int>(sizeof(SingleArgs) / 4);
constexpr int kBoxWords = kSingleArgWords + 1;
constexpr uint32_t kCmdQuery = 0, kCmdStop = 1;
static_assert(sizeof(SingleArgs) % 8 == 0 && kBoxWords <= 256, "SingleArgs must fit one tagged word a thread");
constexpr int kRelayWords = 2 * kBoxWords + 2;
struct PersistArgs {
  const unsigned long long* box = nullptr;  // mapped host mailbox (device address), kBoxWords words
  unsigned long long* relay = nullptr;      // device, kRelayWords words, zero at launch
  uint32_t tag = 0;                         // tag of the first message this launch takes (never 0)
  unsigned long long idle_ns = 0;           // exit after this long without a message
  uint32_t relay_sleep_ns = 0;              // experiments (IGLA_CUDA_PERSIST_SLEEP_NS): pause between relay polls
  int relay_flag = 0;                       // experiments (IGLA_CUDA_PERSIST_RELAY=flag): payload, fence, then
                                            // one flag word that CTAs 1.. poll with one thread
};
// Which kernel form a query takes (0: generic; W: one-term Sum over W plane words).
int single_form(const SingleArgs& a);
// CTAs of the persistent kernel of this form and plan that fit on the GPU at once.
int persistent_capacity(int form, const SinglePlan& p, int num_sms);
// Launches the persistent kernel of this form over p's grid (returns at once).
cudaError_t persistent_launch(const PersistArgs& pa, int form, const SinglePlan& p, cudaStream_t s);
// Dynamic shared memory limits of the persistent kernels (like single_prepare_attributes).
void persistent_prepare_attributes(size_t max_smem);

// --- mt path (multi-term Sum queries on the tensor cores) ------------------------------------
// Sum queries of up to kMultiMaxTerms terms over dims padded to <= kMultiMaxKp (multi.cu says
// how): a bound from a sample of the words (sample_bounds, declared above), every term's exact dot on the tensor cores
// (mma.sync s8), keys above the bound kept (at most `cap` a query; past it, that query is
// rescanned in full), then the exact top-K of the kept keys.
constexpr int kMultiMaxTerms = 4;
constexpr uint32_t kMultiMaxKp = 128;
struct MultiPlan {
  int n_qb = 0, n_splits = 0, tiles_per_split = 0, n_tiles = 0, ks = 0, max_terms = 0;
  uint32_t cap = 0;
  WordSample sample;
  bool prefilter = true;  // the scan's fixed-point prefilter (multi.cu); false for A/B runs
  bool shared_bound = true;  // the bound pass over the chunk's distinct terms where given (multi_shared.cu)
  size_t smem = 0;
  size_t max_smem = 0;  // the device's opt-in shared memory a block (sample_bounds)
  unsigned long long* stats = nullptr;  // optional device counters: [4] candidates, [5] overflowed queries
  int num_sms = 0;
};
bool multi_plan(const DeviceIndex& ix, int n_q, uint32_t L, int K, int max_terms, int num_sms, size_t max_smem,
                uint32_t cap, WordSample sample, MultiPlan& p);
size_t multi_scratch_bytes(const DeviceIndex& ix, int n_q, int n_terms, const MultiPlan& p);
void multi_search(const DeviceIndex& ix, const ChunkQueries& q, uint32_t L, int K, int k, const MultiPlan& p,
                  void* scratch, OutHits out, cudaStream_t s);
void multi_prepare_attributes(size_t max_smem);

// The mt scan over a chunk's distinct terms (multi_shared.cu): each distinct term's dots with the
// words once, combined per query; the same keys as the per-query scan. multi_search takes it when
// the chunk gives its distinct terms and they fit: at most kStMaxDistinct, each with at most 127
// non-zero trits (|dot| <= a term's non-zeros: int8 dots; GloVe's rotated codes have 128 dims).
constexpr int kStMaxDistinct = 512;
bool shared_terms_fit(const DeviceIndex& ix, int n_distinct, int max_term_nnz, size_t max_smem);

// --- sort path -------------------------------------------------------------------------------
// Queries are scored and sorted `sub` at a time.
int sort_sub_batch(uint32_t L);
size_t sort_scratch_bytes(const DeviceIndex& ix, int n_terms, uint32_t L, int sub);
void sort_search(const DeviceIndex& ix, const ChunkQueries& q, uint32_t L, int k, int sub, void* scratch,
                 size_t scratch_bytes, OutHits out, cudaStream_t s);

// --- rerank on the device (rerank.cu) ------------------------------------------------------------
// The exact second stage of a two-stage search, as src/core/rerank.cpp's rerank_hits computes it:
// each candidate's rerank row (stored decoded as float: the index's own decoding, done once on
// the host; or, for an int8 index with CudaOptions::rerank_int8_rows, as the index's int8 bytes
// in rows padded to 16 bytes and per-dimension scales, decoded per element as
// float(r[d]) * scale[d]: the same floats, a quarter of the bytes, one 16-byte load a lane per
// 128 dims) is scored against the query's float terms with fdot's operation order (8 interleaved
// partial sums, ((a0 + a4) + (a1 + a5)) + ((a2 + a6) + (a3 + a7)), then the tail) and the same
// cosine / combine expression, all with _rn intrinsics; the k best by (score desc, id asc) are
// written. One CTA a query; queries without a float form pass their first k candidates through.
struct RerankRows {
  const float* rows = nullptr;    // n * dims decoded rows, or null when rows8 holds them
  const int8_t* rows8 = nullptr;  // n rows of stride8 bytes: Index::rerank_int8_rows, padded; or null
  const float* scale = nullptr;   // dims: rows8's scales (Index::rerank_int8_scales)
  const float* inv = nullptr;     // n: 1 / |row| as rerank_score computes it (rerank_row_norms)
  uint32_t dims = 0;
  uint32_t stride8 = 0;  // dims rounded up to 16 (16-byte loads; rerank_int8_stride)
};
constexpr uint32_t rerank_int8_stride(uint32_t dims) { return (dims + 15u) / 16u * 16u; }
// inv[i] = 1 / sqrt(fdot(row i, row i)) (0 for a zero row), bit for bit src/core/rerank.cpp's
// rerank_score, for n rows of `rows` (inv is ignored): computed once per upload instead of once
// per candidate.
void rerank_row_norms(const RerankRows& rows, size_t n, float* inv, cudaStream_t s);
// Dynamic shared memory of rerank_search: the query's terms, the candidates' scores, the weights
// and, for int8 rows, the scales.
size_t rerank_smem_bytes(const RerankRows& rows, int max_terms, int C);
struct RerankQueries {
  int n_q = 0;
  int combine = 0;                   // 0 Sum, 1 CosMul
  const float* terms = nullptr;      // n_terms * dims (unit vectors)
  const float* weights = nullptr;    // n_terms
  const uint32_t* term_off = nullptr;  // n_q + 1, chunk-relative
  const uint8_t* has_float = nullptr;  // n_q
  int max_terms = 0;
};
// cand: n_q * C hits (id, score bits) with counts; out: n_q * k.
void rerank_search(const RerankRows& rows, const RerankQueries& q, const uint2* cand, const uint32_t* cand_count, int C,
                   int k, OutHits out, cudaStream_t s);

// Checks that the kernels can run on the current device (a compatible binary exists).
cudaError_t probe_kernels();

}  // namespace igla::cuda
