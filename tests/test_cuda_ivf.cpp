// The CUDA IVF searcher ("cuda-ivf", include/igla/ivf.hpp) against the CPU IVF searcher: the same
// ids, score bits, order and counts at every nprobe (ternary answers, and after the rerank stage:
// on the GPU there, on the CPU here), with every list probed equal to the exact search; queries
// the tensor-core path does not take answered the same through the CPU route. Odd sizes. Skips,
// saying why, where no usable GPU is present (CI has none).
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "core/backends.hpp"
#include "igla/error.hpp"
#include "igla/ivf.hpp"
#include "igla/queries.hpp"
#include "igla/search.hpp"
#include "expect_results.hpp"
#include "test_util.hpp"

namespace igla {
namespace {

std::shared_ptr<const Index> odd_index(size_t n, uint32_t dims, uint64_t seed) {
  QuantParams q;
  q.rerank = Rerank::Int8;
  return std::make_shared<const Index>(Index::build(testing_util::clustered(n, dims, seed), q, true));
}

std::shared_ptr<const IvfIndex> odd_lists(const Index& ix, uint32_t lists) {
  IvfParams p;
  p.lists = lists;
  p.iterations = 6;
  return std::make_shared<const IvfIndex>(IvfIndex::build(ix, p));
}

bool gpu_or_skip_reason(std::string& why) { return cuda_available(&why); }

// Vocabulary words (each excluding itself, with a float form), raw vectors (no exclusions, no
// float form: the rerank stage passes them through) and a batch mixing both.
std::vector<QueryBatch> batches(const Index& ix, size_t n_words, size_t first) {
  std::vector<QueryBatch> out;
  QueryBuilder words(ix);
  for (size_t i = 0; i < n_words; ++i) words.word(static_cast<uint32_t>((first + i * 37) % ix.size()));
  out.push_back(words.take());
  QueryBuilder raw(ix);
  std::vector<int8_t> t(ix.dims());
  for (uint32_t q = 0; q < 29; ++q) {
    for (uint32_t d = 0; d < ix.dims(); ++d) t[d] = static_cast<int8_t>(int((q * 7 + d * 3) % 5) % 3 - 1);
    raw.trits(t);
  }
  out.push_back(raw.take());
  return out;
}

TEST(CudaIvf, MatchesTheCpuIvfSearcherAtEveryNprobe) {
  std::string why;
  if (!gpu_or_skip_reason(why)) GTEST_SKIP() << "CUDA backend not usable here: " << why;
  struct Shape {
    size_t n;
    uint32_t dims, lists;
  };
  for (const Shape sh : {Shape{2999, 100, 37}, Shape{1237, 64, 11}, Shape{517, 300, 5}}) {
    const auto ix = odd_index(sh.n, sh.dims, 11 + sh.n);
    const auto ivf = odd_lists(*ix, sh.lists);
    SearcherOptions o;
    o.cpu.threads = 2;
    const auto cpu = make_ivf_searcher(ix, o, ivf);
    const auto cpu_rerank = make_rerank_stage(cpu, ix, 2);
    const auto gpu = make_cuda_ivf_searcher(ix, o, ivf);
    SearcherOptions o8 = o;  // the rerank rows on the GPU as the index's int8 bytes
    o8.cuda.rerank_int8_rows = true;
    const auto gpu8 = make_cuda_ivf_searcher(ix, o8, ivf);
    ASSERT_TRUE(gpu->capabilities().reranks);
    EXPECT_FALSE(gpu->capabilities().exact);
    for (const QueryBatch& b : batches(*ix, 333, sh.n / 3))
      for (uint32_t nprobe : {1u, 3u, sh.lists / 2 + 1, sh.lists})
        for (size_t k : {size_t{1}, size_t{10}, size_t{25}})
          for (size_t limit : {size_t{0}, sh.n / 2 + 1}) {
            SearchParams p;
            p.k = k;
            p.nprobe = nprobe;
            p.limit = limit;
            const std::string what = "n=" + std::to_string(sh.n) + " dims=" + std::to_string(sh.dims) +
                                     " nprobe=" + std::to_string(nprobe) + " k=" + std::to_string(k) +
                                     " limit=" + std::to_string(limit) + " queries=" + std::to_string(b.size());
            p.candidates = 0;
            testing_util::expect_same_results(cpu->search(b, p), gpu->search(b, p), what + " ternary");
            p.candidates = 50;
            const SearchResults want = cpu_rerank->search(b, p);
            testing_util::expect_same_results(want, gpu->search(b, p), what + " reranked");
            testing_util::expect_same_results(want, gpu8->search(b, p), what + " reranked, int8 rows");
          }
    // The lists were scanned on the GPU, not on the CPU route.
    const std::string report = cuda_report(*gpu);
    EXPECT_NE(report.find("cuda-ivf"), std::string::npos) << report;
    EXPECT_EQ(report.find(" 0 batches on the GPU"), std::string::npos) << report;
  }
}

TEST(CudaIvf, EveryListProbedEqualsTheExactSearch) {
  std::string why;
  if (!gpu_or_skip_reason(why)) GTEST_SKIP() << "CUDA backend not usable here: " << why;
  const auto ix = odd_index(1999, 100, 5);
  const auto ivf = odd_lists(*ix, 13);
  SearcherOptions o;
  o.cpu.threads = 2;
  o.rerank = false;
  const auto exact = make_searcher(ix, o);  // the CPU flat scan
  const auto exact_rerank = make_rerank_stage(exact, ix, 2);
  const auto gpu = make_cuda_ivf_searcher(ix, o, ivf);
  for (const QueryBatch& b : batches(*ix, 201, 3))
    for (size_t k : {size_t{1}, size_t{10}, size_t{31}})
      for (uint32_t nprobe : {13u, ~0u}) {
        SearchParams p;
        p.k = k;
        p.nprobe = nprobe;
        p.candidates = 0;
        const std::string what = "k=" + std::to_string(k) + " nprobe=" + std::to_string(nprobe);
        testing_util::expect_same_results(exact->search(b, p), gpu->search(b, p), what + " ternary");
        p.candidates = 40;
        testing_util::expect_same_results(exact_rerank->search(b, p), gpu->search(b, p), what + " reranked");
      }
}

// One query at a time gives the batch's answers (a query's lists and hits do not depend on the
// rest of its batch).
TEST(CudaIvf, OneQueryAndBatchAgree) {
  std::string why;
  if (!gpu_or_skip_reason(why)) GTEST_SKIP() << "CUDA backend not usable here: " << why;
  const auto ix = odd_index(1501, 100, 9);
  const auto ivf = odd_lists(*ix, 17);
  const auto gpu = make_cuda_ivf_searcher(ix, SearcherOptions{}, ivf);
  SearchParams p;
  p.nprobe = 4;
  testing_util::expect_one_at_a_time_as_batched(*gpu, *gpu, *ix, testing_util::strided_words(41, 13), p);
}

// Multi-term queries, 3CosMul and k + candidates past the kernel lists take the CPU route: the
// same answers as the CPU IVF searcher + rerank stage.
TEST(CudaIvf, QueriesOffTheTensorCorePathMatchTheCpu) {
  std::string why;
  if (!gpu_or_skip_reason(why)) GTEST_SKIP() << "CUDA backend not usable here: " << why;
  const auto ix = odd_index(1777, 100, 3);
  const auto ivf = odd_lists(*ix, 19);
  SearcherOptions o;
  o.cpu.threads = 2;
  const auto cpu = make_rerank_stage(make_ivf_searcher(ix, o, ivf), ix, 2);
  const auto gpu = make_cuda_ivf_searcher(ix, o, ivf);
  QueryBuilder add(*ix), mul(*ix, Combine::CosMul), words(*ix);
  for (uint32_t i = 0; i < 23; ++i) {
    add.analogy(i, i + 100, i + 200, AnalogyMode::Add);
    mul.analogy(i, i + 100, i + 200, AnalogyMode::Mul);
    words.word(i * 3);
  }
  for (const QueryBatch* b : {&add.batch(), &mul.batch(), &words.batch()}) {
    SearchParams p;
    p.nprobe = 5;
    p.candidates = 100;  // past the kernel's 64-key lists
    testing_util::expect_same_results(cpu->search(*b, p), gpu->search(*b, p), "candidates 100");
    p.candidates = 20;
    testing_util::expect_same_results(cpu->search(*b, p), gpu->search(*b, p), "candidates 20");
  }
}

// The registry's "cuda-ivf" backend; without a GPU it refuses with the reason.
TEST(CudaIvf, RegistryBackendOrAClearRefusal) {
  register_ivf_backend();
  const auto ix = odd_index(700, 64, 1);
  SearcherOptions o;
  o.backend = "cuda-ivf";
  std::string why;
  if (!cuda_available(&why)) {
    try {
      (void)make_searcher(ix, o);
      FAIL() << "made a cuda-ivf searcher without a usable GPU";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("cuda-ivf"), std::string::npos) << e.what();
    }
    return;
  }
  const auto s = make_searcher(ix, o);
  EXPECT_EQ(s->name().rfind("cuda-ivf/", 0), 0u) << s->name();
  EXPECT_TRUE(s->capabilities().reranks);
  QueryBuilder b(*ix);
  b.word(3);
  SearchParams p;
  p.nprobe = 2;
  const SearchResults r = s->search(b.batch(), p);
  ASSERT_EQ(r.count[0], 10u);
  EXPECT_NE(r.of(0)[0].id, 3u);
}

}  // namespace
}  // namespace igla
