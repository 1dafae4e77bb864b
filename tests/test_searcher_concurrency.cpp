// Searcher v2's contract: search() is const and reentrant. 8 threads run many mixed searches
// (nearest, 3CosAdd, 3CosMul, most_similar; rerank on and off; batches of 1 and many) on one
// searcher at once, and every answer equals the serial run's, bit for bit. Also run under TSan.
#include <gtest/gtest.h>

#include <thread>

#include "igla/engine.hpp"
#include "test_util.hpp"

using namespace igla;

namespace {

struct Job {
  int kind;  // 0 nearest, 1 add, 2 mul, 3 most_similar
  size_t candidates, n;
  uint32_t seed;
};

SearchResults run(const Engine& e, const Job& j) {
  std::vector<uint32_t> ids;
  for (size_t i = 0; i < j.n; ++i) ids.push_back((j.seed * 131 + static_cast<uint32_t>(i) * 17) % 997);
  const SearchParams p{.k = 7, .candidates = j.candidates};
  if (j.kind == 0) return e.nearest(ids, p);
  if (j.kind == 3) {
    std::vector<PosNeg> q;
    for (size_t i = 0; i + 2 < ids.size() || q.empty(); ++i) q.push_back({{ids[i % ids.size()], 3}, {5}});
    return e.most_similar(q, p);
  }
  std::vector<std::array<uint32_t, 3>> abc;
  for (size_t i = 0; i < ids.size(); ++i) abc.push_back({ids[i], (ids[i] + 1) % 997, (ids[i] + 2) % 997});
  return e.analogies(abc, j.kind == 1 ? AnalogyMode::Add : AnalogyMode::Mul, p);
}

}  // namespace

TEST(SearcherConcurrency, ManyThreadsOneSearcherEqualSerial) {
  const FloatVectors v = igla::testing_util::random_vectors(997, 40, 99);
  QuantParams q;
  q.method = Quantization::Rotated;
  q.rerank = Rerank::Int8;
  const auto ix = std::make_shared<const Index>(Index::build(v, q, false));
  const Engine e(ix);
  std::vector<Job> jobs;
  for (uint32_t i = 0; i < 48; ++i) jobs.push_back({static_cast<int>(i % 4), i % 3 == 0 ? size_t{0} : size_t{50}, i % 5 == 0 ? size_t{1} : size_t{23}, i});
  std::vector<SearchResults> serial;
  for (const Job& j : jobs) serial.push_back(run(e, j));
  std::vector<std::vector<SearchResults>> got(8);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 3; ++rep)
        for (size_t i = 0; i < jobs.size(); ++i) got[t].push_back(run(e, jobs[(i + t * 7) % jobs.size()]));
    });
  for (auto& th : threads) th.join();
  for (size_t t = 0; t < 8; ++t)
    for (size_t i = 0; i < got[t].size(); ++i) {
      const SearchResults& want = serial[(i % jobs.size() + t * 7) % jobs.size()];
      ASSERT_EQ(want.count, got[t][i].count) << "thread " << t << " call " << i;
      ASSERT_EQ(want.hits, got[t][i].hits) << "thread " << t << " call " << i;
    }
}

TEST(SearcherConcurrency, RerankStageIsTheRerankOfTheBaseCandidates) {
  const FloatVectors v = igla::testing_util::random_vectors(501, 24, 7);
  QuantParams q;
  q.rerank = Rerank::F16;
  const auto ix = std::make_shared<const Index>(Index::build(v, q, false));
  SearcherOptions plain;
  plain.rerank = false;
  const auto base = make_searcher(ix, plain), staged = make_searcher(ix);
  EXPECT_TRUE(staged->capabilities().reranks);
  EXPECT_FALSE(base->capabilities().reranks);
  QueryBuilder qb(*ix);
  for (uint32_t w = 0; w < 40; ++w) qb.word(w);
  const SearchResults cand = base->search(qb.batch(), {.k = 30});
  const SearchResults r = staged->search(qb.batch(), {.k = 5, .candidates = 30});
  for (size_t i = 0; i < 40; ++i) {
    // Every reranked hit is one of the base's 30 candidates, in rerank order.
    for (const Hit& h : r.of(i)) {
      bool in = false;
      for (const Hit& c : cand.of(i)) in = in || c.id == h.id;
      EXPECT_TRUE(in) << "query " << i;
    }
    for (size_t j = 1; j < r.of(i).size(); ++j) EXPECT_TRUE(better(r.of(i)[j - 1], r.of(i)[j]) || r.of(i)[j - 1] == r.of(i)[j]);
  }
  // candidates = 0: the ternary answer, unchanged.
  EXPECT_EQ(staged->search(qb.batch(), {.k = 5, .candidates = 0}).hits, base->search(qb.batch(), {.k = 5}).hits);
}
