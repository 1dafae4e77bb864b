// The graph searcher (include/igla/graph.hpp, make_graph_searcher): HNSW's search over the
// index's int8 rerank rows, then the best candidates rescored with the rerank stage's arithmetic.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "ann/graph_walk.hpp"
#include "ann/int8_row_searcher.hpp"
#include "ann/int8_dot.hpp"
#include "core/backends.hpp"
#include "core/rerank.hpp"
#include "cpu/thread_pool.hpp"
#include "igla/error.hpp"
#include "igla/graph.hpp"

namespace igla {

// The searcher's view of a GraphIndex's arrays (the class keeps them private).
struct GraphAccess {
  const GraphIndex& g;
  size_t links0(uint32_t v, uint32_t* out) const {
    const uint32_t c = g.counts0_[v];
    const uint8_t* p = g.links0_ + size_t{v} * g.m0_ * g.link_bytes_;
    if (g.link_bytes_ == 3) {
      for (uint32_t j = 0; j < c; ++j) {
        uint32_t x;
        std::memcpy(&x, p + 3 * j, 4);  // the section keeps 4 bytes of slack after the last link
        out[j] = x & 0xFFFFFFu;
      }
    } else {
      std::memcpy(out, p, 4 * size_t{c});
    }
    return c;
  }
  const uint8_t* count0_address(uint32_t v) const { return g.counts0_ + v; }
  const uint8_t* links0_address(uint32_t v) const { return g.links0_ + size_t{v} * g.m0_ * g.link_bytes_; }
  size_t upper(uint32_t v, uint32_t level, uint32_t* out) const {
    const auto* it = std::lower_bound(g.upper_ids_, g.upper_ids_ + g.n_upper_, v);
    if (it == g.upper_ids_ + g.n_upper_ || *it != v) return 0;
    const size_t i = static_cast<size_t>(it - g.upper_ids_);
    if (size_t{g.upper_off_[i]} + size_t{level} * (g.m_ + 1) > g.upper_off_[i + 1]) return 0;
    const uint32_t* rec = g.upper_links_ + g.upper_off_[i] + size_t{level - 1} * (g.m_ + 1);
    std::copy_n(rec + 1, rec[0], out);
    return rec[0];
  }
};

namespace {

using ann::GraphCand;

// An excluded word nearer the query than this (cosine) is entry enough; below it the search also
// descends the upper layers. A word query's own word is at ~1; an analogy's inputs typically 0.5-0.8.
constexpr float kNearEntryCosine = 0.5f;

struct Scratch {
  ann::Visited vis;
  std::vector<GraphCand> top, cand, entries, seen;
  std::vector<uint32_t> buf, fresh;
  std::vector<float> x, row;
  std::vector<int8_t> q8;
  std::vector<Hit> hits;
};

class GraphSearcher final : public Searcher {
 public:
  GraphSearcher(std::shared_ptr<const Index> index, std::shared_ptr<const GraphIndex> graph, const SearcherOptions& opts)
      : index_(std::move(index)), graph_(std::move(graph)) {
    ThreadPool& pool = ThreadPool::shared();
    if (opts.cpu.threads > pool.size()) pool.grow_to(opts.cpu.threads);
    threads_ = opts.cpu.threads > 0 ? std::min(opts.cpu.threads, pool.size()) : pool.size();
    vnni_ = opts.cpu.kernel != "scalar" && ann::dot_i8_vnni_available();
    dot_ = vnni_ ? ann::dot_i8_vnni : ann::dot_i8_scalar;
    D_ = index_->float_dims();
    rows_ = index_->rerank_int8_rows().data();
    scales_ = index_->rerank_int8_scales().data();
    fallback_ = make_rerank_stage(make_cpu_searcher(index_, opts.cpu), index_, threads_);
  }

  std::string name() const override {
    return "graph/" + std::string(vnni_ ? "avx512vnni" : "scalar") + " M=" + std::to_string(graph_->m()) + " x" +
           std::to_string(threads_) + " threads";
  }

  Capabilities capabilities() const override { return ann::int8_rows_capabilities(); }

  void search(const QueryBatch& batch, const SearchParams& params, SearchResults& out) const override {
    batch.validate();
    const size_t nq = batch.size();
    // no float form, 3CosMul or --limit: the exact scan and the rerank stage
    if (!ann::int8_rows_answer(batch, params, static_cast<uint32_t>(D_))) {
      fallback_->search(batch, params, out);
      return;
    }
    out.reset(nq, params.k);
    if (nq == 0 || params.k == 0) return;
    constexpr size_t kChunk = 8;
    const size_t tasks = (nq + kChunk - 1) / kChunk;
    auto run = [&](uint32_t t, int) {
      for (size_t q = t * kChunk; q < std::min(nq, (t + 1) * kChunk); ++q) search_one(batch, params, q, out);
    };
    if (tasks > 1 && threads_ > 1)
      ThreadPool::shared().run(static_cast<uint32_t>(tasks), run, threads_);
    else
      for (uint32_t t = 0; t < tasks; ++t) run(t, 0);
  }

 private:
  void search_one(const QueryBatch& batch, const SearchParams& params, size_t q, SearchResults& out) const {
    thread_local Scratch s;
    const GraphIndex& g = *graph_;
    const GraphAccess acc{g};
    const size_t D = D_, Dp = ann::padded_dims(D_), n = g.size();
    // The query: the sum of its weighted float terms, times the row scales, quantized to int8.
    s.x.assign(D, 0.0f);
    for (uint32_t t = batch.term_offsets[q]; t < batch.term_offsets[q + 1]; ++t) {
      const float* v = batch.float_terms.data() + size_t{t} * D;
      for (size_t d = 0; d < D; ++d) s.x[d] += batch.float_weights[t] * v[d];
    }
    float mx = 0;
    for (size_t d = 0; d < D; ++d) mx = std::max(mx, std::fabs(s.x[d] * scales_[d]));
    const float f = mx > 0 ? 127.0f / mx : 0.0f;
    s.q8.assign(Dp, 0);
    for (size_t d = 0; d < D; ++d) {  // |y| <= 127: rounded half away from zero inline (lround is a libm call)
      const float y = s.x[d] * scales_[d] * f;
      s.q8[d] = static_cast<int8_t>(std::clamp(static_cast<int>(y + (y < 0 ? -0.5f : 0.5f)), -127, 127));
    }
    const int32_t bias = ann::query_bias(s.q8.data(), D);
    const int8_t* qv = s.q8.data();
    auto score = [&](uint32_t v) { return dot_(rows_ + size_t{v} * D, qv, bias, D); };
    auto prefetch = [&](uint32_t v) {
      const int8_t* r = rows_ + size_t{v} * D;
      for (size_t o = 0; o < D; o += 64) __builtin_prefetch(r + o);
      __builtin_prefetch(r + D - 1);
    };
    const size_t width = std::max(g.m0(), g.m()) + 1;
    s.buf.resize(width);
    s.fresh.resize(width);

    const uint32_t* ex = batch.exclude.data() + batch.exclude_offsets[q];
    const uint32_t* ex_end = batch.exclude.data() + batch.exclude_offsets[q + 1];
    const size_t n_ex = static_cast<size_t>(ex_end - ex);
    // Entry points: the query's excluded words (a word's own node, an analogy's or a sum's input
    // words: the query is made of their vectors, so they lie next to it and their links lead to its
    // neighbours at once); and HNSW's greedy descent through the upper layers from the top entry
    // when there are none or the nearest of them is not near the query (cosine of the float query
    // with its decoded row under kNearEntryCosine: words excluded for another reason).
    s.entries.clear();
    float near = -1.0f;
    for (const uint32_t* e = ex; e != ex_end; ++e)
      if (*e < n) {
        s.entries.push_back({score(*e), *e});
        near = std::max(near, entry_cosine(*e, s.x));
      }
    if (near < kNearEntryCosine) {  // also when there are none (near stays -1)
      GraphCand cur{score(g.entry()), g.entry()};
      for (uint32_t l = g.max_level(); l >= 1; --l)
        cur = ann::greedy(cur, [&](uint32_t v, uint32_t* o) { return acc.upper(v, l, o); }, score, s.buf.data());
      s.entries.push_back(cur);
    }
    // The beam's breadth (it may be under k: the rows rescored are then the best of every node
    // scored). Default: small when the query enters at its words and the graph keeps every node's
    // nearest words as links (they hold most of its answer: max(kDefaultGraphEfWords, k / 4)),
    // HNSW's usual breadth otherwise (max(kDefaultGraphEf, k)).
    const size_t def_ef = near >= kNearEntryCosine && g.keep_nearest() > 0
                              ? std::max<size_t>(kDefaultGraphEfWords, params.k / 4)
                              : std::max<size_t>(kDefaultGraphEf, params.k);
    const size_t ef = (params.ef ? size_t{params.ef} : def_ef) + n_ex;
    const size_t want = std::max(params.candidates, params.k) + n_ex;
    s.vis.begin(n);
    ann::beam(
        ef, s.entries, [&](uint32_t v, uint32_t* o) { return acc.links0(v, o); }, score, prefetch,
        [&](uint32_t v) {
          const uint8_t* l = acc.links0_address(v);
          __builtin_prefetch(l);
          __builtin_prefetch(l + g.m0() * g.link_bytes() - 1);
          __builtin_prefetch(acc.count0_address(v));
        },
        s.vis, s.top, s.cand, s.buf.data(), s.fresh.data(), want > ef ? &s.seen : nullptr);
    // The best max(candidates, k) (+ exclusions) by the int8 score, rescored exactly: of the ef the
    // beam kept when that is enough (they are the best ef of every node scored), else of all scored.
    std::vector<GraphCand>& pool = want > ef ? s.seen : s.top;
    const size_t c = std::min(pool.size(), want);
    std::partial_sort(pool.begin(), pool.begin() + static_cast<std::ptrdiff_t>(c), pool.end(), ann::nearer);
    for (size_t i = 0; i < c; ++i) prefetch(pool[i].id);
    s.row.resize(D);
    s.hits.clear();
    for (size_t i = 0; i < c; ++i) {
      const uint32_t id = pool[i].id;
      if (ex != ex_end && std::find(ex, ex_end, id) != ex_end) continue;
      const int8_t* r = rows_ + size_t{id} * D;
      for (size_t d = 0; d < D; ++d) s.row[d] = static_cast<float>(r[d]) * scales_[d];
      s.hits.push_back({id, rerank_score(s.row.data(), batch, q)});
    }
    const size_t m = std::min(params.k, s.hits.size());
    std::partial_sort(s.hits.begin(), s.hits.begin() + static_cast<std::ptrdiff_t>(m), s.hits.end(), better);
    std::copy_n(s.hits.begin(), m, out.hits.begin() + static_cast<std::ptrdiff_t>(q * params.k));
    out.count[q] = static_cast<uint32_t>(m);
  }

  // Cosine of the float query x with word id's decoded row.
  float entry_cosine(uint32_t id, const std::vector<float>& x) const {
    const int8_t* r = rows_ + size_t{id} * D_;
    float xr = 0, rr = 0, xx = 0;
    for (size_t d = 0; d < D_; ++d) {
      const float v = static_cast<float>(r[d]) * scales_[d];
      xr += x[d] * v;
      rr += v * v;
      xx += x[d] * x[d];
    }
    return rr > 0 && xx > 0 ? xr / std::sqrt(rr * xx) : 0.0f;
  }

  std::shared_ptr<const Index> index_;
  std::shared_ptr<const GraphIndex> graph_;
  std::shared_ptr<const Searcher> fallback_;
  int threads_ = 1;
  bool vnni_ = false;
  ann::DotI8 dot_ = nullptr;
  uint32_t D_ = 0;
  const int8_t* rows_ = nullptr;
  const float* scales_ = nullptr;
};

}  // namespace

std::shared_ptr<const Searcher> make_graph_searcher(std::shared_ptr<const Index> index, const SearcherOptions& opts,
                                                    std::shared_ptr<const GraphIndex> graph) {
  if (!index) throw Error("graph searcher: no index");
  const std::string where = index->path().empty() ? std::string("(in memory)") : index->path();
  if (index->rerank() != Rerank::Int8)
    throw Error("graph searcher: index " + where + " has no int8 rerank rows (rerank: " + rerank_name(index->rerank()) +
                ")");
  if (!graph) graph = graph_of(*index);
  if (graph->size() != index->size() || graph->dims() != index->float_dims())
    throw Error("graph searcher: the graph was built for another index");
  return std::make_shared<GraphSearcher>(std::move(index), std::move(graph), opts);
}

void register_graph_backend() {
  register_backend("graph", [](std::shared_ptr<const Index> index, const SearcherOptions& opts) {
    return make_graph_searcher(std::move(index), opts);
  });
}

}  // namespace igla
