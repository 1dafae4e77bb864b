// Every kernel (scalar, AVX2, AVX-512, NEON: whichever this CPU runs) and thread count must give the
// int8 reference's exact scores and order, on random data of odd sizes, many ties included.
#include <gtest/gtest.h>

#include <algorithm>

#include "core/backends.hpp"
#include "igla/search.hpp"
#include "kernels/kernel.hpp"
#include "test_util.hpp"

using namespace igla;

namespace {

struct RandomCodes {
  uint32_t dims;
  size_t n;
  std::vector<int8_t> trits;
  std::shared_ptr<const Index> index;  // exactly these trits
};

RandomCodes make_codes(size_t n, uint32_t dims, std::mt19937_64& rng) {
  RandomCodes r{dims, n, igla::testing_util::random_trits(n * dims, rng, 0.55), nullptr};
  if (n > 3) std::fill(r.trits.begin() + 2 * dims, r.trits.begin() + 3 * dims, 0);  // an all-zero word
  r.index = index_of_trits(r.trits, n, dims);
  return r;
}

std::shared_ptr<const Searcher> cpu_searcher(const RandomCodes& rc, int threads = 0, const std::string& kernel = "") {
  SearcherOptions o;
  o.cpu = {.threads = threads, .kernel = kernel};
  return make_searcher(rc.index, o);
}

void expect_same(const SearchResults& ref, const SearchResults& got, const std::string& what) {
  ASSERT_EQ(ref.count, got.count) << what;
  for (size_t q = 0; q < ref.count.size(); ++q) {
    auto a = ref.of(q), b = got.of(q);
    for (size_t i = 0; i < a.size(); ++i) {
      ASSERT_EQ(a[i].id, b[i].id) << what << " query " << q << " rank " << i;
      ASSERT_EQ(a[i].score, b[i].score) << what << " query " << q << " rank " << i;  // bitwise equal floats
    }
  }
}

std::vector<std::string> kernel_names() {
  std::vector<std::string> names;
  for (auto* k : kernels::all_kernels())
    if (k->supported()) names.push_back(k->name);
  return names;
}

QueryBatch random_batch(uint32_t dims, size_t n_words, size_t nq, Combine c, size_t terms, std::mt19937_64& rng,
                        bool with_exclusions) {
  QueryBatch b(dims, c);
  std::uniform_real_distribution<float> wdist(-1.5f, 1.5f);
  for (size_t q = 0; q < nq; ++q) {
    std::vector<std::vector<int8_t>> ts;
    std::vector<std::span<const int8_t>> spans;
    std::vector<float> w;
    for (size_t t = 0; t < terms; ++t) ts.push_back(igla::testing_util::random_trits(dims, rng, 0.5));
    for (auto& t : ts) spans.emplace_back(t), w.push_back(c == Combine::CosMul ? std::abs(wdist(rng)) : wdist(rng));
    std::vector<uint32_t> excl;
    if (with_exclusions)
      for (size_t e = 0; e < 3; ++e) excl.push_back(static_cast<uint32_t>(rng() % n_words));
    b.add_query(spans, w, excl);
  }
  return b;
}

}  // namespace

TEST(Search, EveryKernelMatchesReferenceOnOddSizes) {
  std::mt19937_64 rng(42);
  // Plane widths with a compile-time loop in the kernels and ones without (150: 5 x 32 bits; 2100:
  // more plane words than the AVX-512 kernel keeps on its stack).
  const uint32_t dims_list[] = {1, 63, 64, 65, 100, 150, 300, 301, 2100};
  const size_t vocab_list[] = {1, 7, 8, 9, 100, 1001, 10007};
  for (uint32_t dims : dims_list) {
    for (size_t n : vocab_list) {
      if (n == 10007 && dims > 100 && dims != 301) continue;  // keep the suite quick; 301 covers the big case
      if (dims > 301 && n > 1001) continue;
      const RandomCodes rc = make_codes(n, dims, rng);
      const size_t nq = n > 1000 ? 9 : 13;
      // Two batches: the first takes the fused (register-scored) path of nearest-word search; the
      // second holds an all-zero query (every score 0, order by id: weight 0, which sends its whole
      // group down the general two-pass path).
      QueryBatch fused(dims), general(dims);
      for (size_t q = 0; q < nq; ++q) {
        auto t = igla::testing_util::random_trits(dims, rng, 0.5);
        if (std::all_of(t.begin(), t.end(), [](int8_t x) { return x == 0; })) t[0] = 1;
        const uint32_t ex[1] = {static_cast<uint32_t>(q % n)};
        const auto excl = q % 2 ? std::span<const uint32_t>(ex) : std::span<const uint32_t>();
        fused.add_nearest(t, excl);
        if (q == 0) t.assign(dims, 0);
        general.add_nearest(t, excl);
      }
      // 63 and 64: with an exclusion, the last that the AVX-512 kernel's own lists hold (k +
      // exclusions <= 64, all four registers of a list) and one past it.
      for (size_t k : {size_t{1}, size_t{10}, size_t{63}, size_t{64}, n + 5})
        for (const QueryBatch* batch : {&fused, &general}) {
          const SearchParams p{.k = k};
          const SearchResults ref = reference_search(rc.trits, n, dims, *batch, p);
          for (const auto& kname : kernel_names())
            for (int threads : {1, 2}) {
              auto s = cpu_searcher(rc, threads, kname);
              SearchResults got;
              s->search(*batch, p, got);
              expect_same(ref, got, kname + (batch == &fused ? " fused" : " general") + " dims=" + std::to_string(dims) +
                                        " n=" + std::to_string(n) + " k=" + std::to_string(k) +
                                        " threads=" + std::to_string(threads));
            }
        }
    }
  }
}

TEST(Search, MultiTermSumAndCosMulMatchReference) {
  std::mt19937_64 rng(7);
  // Sum of 1-4 terms goes through the AVX-512 kernel's exact in-register scores when k + the 3
  // exclusions fit its lists (k = 10, 61: 64 slots), 5 terms and k = 62 do not; 150 dims has no
  // compile-time plane loop.
  const std::pair<Combine, size_t> shapes[] = {{Combine::Sum, 1}, {Combine::Sum, 2}, {Combine::Sum, 3},
                                               {Combine::Sum, 4}, {Combine::Sum, 5}, {Combine::CosMul, 3}};
  for (uint32_t dims : {65u, 150u, 300u}) {
    const size_t n = 3001;
    const RandomCodes rc = make_codes(n, dims, rng);
    for (const auto& [c, terms] : shapes) {
      const QueryBatch batch = random_batch(dims, n, 57, c, terms, rng, true);
      for (const auto& [limit, k] : {std::pair<size_t, size_t>{0, 10}, {0, 61}, {0, 62}, {1234, 10}, {1234, 61}}) {
        const SearchParams p{.k = k, .limit = limit};
        const SearchResults ref = reference_search(rc.trits, n, dims, batch, p);
        for (const auto& kname : kernel_names()) {
          auto s = cpu_searcher(rc, 2, kname);
          SearchResults got;
          s->search(batch, p, got);
          expect_same(ref, got, kname + (c == Combine::Sum ? " sum" : " cosmul") + " terms=" + std::to_string(terms) +
                                    " dims=" + std::to_string(dims) + " k=" + std::to_string(k) +
                                    " limit=" + std::to_string(limit));
          for (size_t q = 0; q < batch.size(); ++q)
            for (const Hit& h : got.of(q)) {
              ASSERT_LT(h.id, limit ? limit : n);
              for (uint32_t e = batch.exclude_offsets[q]; e < batch.exclude_offsets[q + 1]; ++e)
                ASSERT_NE(h.id, batch.exclude[e]);
            }
        }
      }
    }
  }
}

TEST(Search, LargeBatchWithManyGroupsMatchesReference) {
  std::mt19937_64 rng(9);
  const uint32_t dims = 100;
  const size_t n = 2049;
  const RandomCodes rc = make_codes(n, dims, rng);
  const QueryBatch batch = random_batch(dims, n, 301, Combine::Sum, 1, rng, false);
  const SearchParams p{.k = 7};
  const SearchResults ref = reference_search(rc.trits, n, dims, batch, p);
  for (const auto& kname : kernel_names()) {
    auto s = cpu_searcher(rc, 2, kname);
    SearchResults got;
    s->search(batch, p, got);
    expect_same(ref, got, kname + " batch=301");
  }
}

TEST(Search, ReferenceScoresAreCosines) {
  // Independent of every kernel: a hand-made case. q = (+,+,0,-), words: identical, opposite, orthogonal.
  const std::vector<int8_t> vocab = {1, 1, 0, -1, /**/ -1, -1, 0, 1, /**/ 0, 0, 1, 0, /**/ 1, 1, 0, 0};
  QueryBatch b(4);
  const std::vector<int8_t> q = {1, 1, 0, -1};
  b.add_nearest(q);
  const auto r = reference_search(vocab, 4, 4, b, {.k = 4});
  ASSERT_EQ(r.count[0], 4u);
  EXPECT_EQ(r.of(0)[0].id, 0u);
  EXPECT_NEAR(r.of(0)[0].score, 1.0f, 1e-6);
  EXPECT_EQ(r.of(0)[1].id, 3u);
  EXPECT_NEAR(r.of(0)[1].score, 2.0f / std::sqrt(6.0f), 1e-6);
  EXPECT_EQ(r.of(0)[2].id, 2u);
  EXPECT_EQ(r.of(0)[3].id, 1u);
  EXPECT_NEAR(r.of(0)[3].score, -1.0f, 1e-6);
}

TEST(Search, KernelSelection) {
  EXPECT_STREQ(kernels::select_kernel("scalar").name, "scalar");
  EXPECT_THROW(kernels::select_kernel("sse9"), Error);
  const auto& best = kernels::select_kernel("");
  EXPECT_TRUE(best.supported());
}

// The build holds its architecture's kernels (CMakeLists.txt picks the folders by target), best
// first, the portable one last; the baseline kernel of the architecture always runs.
TEST(Search, TheTargetsKernelsAreBuilt) {
  std::vector<std::string> names;
  for (const auto* k : kernels::all_kernels()) names.push_back(k->name);
  ASSERT_FALSE(names.empty());
  EXPECT_EQ(names.back(), "scalar");
  auto has = [&](const char* n) { return std::find(names.begin(), names.end(), n) != names.end(); };
#if defined(__aarch64__)
  EXPECT_TRUE(has("neon") && has("neon-dotprod"));
  EXPECT_TRUE(kernels::select_kernel("neon").supported());  // NEON is part of AArch64
  EXPECT_FALSE(has("avx2") || has("avx512"));
#elif defined(__x86_64__)
  EXPECT_TRUE(has("avx2") && has("avx512"));
  EXPECT_FALSE(has("neon") || has("neon-dotprod"));
#endif
}

TEST(Search, DimensionMismatchIsAnError) {
  std::mt19937_64 rng(3);
  const RandomCodes rc = make_codes(10, 64, rng);
  auto s = cpu_searcher(rc);
  QueryBatch b(65);
  b.add_nearest(std::vector<int8_t>(65, 1));
  SearchResults r;
  EXPECT_THROW(s->search(b, {}, r), Error);
  QueryBatch b2(64);
  EXPECT_THROW(b2.add_nearest(std::vector<int8_t>(63, 1)), Error);
}
