// The rerank stage (FAISS's IndexRefine shape): any searcher's top C ternary candidates per query,
// rescored on the index's rerank rows with float math (rerank_query), in parallel on the shared
// thread pool. Queries without a float form and calls with candidates = 0 pass through.
#include <algorithm>

#include "core/rerank.hpp"
#include "cpu/thread_pool.hpp"
#include "igla/error.hpp"
#include "igla/search.hpp"

namespace igla {

namespace {

class RerankStage final : public Searcher {
 public:
  RerankStage(std::shared_ptr<const Searcher> base, std::shared_ptr<const Index> index, int threads)
      : base_(std::move(base)), index_(std::move(index)), threads_(threads) {}

  std::string name() const override { return base_->name() + " + rerank " + rerank_name(index_->rerank()); }

  Capabilities capabilities() const override {
    Capabilities c = base_->capabilities();
    c.reranks = true;
    return c;
  }

  void search(const QueryBatch& batch, const SearchParams& p, SearchResults& out) const override {
    if (p.candidates == 0 || p.k == 0 || !batch.any_float()) {
      base_->search(batch, p, out);
      return;
    }
    search_then_rescore(
        *base_, batch, p, threads_,
        [&](size_t q, std::span<const Hit> c, std::vector<Hit>& best) { rerank_query(*index_, batch, q, c, p.k, best); },
        out);
  }

 private:
  std::shared_ptr<const Searcher> base_;
  std::shared_ptr<const Index> index_;
  int threads_;
};

}  // namespace

void search_then_rescore(const Searcher& base, const QueryBatch& batch, const SearchParams& p, int threads,
                         const RescoreFn& rescore, SearchResults& out) {
  SearchParams bp = p;
  bp.k = std::max(p.candidates, p.k);
  const SearchResults cand = base.search(batch, bp);
  const size_t nq = batch.size();
  out.reset(nq, p.k);
  // Rescoring costs ~C x float dims multiply-adds per term and query: chunks of 16 queries.
  constexpr size_t kChunk = 16;
  ThreadPool::shared().run(
      static_cast<uint32_t>((nq + kChunk - 1) / kChunk),
      [&](uint32_t task, int) {
        thread_local std::vector<Hit> best;
        for (size_t q = task * kChunk; q < std::min(nq, (task + 1) * kChunk); ++q)
          rescore_or_keep(batch, q, cand.of(q), rescore, best, out);
      },
      threads);
}

std::shared_ptr<const Searcher> make_rerank_stage(std::shared_ptr<const Searcher> base,
                                                  std::shared_ptr<const Index> index, int threads) {
  if (!base || !index) throw Error("make_rerank_stage: no searcher or no index");
  if (index->rerank() == Rerank::None)
    throw Error("index " + (index->path().empty() ? std::string("(in memory)") : index->path()) +
                " has no rerank rows");
  return std::make_shared<RerankStage>(std::move(base), std::move(index), threads);
}

}  // namespace igla
