// igla: exact batch search over ternary codes.
//
// Batch is the unit (as in FAISS's Index::search): one query is a batch of one. A query is one
// or more ternary "terms" with float weights; a vocabulary word x with inverse norm inv(x) scores
//
//   Combine::Sum     score = (sum over terms t, in order, of w_t * float(dot(x, t))) * inv(x)
//                    one term with w = 1/|q| is cosine similarity; terms b, a, c with weights
//                    1/|b|, -1/|a|, 1/|c| are 3CosAdd (cos(x,b) - cos(x,a) + cos(x,c))
//   Combine::CosMul  3CosMul (Levy & Goldberg 2014) of exactly three terms a, b, c:
//                    cos_t = (w_t * float(dot(x, t))) * inv(x), s_t = (cos_t + 1) / 2,
//                    score = s_b * s_c / (s_a + 0.001)
//
// The dot products are exact integers; the float expression above is evaluated in exactly this
// order by every implementation (scalar reference, SIMD kernels, CUDA), so scores agree to the
// bit. Results are ordered by score descending, ties broken by the lower word id.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "igla/error.hpp"
#include "igla/index.hpp"

namespace igla {

enum class Combine : uint8_t { Sum, CosMul };

inline constexpr float kCosMulEpsilon = 0.001f;

// The score of one word from its term dot products; shared by every implementation.
inline float combine_score(Combine c, const int32_t* dots, const float* w, size_t n_terms, float inv_x) {
  if (c == Combine::Sum) {
    float s = 0.0f;
    for (size_t t = 0; t < n_terms; ++t) s += w[t] * static_cast<float>(dots[t]);
    return s * inv_x;
  }
  const float ca = (w[0] * static_cast<float>(dots[0])) * inv_x;
  const float cb = (w[1] * static_cast<float>(dots[1])) * inv_x;
  const float cc = (w[2] * static_cast<float>(dots[2])) * inv_x;
  const float sa = (ca + 1.0f) * 0.5f, sb = (cb + 1.0f) * 0.5f, sc = (cc + 1.0f) * 0.5f;
  return (sb * sc) / (sa + kCosMulEpsilon);
}

// A batch of queries. Each query is one or more weighted ternary terms (what the backends scan)
// and, when it can be reranked, the float form of each term (what the rerank stage rescores on);
// plus the word ids it must never return. Build it with the helpers in igla/queries.hpp (words,
// float vectors, analogies, most_similar) or add_nearest / add_query (raw ternary vectors).
struct QueryBatch {
  uint32_t dims = 0;
  Combine combine = Combine::Sum;
  std::vector<int8_t> trits;                    // n_terms * dims
  std::vector<float> weights;                   // per term
  std::vector<uint32_t> term_offsets{0};        // query i's terms: [term_offsets[i], term_offsets[i+1])
  std::vector<uint32_t> exclude;                // word ids never returned
  std::vector<uint32_t> exclude_offsets{0};     // query i's exclusions, likewise

  // The float form (FAISS IndexRefine's input): unit vectors of float_dims values per term and a
  // weight per term (Sum: the cosine's sign or gensim weight; CosMul: 1), combined as the ternary
  // query is, over float cosines. `has_float[q]` = 0 for a query without one (a raw ternary
  // vector, a clamped analogy): the rerank stage passes its ternary answer through.
  uint32_t float_dims = 0;
  std::vector<float> float_terms;               // n_terms * float_dims (zeros where absent)
  std::vector<float> float_weights;             // per term
  std::vector<uint8_t> has_float;               // per query

  explicit QueryBatch(uint32_t d = 0, Combine c = Combine::Sum) : dims(d), combine(c) {}
  size_t size() const { return term_offsets.size() - 1; }
  size_t n_terms() const { return weights.size(); }
  bool any_float() const;

  // Cosine nearest neighbours of one ternary vector (no float form).
  void add_nearest(std::span<const int8_t> q, std::span<const uint32_t> excl = {});
  // A query of several weighted ternary terms (3CosAdd, most_similar, 3CosMul's a, b, c); no float form.
  void add_query(std::span<const std::span<const int8_t>> terms, std::span<const float> w,
                 std::span<const uint32_t> excl = {});
  // The same with the float form of each term (float_dims values each, normalized here) and its
  // float weight; float_dims is set by the first such query.
  void add_query(std::span<const std::span<const int8_t>> terms, std::span<const float> w,
                 std::span<const std::span<const float>> float_terms, std::span<const float> float_w,
                 std::span<const uint32_t> excl = {});
  // Appends every query of `other` (same dims and combine).
  void append(const QueryBatch& other);
  // Throws Error when the offsets, sizes or combine rules do not hold (every searcher calls it).
  void validate() const;
};

struct Hit {
  uint32_t id;
  float score;
  bool operator==(const Hit&) const = default;
};

// Score descending, then id ascending: the one order every path reports.
inline bool better(const Hit& a, const Hit& b) {
  return a.score > b.score || (a.score == b.score && a.id < b.id);
}

// Per-call parameters (FAISS's SearchParameters): never state of the searcher, so threads that
// search one searcher with different values do not race.
// Ternary candidates per query for the rerank stage: on GloVe-100d (Google analogies, 30,000
// words) the default rotated codes gain nothing past this, seed / centered codes < 0.3 points
// (docs/ACCURACY.md). Searchers without a rerank stage, and indexes without rows, ignore it.
inline constexpr size_t kDefaultCandidates = 50;

struct SearchParams {
  size_t k = 10;
  size_t limit = 0;       // consider only the first `limit` words (0: all); eval's --restrict
  size_t candidates = kDefaultCandidates;  // rerank stage: ternary candidates per query (0: none)
  uint32_t nprobe = 0;    // approximate searchers: lists probed (0: the searcher's default)
  uint32_t ef = 0;        // graph searchers: search breadth (0: the searcher's default)
};

struct SearchResults {
  size_t k = 0;
  std::vector<Hit> hits;        // n_queries * k, best first
  std::vector<uint32_t> count;  // hits per query (< k when fewer words qualify)
  std::span<const Hit> of(size_t q) const { return {hits.data() + q * k, count[q]}; }
  void reset(size_t n_queries, size_t k_);  // k_ slots per query, counts 0
};

// What a searcher does well; front ends read it to plan batches and to say what ran.
struct Capabilities {
  size_t max_fast_k = 0;       // k + exclusions (+ candidates) answered on the fast path
  uint32_t max_fast_terms = 1; // terms per Sum query on the fast path
  bool multi_term = true;      // Sum queries of any number of terms, and 3CosMul
  bool exact = true;           // answers equal the exact ternary search (false: approximate)
  bool reranks = false;        // rescoring of candidates happens inside (rerank stage, or on device)
};

// A search backend over one index (FAISS's shape: CPU and CUDA implementations side by side).
// Thread-safety: search() is const and reentrant: any number of threads may call it on one
// searcher at once, each with its own batch, params and results, with the answers of serial
// calls. A searcher holds its index (shared_ptr) and any derived layout, never per-call state.
class Searcher {
 public:
  virtual ~Searcher() = default;
  virtual std::string name() const = 0;  // e.g. "cpu/avx512 x2 threads", "cuda/H200"
  virtual Capabilities capabilities() const = 0;
  virtual void search(const QueryBatch& batch, const SearchParams& params, SearchResults& out) const = 0;
  SearchResults search(const QueryBatch& batch, const SearchParams& params) const {
    SearchResults r;
    search(batch, params, r);
    return r;
  }
};

// The CPU pool's idle spin unless CpuOptions::idle_spin says otherwise (see there).
inline constexpr uint32_t kDefaultIdleSpin = 20000;

// Typed options per backend (the CLI maps its flags and IGLA_* variables onto these; the library
// reads no environment).
struct CpuOptions {
  int threads = 0;     // threads of the process-wide pool one call may use (0: all cores)
  std::string kernel;  // instruction set: "" (best this CPU runs), "avx512", "avx2", "scalar"
  // Idle spin of the process-wide pool's workers: pause instructions a worker spins watching for
  // the next job before it sleeps (-1: leave the pool's setting, kDefaultIdleSpin unless changed; 0: sleep
  // at once). Process-wide: making a searcher with a value >= 0 sets it for every searcher. Less
  // spin leaves the cores to other threads (an HTTP server's I/O, its clients) between batches.
  int idle_spin = -1;
};

// The CUDA backend ("cuda"): exact, on one GPU. Thread-safety: search() is const and reentrant, and
// one searcher runs one call at a time (a mutex inside: it reuses its streams and pinned buffers);
// threads that want the GPU in parallel make one searcher each over the same index, which share
// its device copies (codes, rerank rows: one per index per GPU). A batch of one query goes to a
// persistent kernel that belongs to the device, not to a searcher (src/cuda/device.hpp): any
// searcher's batch stops it while the batch runs, and the next one-query search restarts it.
struct CudaOptions {
  int device = -1;       // CUDA device ordinal (-1: the current device)
  std::string path;      // batch path: "" (chosen per batch), "mma", "popc", "mt", "sort"
  bool device_rerank = true;  // rescore candidates on the GPU (rerank rows resident there)
  // An index with int8 rerank rows keeps them on the GPU as its int8 bytes (decoded per element
  // by the rerank kernel to the same floats as Index::rerank_row) instead of decoded float rows:
  // a quarter of the bytes gathered per candidate and of the device memory (GloVe 341K x 100:
  // 38 MB instead of 137), and the rerank kernel ~19% faster (run 74, H100); the answers are the
  // same either way.
  bool rerank_int8_rows = true;
  // Where both the tensor-core (mma) and popcount paths can answer a batch, time both once per
  // batch shape (size class, list length, limit) at first use and keep the faster, per index per
  // GPU; false: a fixed rule (popc below 512 queries over an L2-resident vocabulary).
  bool calibrate = true;
  // Tuning knobs for A/B runs (defaults are the measured best).
  int mma_mode = 0;
  int mma_max_stages = 6;
  int mma_group_soft = -1;     // -1: the plan's
  bool mma_group_cta = false;
  // mma row lists of K >= mma_append_k keys are append lists with mma_append_slack free slots
  // (src/cuda/kernels.hpp; -1: the defaults, 65 = off and 32; 33: on past 32 keys).
  int mma_append_k = -1;
  int mma_append_slack = -1;
  int mma_append_eager = 0;    // > 0: select an append list once it holds this many unsorted keys
  std::string single;          // one-query route/mode list: "launch", "graph", ... ("": persistent kernel)
  double persist_idle_ms = 1000, persist_host_idle_ms = -1;  // -1: half of persist_idle_ms
  uint32_t persist_sleep_ns = 0;
  bool persist_relay_flag = false;
  uint32_t single_split = 0;
  bool single_sync = false;
  // One query with lists past 32 keys (the two-stage query's candidates + exclusions): keys each
  // CTA of the one-query kernel keeps for the last one's selection (1..32; more keys, fewer
  // rescans of a CTA's words but a longer select; 0: every CTA keeps all K, merged from longer
  // splits as before). Run 52, one analogy: 4 29-35 us, 8 36-40, 16 45-51, 0 55-60.
  int single_prefix = 4;
  bool stats = false;          // count kernel events (stats() reports them; nothing printed)
  // Pinned host buffers of batches as 2 MB transparent huge pages registered with CUDA (Linux;
  // else, or where registering fails, cudaHostAlloc): a fresh process's first batch paid ~5 ms a
  // slot to pin 4 KB pages (NOTES v14).
  bool host_huge_pages = true;
  // mt path (multi-term Sum queries on the tensor cores): words whose exact top-K bounds the scan,
  // and the candidates kept per query (past them a query is rescanned in full: slower, exact).
  // The sample: the first mt_sample words and mt_sample_spread more spread evenly over the rest
  // (run 59, one call of the 19,544 eval questions with rerank: 4,096 + 4,096 22.8 ms, 8,192 +
  // 8,192 26.3, 16,384 + 0 30.2, 0 + 16,384 28.9, 16,384 + 16,384 38.4).
  uint32_t mt_sample = 4096;
  uint32_t mt_sample_spread = 4096;
  uint32_t mt_cap = 8192;
  bool mt_prefilter = true;  // the mt scan's fixed-point prefilter before each exact score (A/B runs)
  // The mt scan over a chunk's distinct terms (each scored once against each word, the dots
  // combined per query): 0 off, 1 where a chunk's terms repeat (>= 4 terms a distinct term, at
  // most 512 distinct: batches of analogies), 2 whenever they fit (tests). Run 74 (H100, the
  // 19,544 eval questions): the scan 17.9 -> 11.4 ms of GPU time, all kernels 22.3 -> 15.7 ms.
  int mt_shared_terms = 1;
  // The bound pass of such a chunk over its distinct terms too: each distinct term's dots with the
  // sample once, combined per query (the same bounds as the per-query pass; false: A/B runs).
  bool mt_shared_bound = true;
  // mma path, lists of at least mma_sample_min_k keys (the two-stage query's candidates): each
  // row's running top-K starts from a key of a sample of the words (the first mma_sample words
  // and mma_sample_spread spread over the rest) instead of the first 256 words scanned, so far
  // fewer keys reach the lists (0 + 0: off). Run 59, 65,536 nearest queries with rerank 50, the
  // sample's K-th key: off 46.0-46.7 ms; spread 1,024 35.2, 2,048 34.9, 4,096 37.4, 16,384 58.5
  // (the sampling pass costs more than it saves past ~2,048 words).
  uint32_t mma_sample = 0;
  uint32_t mma_sample_spread = 2048;
  int mma_sample_min_k = 33;
  // Which key of the sample: 0 the K-th (a bound); r in 1..K-1 the r-th, a guess. Over 2,048
  // spread GloVe words the 3rd lies below a 1-term query's K-th (K = 53) for ~99.6% of queries
  // and leaves ~500 keys above it against ~8,900; a query whose lists end with fewer than K keys
  // is rescanned in full on the GPU, so answers stay exact (NOTES v19). Run 63 (H100), the same
  // 65,536 queries: K-th 32.6-32.9 ms, 3rd 27.1-27.6, 2nd 28.9, 4th 28.4.
  uint32_t mma_sample_rank = 3;
  // The bound pass of those rows at ranks up to 4: per-lane top-4 lists in registers, 4 queries a
  // warp (lane_bound_kernel) instead of a warp list a query. Run 73 (H100), the same 65,536
  // queries with rerank 50: 23.13-23.28 ms against 23.55-23.62 (NOTES v21).
  bool mma_bound_lanes = true;
};

struct SearcherOptions {
  std::string backend = "cpu";  // a registered backend: "cpu", "cuda", "float", ...
  CpuOptions cpu;
  CudaOptions cuda;
  // Wrap the backend in the rerank stage when the index has rerank rows (and the backend does
  // not rescore itself). Whether a call reranks is its SearchParams::candidates.
  bool rerank = true;
};

// The searcher `opts` names over `index` (shared: searchers, engines and servers over one index
// share its mapped bytes and derived layouts). Throws Error naming the backend and why.
std::shared_ptr<const Searcher> make_searcher(std::shared_ptr<const Index> index, const SearcherOptions& opts = {});

// The backend registry (core owns it; backends add themselves at static init).
using SearcherFactory =
    std::shared_ptr<const Searcher> (*)(std::shared_ptr<const Index> index, const SearcherOptions& opts);
void register_backend(const std::string& name, SearcherFactory make);
std::vector<std::string> backend_names();

// The rerank stage over any searcher (FAISS's IndexRefine): the base's top `candidates` per
// query (params.candidates; k when smaller), rescored on the index's rerank rows with float
// math, best k kept. Queries without a float form, or calls with candidates = 0, pass through.
std::shared_ptr<const Searcher> make_rerank_stage(std::shared_ptr<const Searcher> base,
                                                  std::shared_ptr<const Index> index, int threads = 0);

// The plain reference: one int8 per trit, no bit tricks, no threads. Tests hold every fast path
// to its exact scores and order. `vocab` is n * dims trits.
SearchResults reference_search(std::span<const int8_t> vocab, size_t n, uint32_t dims,
                               const QueryBatch& batch, const SearchParams& params);

}  // namespace igla
