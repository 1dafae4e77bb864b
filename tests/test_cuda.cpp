// The CUDA backend against the plain reference: same ids, same float scores to the bit, same
// order, same counts, on random data of odd sizes, for every CUDA path (mma, popc, sort) and the
// automatic choice. Skips, saying why, where no usable GPU is present (CI has none).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <chrono>
#include <vector>

#include "core/backends.hpp"
#include "core/rerank.hpp"
#include "igla/index.hpp"
#include "igla/search.hpp"
#include "igla/ternary.hpp"
#include "expect_results.hpp"
#include "test_util.hpp"

namespace {

using namespace igla;

// A vocabulary of random trits with the blocked layout of ternary.hpp, built here independently
// of the library's packer.
struct Vocab {
  uint32_t dims = 0, W = 0;
  size_t n = 0;
  std::vector<int8_t> trits;  // n * dims
  std::vector<uint64_t> codes;
  std::vector<float> norms, inv;
  CodesView view() const {
    CodesView v;
    v.dims = dims;
    v.W = W;
    v.n_words = n;
    v.codes = codes.data();
    v.norms = norms.data();
    v.inv_norms = inv.data();
    return v;
  }
};

void encode_vocab(Vocab& v);

Vocab make_vocab(size_t n, uint32_t dims, std::mt19937_64& rng, double p_nz = 0.69) {
  Vocab v;
  v.dims = dims;
  v.W = plane_words(dims);
  v.n = n;
  v.trits.resize(n * dims);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (size_t i = 0; i < n; ++i) {
    const int kind = static_cast<int>(rng() % 16);
    for (uint32_t d = 0; d < dims; ++d) {
      int8_t t = 0;
      if (kind == 0) t = 0;                                               // all-zero word
      else if (kind == 1 && i > 0) t = v.trits[(i - 1) * dims + d];       // duplicate: ties
      else if (u(rng) < p_nz) t = (rng() & 1) ? 1 : -1;
      v.trits[i * dims + d] = t;
    }
  }
  encode_vocab(v);
  return v;
}

// The codes, norms and inverse norms of v's trits (after make_vocab, or after editing its trits).
void encode_vocab(Vocab& v) {
  const size_t n = v.n;
  const uint32_t dims = v.dims;
  const size_t np = padded_words(n);
  v.codes.assign(code_words(n, dims), 0);
  v.norms.assign(np, 0.0f);
  v.inv.assign(np, 0.0f);
  for (size_t i = 0; i < n; ++i) {
    uint32_t nnz = 0;
    for (uint32_t d = 0; d < dims; ++d) {
      const int8_t t = v.trits[i * dims + d];
      if (!t) continue;
      ++nnz;
      const size_t base = ((i / 8) * v.W + d / 64) * 16 + i % 8;
      v.codes[base] |= uint64_t{1} << (d % 64);
      if (t < 0) v.codes[base + 8] |= uint64_t{1} << (d % 64);
    }
    v.norms[i] = std::sqrt(static_cast<float>(nnz));
    v.inv[i] = inv_norm_from_nnz(nnz);
  }
}

std::vector<int8_t> random_query(const Vocab& v, std::mt19937_64& rng) {
  std::vector<int8_t> q(v.dims);
  if (v.n && rng() % 3 == 0) {  // a vocabulary word: exact score 1 and its duplicates tie
    const size_t w = rng() % v.n;
    std::memcpy(q.data(), v.trits.data() + w * v.dims, v.dims);
    return q;
  }
  for (auto& t : q) t = static_cast<int8_t>(static_cast<int>(rng() % 3) - 1);
  return q;
}

float inv_of(const std::vector<int8_t>& q) {
  uint32_t nnz = 0;
  for (int8_t t : q) nnz += t != 0;
  return inv_norm_from_nnz(nnz);
}

void expect_same(const SearchResults& want, const SearchResults& got, const std::string& what) {
  igla::testing_util::expect_same_results(want, got, what);
}

// Each searcher of ss answers b as the reference does; label(c) names searcher c in a failure.
template <class Label>
void expect_searchers_match_reference(const Vocab& v, const QueryBatch& b, const SearchParams& p,
                                      const std::vector<std::shared_ptr<const Searcher>>& ss, Label label) {
  const SearchResults want = reference_search(v.trits, v.n, v.dims, b, p);
  for (size_t c = 0; c < ss.size(); ++c) {
    SearchResults got;
    ss[c]->search(b, p, got);
    expect_same(want, got, label(c));
    if (::testing::Test::HasFatalFailure()) return;
  }
}

const char* kPaths[] = {"", "mma", "popc", "mt", "sort"};

class Cuda : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!cuda_available(&why)) GTEST_SKIP() << "CUDA backend not usable here: " << why;
  }
  // One searcher per path (automatic choice, mma, popc, sort) over v.
  void use(const Vocab& v, CudaOptions base = {}) {
    searchers_.clear();
    for (const char* path : kPaths) {
      CudaOptions o = base;
      o.path = path;
      searchers_.push_back(make_cuda_searcher_for_codes(v.view(), o));
    }
  }
  void check_all(const Vocab& v, const QueryBatch& b, const SearchParams& p, const std::string& what) {
    const SearchResults want = reference_search(v.trits, v.n, v.dims, b, p);
    for (size_t i = 0; i < searchers_.size(); ++i) {
      SearchResults got;
      searchers_[i]->search(b, p, got);
      expect_same(want, got, what + " path=" + (kPaths[i][0] ? kPaths[i] : "auto"));
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
  std::vector<std::shared_ptr<const Searcher>> searchers_;
};

TEST_F(Cuda, NearestOddSizes) {
  std::mt19937_64 rng(42);
  for (uint32_t dims : {1u, 63u, 64u, 65u, 100u, 300u, 301u}) {
    for (size_t n : {size_t{1}, size_t{7}, size_t{129}, size_t{1000}, size_t{10007}}) {
      const Vocab v = make_vocab(n, dims, rng);
      use(v);
      for (size_t nq : {size_t{1}, size_t{5}, size_t{130}}) {
        QueryBatch b(dims);
        for (size_t i = 0; i < nq; ++i) {
          auto q = random_query(v, rng);
          b.add_query(std::vector<std::span<const int8_t>>{q}, std::vector<float>{inv_of(q)});
        }
        for (size_t k : {size_t{1}, size_t{10}, size_t{32}, size_t{33}, size_t{53}, size_t{64}, size_t{65}, n + 5}) {
          SearchParams p;
          p.k = k;
          check_all(v, b, p,
                    "dims=" + std::to_string(dims) + " n=" + std::to_string(n) + " nq=" + std::to_string(nq) +
                        " k=" + std::to_string(k));
          if (HasFatalFailure()) return;
        }
      }
    }
  }
}

// Small batches over a large vocabulary with long lists: the popc path then splits the vocabulary
// into up to 2 x SMs parts, and its merge lists (splits x K keys) take more than the 48 KB of
// shared memory a kernel gets by default (a batch of 2 with K = 51 over 341K words failed to
// launch before the limit was raised, and poisoned the context; run 36).
TEST_F(Cuda, SmallBatchesLongListsLargeVocabulary) {
  std::mt19937_64 rng(11);
  const Vocab v = make_vocab(150000, 100, rng);
  use(v);
  for (size_t nq : {size_t{1}, size_t{2}, size_t{3}}) {
    QueryBatch b(100);
    for (size_t i = 0; i < nq; ++i) {
      auto q = random_query(v, rng);
      b.add_query(std::vector<std::span<const int8_t>>{q}, std::vector<float>{inv_of(q)});
    }
    for (size_t k : {size_t{51}, size_t{64}}) {
      SearchParams p;
      p.k = k;
      check_all(v, b, p, "n=150000 nq=" + std::to_string(nq) + " k=" + std::to_string(k));
      if (HasFatalFailure()) return;
    }
  }
}

TEST_F(Cuda, LimitExclusionsAndOddWeights) {
  std::mt19937_64 rng(7);
  for (uint32_t dims : {65u, 300u}) {
    const Vocab v = make_vocab(5003, dims, rng);
    use(v);
    QueryBatch b(dims);
    for (size_t i = 0; i < 300; ++i) {
      auto q = random_query(v, rng);
      std::vector<uint32_t> ex;
      for (size_t e = 0; e < i % 4; ++e) ex.push_back(static_cast<uint32_t>(rng() % v.n));
      float w = inv_of(q);
      if (i % 17 == 3) w = -w;       // negative weight: ranks by the lowest dot
      if (i % 29 == 5) w = 0.0f;     // every score 0: lowest ids
      if (i % 31 == 7) w = 1.0f;     // raw dot * inv
      b.add_query(std::vector<std::span<const int8_t>>{q}, std::vector<float>{w}, ex);
    }
    for (size_t limit : {size_t{0}, size_t{1}, size_t{77}, size_t{4096}}) {
      for (size_t k : {size_t{3}, size_t{10}, size_t{29}, size_t{40}, size_t{50}, size_t{61}}) {
        SearchParams p;
        p.k = k;
        p.limit = limit;
        check_all(v, b, p, "dims=" + std::to_string(dims) + " limit=" + std::to_string(limit) + " k=" + std::to_string(k));
        if (HasFatalFailure()) return;
      }
    }
  }
}

// One-term queries of vocabulary rows for the mma path's list tests: 0-3 exclusions each, the
// weight 1 / norm, negated for every 13th, 0 for every 11th (every score 0: all words tie).
QueryBatch one_term_queries(const Vocab& v, size_t n, std::mt19937_64& rng) {
  QueryBatch b(v.dims);
  for (size_t i = 0; i < n; ++i) {
    auto q = random_query(v, rng);
    std::vector<uint32_t> ex;
    for (size_t e = 0; e < i % 4; ++e) ex.push_back(static_cast<uint32_t>(rng() % v.n));
    float w = inv_of(q);
    if (i % 13 == 3) w = -w;
    if (i % 11 == 5) w = 0.0f;
    b.add_query(std::vector<std::span<const int8_t>>{q}, std::vector<float>{w}, ex);
  }
  return b;
}

// The mma path's append lists (kernels.hpp: K sorted keys + slack slots appended unsorted, the
// warp selects a row when a drain might overflow it): forced on every K (append_k 1, K of 1 and 2
// too) with the smallest slack (one queue's 12 keys: a select at nearly every drain) and a large
// one, past 32 keys with the default slack, eager selects (after a drain, rows holding 1 or 5
// unsorted keys), and the default (sorted lists) alongside; K at the edges (31..33, 63, 64 =
// k + exclusions), odd sizes, duplicate words (ties), weight 0 (every score 0: all words pass, ranked
// by id), negative weights, limits, exclusions; every answer against the reference.
TEST_F(Cuda, MmaAppendLists) {
  std::mt19937_64 rng(2024);
  struct Mode {
    int append_k, slack, eager;
  };
  for (const uint32_t dims : {100u, 129u}) {
    const Vocab v = make_vocab(dims == 100 ? 20011 : 3331, dims, rng, 0.5);
    const QueryBatch b = one_term_queries(v, 301, rng);
    for (const Mode m : {Mode{1, 12, 0}, Mode{1, 200, 0}, Mode{33, -1, 0}, Mode{1, -1, 1}, Mode{33, 48, 5}, Mode{-1, -1, 0}}) {
      CudaOptions o;
      o.path = "mma";
      o.mma_append_k = m.append_k;
      o.mma_append_slack = m.slack;
      o.mma_append_eager = m.eager;
      auto s = make_cuda_searcher_for_codes(v.view(), o);
      for (const size_t limit : {size_t{0}, size_t{1000}}) {
        for (const size_t k : {size_t{1}, size_t{2}, size_t{11}, size_t{28}, size_t{30}, size_t{33}, size_t{50},
                               size_t{60}, size_t{61}}) {
          SearchParams p;
          p.k = k;
          p.limit = limit;
          const std::string what = "dims=" + std::to_string(dims) + " append_k=" + std::to_string(m.append_k) +
                                   " slack=" + std::to_string(m.slack) + " eager=" + std::to_string(m.eager) + " limit=" + std::to_string(limit) +
                                   " k=" + std::to_string(k);
          expect_same(reference_search(v.trits, v.n, v.dims, b, p), s->search(b, p), what);
          if (HasFatalFailure()) return;
        }
      }
    }
  }
}

// The mma path's sampled start (long lists begin from the K-th key of a sample of the words, the
// first ids and / or ids spread over the rest): samples smaller than K (no bound), larger than the
// vocabulary, every list length (min_k 1) and from 33 on; with append lists and the default lists;
// duplicate words (ties), weight 0 (every score 0), negative weights, limits, exclusions.
TEST_F(Cuda, MmaSampledStart) {
  std::mt19937_64 rng(77);
  struct Mode {
    uint32_t first, spread;
    int min_k, append_k;
    uint32_t rank = 0;  // > 0: a guessed start (the sample's rank-th key); short lists refilled
  };
  for (const uint32_t dims : {100u, 129u}) {
    const Vocab v = make_vocab(dims == 100 ? 20011 : 3331, dims, rng, 0.5);
    const QueryBatch b = one_term_queries(v, 301, rng);
    // Guesses: rank 1 over a sample of every word (the top key itself: every query with K > 1
    // refilled), rank 2-3 over spread samples (some queries refilled, most not), a tiny sample,
    // append lists, and a rank past K (the K-th: no guess).
    for (const Mode m : {Mode{0, 4096, 1, -1}, Mode{256, 0, 1, -1}, Mode{3, 5, 1, -1}, Mode{1000, 1000, 33, -1},
                         Mode{0, 100000, 1, -1}, Mode{500, 2000, 1, 33}, Mode{0, 100000, 1, -1, 1},
                         Mode{0, 2048, 1, -1, 3}, Mode{0, 512, 1, -1, 2}, Mode{3, 5, 1, -1, 2},
                         Mode{500, 2000, 1, 33, 2}, Mode{0, 2048, 33, -1, 40}}) {
      CudaOptions o;
      o.path = "mma";
      o.mma_sample = m.first;
      o.mma_sample_spread = m.spread;
      o.mma_sample_min_k = m.min_k;
      o.mma_append_k = m.append_k;
      o.mma_sample_rank = m.rank;
      auto s = make_cuda_searcher_for_codes(v.view(), o);
      for (const size_t limit : {size_t{0}, size_t{1000}}) {
        for (const size_t k : {size_t{1}, size_t{11}, size_t{30}, size_t{33}, size_t{50}, size_t{61}}) {
          SearchParams p;
          p.k = k;
          p.limit = limit;
          const std::string what = "dims=" + std::to_string(dims) + " first=" + std::to_string(m.first) +
                                   " spread=" + std::to_string(m.spread) + " min_k=" + std::to_string(m.min_k) +
                                   " append_k=" + std::to_string(m.append_k) + " rank=" + std::to_string(m.rank) +
                                   " limit=" + std::to_string(limit) +
                                   " k=" + std::to_string(k);
          expect_same(reference_search(v.trits, v.n, v.dims, b, p), s->search(b, p), what);
          if (HasFatalFailure()) return;
        }
      }
    }
  }
}

// More short queries than refill_short_lists has slots (512 a chunk): rank 1 over a sample of every
// word leaves every query with K > 1 short; those past the slots are scanned in full by the merge.
// Other dims: the bound pass and the refill at 1, 4 and 5 words a plane (64, 256, 300 dims), and
// samples of every word (rank 1) and of 1,024 spread words (rank 2).
TEST_F(Cuda, MmaGuessedStartManyShortQueries) {
  std::mt19937_64 rng(78);
  for (const auto& [dims, n_q] : {std::pair{129u, 1100}, std::pair{64u, 301}, std::pair{256u, 301},
                                  std::pair{300u, 301}}) {
    const Vocab v = make_vocab(3331, dims, rng, 0.5);
    const QueryBatch b = one_term_queries(v, n_q, rng);
    for (const auto& [spread, rank] : {std::pair{100000u, 1u}, std::pair{1024u, 2u}}) {
      for (const bool lanes : {false, true}) {  // the bound pass: a warp list a query, per-lane lists (NOTES v21)
        CudaOptions o;
        o.path = "mma";
        o.mma_sample_spread = spread;
        o.mma_sample_min_k = 1;
        o.mma_sample_rank = rank;
        o.mma_bound_lanes = lanes;
        auto s = make_cuda_searcher_for_codes(v.view(), o);
        for (const size_t k : {size_t{1}, size_t{11}, size_t{50}}) {
          SearchParams p;
          p.k = k;
          expect_same(reference_search(v.trits, v.n, v.dims, b, p), s->search(b, p),
                      "dims=" + std::to_string(dims) + " spread=" + std::to_string(spread) +
                          " lanes=" + std::to_string(lanes) + " k=" + std::to_string(k));
          if (HasFatalFailure()) return;
        }
      }
    }
  }
}

TEST_F(Cuda, MultiTermSumAndCosMul) {
  std::mt19937_64 rng(99);
  for (uint32_t dims : {1u, 64u, 100u, 301u}) {
    const Vocab v = make_vocab(3001, dims, rng);
    use(v);
    for (Combine c : {Combine::Sum, Combine::CosMul}) {
      QueryBatch b(dims, c);
      for (size_t i = 0; i < 150; ++i) {
        auto a = random_query(v, rng), bb = random_query(v, rng), cc = random_query(v, rng);
        std::vector<std::span<const int8_t>> terms;
        std::vector<float> w;
        if (c == Combine::CosMul) {
          terms = {a, bb, cc};
          w = {inv_of(a), inv_of(bb), inv_of(cc)};
        } else {  // 3CosAdd b - a + c, and some queries of 1, 2 or 5 terms
          const size_t nt = (i % 5 == 0) ? 1 + i % 3 : (i % 7 == 0 ? 5 : 3);
          terms = {bb, a, cc, a, bb};
          terms.resize(nt);
          w = {inv_of(bb), -inv_of(a), inv_of(cc), 0.5f, -0.25f};
          w.resize(nt);
        }
        std::vector<uint32_t> ex = {static_cast<uint32_t>(rng() % v.n), static_cast<uint32_t>(rng() % v.n),
                                    static_cast<uint32_t>(rng() % v.n)};
        b.add_query(terms, w, ex);
      }
      for (size_t k : {size_t{1}, size_t{10}, size_t{40}, size_t{50}}) {
        SearchParams p;
        p.k = k;
        p.limit = (k == 10 || k == 50) ? 2000 : 0;
        check_all(v, b, p,
                  std::string(c == Combine::Sum ? "sum" : "cosmul") + " dims=" + std::to_string(dims) +
                      " k=" + std::to_string(k));
        if (HasFatalFailure()) return;
      }
    }
  }
}

// The mt path (several-term Sum queries on the tensor cores) on odd sizes: 1-4 terms, odd
// weights, exclusions, limits; with a tiny candidate cap (most queries overflow and are rescanned
// in full), a sample shorter than K (no bound: every word a candidate), samples of first words,
// of words spread over the rest, of both, and one spread over more words than there are; the scan's
// prefilter on (every configuration but the last) and off.
TEST_F(Cuda, MultiTermTensorCorePath) {
  std::mt19937_64 rng(1234);
  for (uint32_t dims : {7u, 100u, 128u}) {
    for (size_t n : {size_t{1}, size_t{129}, size_t{20011}}) {
      if (n == 1 && dims != 100) continue;
      const Vocab v = make_vocab(n, dims, rng);
      QueryBatch b(dims);
      for (size_t i = 0; i < 333; ++i) {
        auto a = random_query(v, rng), bb = random_query(v, rng), cc = random_query(v, rng), dd = random_query(v, rng);
        const size_t nt = 1 + (i * 7 + 3) % 4;
        std::vector<std::span<const int8_t>> terms = {bb, a, cc, dd};
        std::vector<float> w = {inv_of(bb), -inv_of(a), inv_of(cc), i % 5 == 0 ? 0.0f : -0.375f};
        if (i % 11 == 2) w[0] = -w[0];
        terms.resize(nt);
        w.resize(nt);
        std::vector<uint32_t> ex;
        for (size_t e = 0; e < i % 4; ++e) ex.push_back(static_cast<uint32_t>(rng() % v.n));
        b.add_query(terms, w, ex);
      }
      struct Config {
        uint32_t cap, sample, spread;
        bool prefilter = true;
      };
      const std::vector<Config> configs = {{8192, 4096, 0}, {16, 4096, 0},   {8192, 1, 0},   {64, 300, 0},
                                           {8192, 0, 4096}, {8192, 100, 200}, {64, 7, 30000}, {8192, 4096, 0, false}};
      std::vector<std::shared_ptr<const Searcher>> ss;
      for (const Config& cf : configs) {
        CudaOptions o;
        o.path = "mt";
        o.mt_cap = cf.cap;
        o.mt_sample = cf.sample;
        o.mt_sample_spread = cf.spread;
        o.mt_prefilter = cf.prefilter;
        ss.push_back(make_cuda_searcher_for_codes(v.view(), o));
      }
      for (size_t k : {size_t{1}, size_t{10}, size_t{50}, size_t{61}}) {
        for (size_t limit : {size_t{0}, size_t{77}, size_t{9000}}) {
          SearchParams p;
          p.k = k;
          p.limit = limit;
          expect_searchers_match_reference(v, b, p, ss, [&](size_t c) {
            return "mt dims=" + std::to_string(dims) + " n=" + std::to_string(n) +
                   " cap=" + std::to_string(configs[c].cap) + " sample=" + std::to_string(configs[c].sample) +
                   " spread=" + std::to_string(configs[c].spread) +
                   " prefilter=" + std::to_string(configs[c].prefilter) + " k=" + std::to_string(k) +
                   " limit=" + std::to_string(limit);
          });
          if (HasFatalFailure()) return;
        }
      }
    }
  }
}

// The mt path's shared-terms scan (CudaOptions::mt_shared_terms): queries drawn from a pool of
// terms, as analogy batches repeat their words, so each chunk has few distinct terms; words of all
// +1 and all -1 among the vocabulary and the pool make dots of +-dims (127: the int8 limit; a
// chunk with a term of 128 non-zeros falls back to the per-query scan). Pools past 512 distinct
// terms fall back too; mode 1 takes the shared scan only where terms repeat 4 times. Every answer
// equals the reference.
TEST_F(Cuda, MultiTermSharedTerms) {
  std::mt19937_64 rng(4321);
  for (uint32_t dims : {7u, 100u, 127u, 128u}) {
    for (size_t n : {size_t{1}, size_t{129}, size_t{20011}}) {
      if ((n == 1 && dims != 100) || (n == 20011 && dims != 100 && dims != 127)) continue;
      Vocab v = make_vocab(n, dims, rng);
      if (n > 2) {  // extremes: word 1 all +1, word 2 all -1
        for (uint32_t d = 0; d < dims; ++d) v.trits[dims + d] = 1, v.trits[2 * dims + d] = -1;
        encode_vocab(v);
      }
      struct Config {
        int shared;
        uint32_t cap;
        bool prefilter;
        bool shared_bound = true;
      };
      // Configs 0 and 4 differ only in the bound pass (over the distinct terms, or per query).
      const std::vector<Config> configs = {
          {2, 8192, true}, {1, 8192, true}, {2, 16, true}, {2, 8192, false}, {2, 8192, true, false}};
      std::vector<std::shared_ptr<const Searcher>> ss;
      for (const Config& cf : configs) {
        CudaOptions o;
        o.path = "mt";
        o.mt_shared_terms = cf.shared;
        o.mt_cap = cf.cap;
        o.mt_prefilter = cf.prefilter;
        o.mt_shared_bound = cf.shared_bound;
        o.stats = true;
        ss.push_back(make_cuda_searcher_for_codes(v.view(), o));
      }
      // The shared-terms scan ran where it could: the pools of 1 (no dense term) and 23 (dims <= 127) in every mode.
      auto shared_chunks = [](const Searcher& s) {
        const std::string r = cuda_report(s);
        const size_t at = r.find("by the shared-terms scan ");
        return at == std::string::npos ? size_t{0} : std::stoul(r.substr(at + 25));
      };
      for (size_t pool_n : {size_t{1}, size_t{23}, size_t{300}, size_t{700}}) {
        std::vector<std::vector<int8_t>> pool;
        for (size_t i = 0; i < pool_n; ++i) {
          if (i == 1 && n > 2) pool.emplace_back(dims, int8_t{1});
          else if (i == 2 && n > 2) pool.emplace_back(dims, int8_t{-1});
          else pool.push_back(random_query(v, rng));
        }
        QueryBatch b(dims);
        const size_t n_q = n <= 129 ? 4500 : 601;  // 4,500: two chunks of the mt path
        for (size_t i = 0; i < n_q; ++i) {
          const size_t nt = 1 + (i * 7 + 3) % 4;
          std::vector<std::span<const int8_t>> terms;
          std::vector<float> w;
          for (size_t t = 0; t < nt; ++t) {
            const auto& term = pool[rng() % pool_n];
            terms.emplace_back(term);
            w.push_back(t == 1 ? -inv_of(term) : t == 3 ? (i % 5 == 0 ? 0.0f : -0.375f) : inv_of(term));
          }
          if (i % 11 == 2) w[0] = -w[0];
          std::vector<uint32_t> ex;
          for (size_t e = 0; e < i % 4; ++e) ex.push_back(static_cast<uint32_t>(rng() % v.n));
          b.add_query(terms, w, ex);
        }
        for (const auto& kl : std::vector<std::pair<size_t, size_t>>{{1, 0}, {10, 0}, {61, 0}, {10, 77}}) {
          // Plain variables, not a structured binding: clang 14 cannot capture bindings in a lambda.
          const size_t k = kl.first, limit = kl.second;
          SearchParams p;
          p.k = k;
          p.limit = limit;
          expect_searchers_match_reference(v, b, p, ss, [&](size_t c) {
            return "shared terms dims=" + std::to_string(dims) + " n=" + std::to_string(n) +
                   " pool=" + std::to_string(pool_n) + " mode=" + std::to_string(configs[c].shared) +
                   " cap=" + std::to_string(configs[c].cap) + " prefilter=" + std::to_string(configs[c].prefilter) +
                   " shared bound=" + std::to_string(configs[c].shared_bound) + " k=" + std::to_string(k) +
                   " limit=" + std::to_string(limit);
          });
          if (HasFatalFailure()) return;
        }
      }
      for (size_t c = 0; c < configs.size(); ++c)
        EXPECT_GT(shared_chunks(*ss[c]), 0u) << "dims=" << dims << " n=" << n << " config " << c;
      // The same bounds either way, so the same candidates past them (a bound too high would drop
      // keys of the answer, too low would keep more).
      auto candidates = [](const Searcher& s) {
        const std::string r = cuda_report(s);
        const size_t at = r.find("mt candidates ");
        return at == std::string::npos ? ~0ull : std::stoull(r.substr(at + 14));
      };
      EXPECT_NE(candidates(*ss[0]), ~0ull) << cuda_report(*ss[0]);
      EXPECT_EQ(candidates(*ss[0]), candidates(*ss[4])) << "dims=" << dims << " n=" << n;
    }
  }
}

// The one-query path replays a cached CUDA graph: run many single queries of changing shapes
// (k, exclusions) through one searcher and check each.
TEST_F(Cuda, OneQueryGraphReplays) {
  std::mt19937_64 rng(5);
  const Vocab v = make_vocab(20011, 300, rng);
  auto s = make_cuda_searcher_for_codes(v.view(), CudaOptions{});
  for (int i = 0; i < 60; ++i) {
    auto q = random_query(v, rng);
    std::vector<uint32_t> ex;
    if (i % 3 == 1) ex.push_back(static_cast<uint32_t>(rng() % v.n));
    QueryBatch b(300);
    b.add_nearest(q, ex);
    SearchParams p;
    p.k = (i % 2) ? 10 : 5;
    const SearchResults want = reference_search(v.trits, v.n, v.dims, b, p);
    SearchResults got;
    s->search(b, p, got);
    expect_same(want, got, "single query " + std::to_string(i));
    if (HasFatalFailure()) return;
  }
}

// One query at a time through one searcher, every query shape: one-term nearest (the one-launch
// kernel's specialised form), several terms and 3CosMul (its generic form), limits, exclusions,
// k past the vocabulary, and queries too wide for the launch parameters (the graph route), with
// batches through the same searcher in between.
// Split sizes (CudaOptions::single_split): automatic (one pass of 4 words a thread), 256 (one word
// a thread), 2048 (several passes, warp lists). k up to 50 with exclusions: lists past 32 keys.
TEST_F(Cuda, OneQueryShapes) {
  std::mt19937_64 rng(11);
  for (const char* split : {"", "256", "2048"})
  for (uint32_t dims : {64u, 100u, 300u, 1400u}) {
    if (split[0] && dims != 300) continue;
    const Vocab v = make_vocab(dims == 1400 ? 3001 : 30011, dims, rng);
    CudaOptions o;
    o.single_split = static_cast<uint32_t>(std::atoi(split));
    use(v, o);
    for (int i = 0; i < 24; ++i) {
      const Combine c = i % 4 == 3 ? Combine::CosMul : Combine::Sum;
      QueryBatch b(dims, c);
      for (int rep = 0; rep < (i % 8 == 7 ? 3 : 1); ++rep) {  // some batches of 3
        auto a = random_query(v, rng), bb = random_query(v, rng), cc = random_query(v, rng);
        std::vector<std::span<const int8_t>> terms{a};
        std::vector<float> w{inv_of(a)};
        if (c == Combine::CosMul || i % 4 == 1) {
          terms = {a, bb, cc};
          w = {inv_of(a), inv_of(bb), inv_of(cc)};
          if (c == Combine::Sum) w[0] = -w[0];
        } else if (i % 4 == 2) {
          terms = {a, bb, cc, a, bb};
          w = {inv_of(a), -inv_of(bb), inv_of(cc), 0.5f, -0.25f};
        }
        std::vector<uint32_t> ex;
        for (int e = 0; e < i % 3; ++e) ex.push_back(static_cast<uint32_t>(rng() % v.n));
        b.add_query(terms, w, ex);
      }
      SearchParams p;
      p.k = i % 5 == 4 ? 31 : i % 5 == 2 ? 50 : (i % 2 ? 10 : 1);
      p.limit = i % 6 == 5 ? 777 : 0;
      check_all(v, b, p, "split=" + std::string(split) + " dims=" + std::to_string(dims) + " query " + std::to_string(i));
      if (HasFatalFailure()) return;
    }
  }
}

// One query with lists past 32 keys and equal scores (weight 0: every score 0, ranked by id) over
// many splits (a split of 256 words asked for: single_plan lengthens it so that the last CTA's
// merge fits shared memory), on the default split, and on the launch route.
TEST_F(Cuda, OneQueryLongListsWithTies) {
  std::mt19937_64 rng(41);
  const Vocab v = make_vocab(30011, 300, rng);
  for (uint32_t split : {256u, 0u}) {
    for (const char* route : {"", "launch"}) {
      CudaOptions o;
      o.single_split = split;
      o.single = route;
      auto s = make_cuda_searcher_for_codes(v.view(), o);
      for (int i = 0; i < 8; ++i) {
        auto q = random_query(v, rng);
        std::vector<uint32_t> ex;
        for (int e = 0; e < i % 4; ++e) ex.push_back(static_cast<uint32_t>(rng() % v.n));
        const float w = i % 2 ? 0.0f : inv_of(q);
        QueryBatch b(v.dims);
        b.add_query(std::vector<std::span<const int8_t>>{q}, std::vector<float>{w}, ex);
        SearchParams p;
        p.k = i % 3 == 0 ? 61 : 50;
        const SearchResults want = reference_search(v.trits, v.n, v.dims, b, p);
        expect_same(want, s->search(b, p),
                    "split=" + std::to_string(split) + " route=" + route + " query " + std::to_string(i));
        if (HasFatalFailure()) return;
      }
    }
  }
}

// One query with lists past 32 keys in the prefix mode (CudaOptions::single_prefix: each CTA keeps
// c keys, the last selects the K best of their union and rescans the words of any CTA whose c-th
// key is among them). c = 1 and 2 leave CTAs holding more of the K best than they kept on almost
// every query (rescans), c = 8 and 32 rarely; duplicate words (ties, neighbouring ids: one CTA's
// 8-word group), equal scores (weight 0: ranked by id, the K best all in the first CTAs), odd
// limits, exclusions, one to three terms and 3CosMul, on the persistent and the launch route,
// against the reference; 0 (the old merge) alongside.
TEST_F(Cuda, OneQueryPrefixMode) {
  std::mt19937_64 rng(97);
  for (const uint32_t dims : {64u, 300u}) {
    const Vocab v = make_vocab(dims == 64 ? 70001 : 30011, dims, rng);
    for (const int c : {1, 2, 8, 32, 0}) {
      for (const char* route : {"", "launch"}) {
        if (route[0] && c != 8 && c != 1) continue;
        CudaOptions o;
        o.single_prefix = c;
        o.single = route;
        auto s = make_cuda_searcher_for_codes(v.view(), o);
        for (int i = 0; i < 14; ++i) {
          const Combine comb = i % 4 == 3 ? Combine::CosMul : Combine::Sum;
          QueryBatch b(v.dims, comb);
          auto a = random_query(v, rng), bb = random_query(v, rng), cc = random_query(v, rng);
          std::vector<std::span<const int8_t>> terms{a};
          std::vector<float> w{i % 5 == 0 ? 0.0f : inv_of(a)};
          if (comb == Combine::CosMul || i % 4 == 1) {
            terms = {a, bb, cc};
            w = {inv_of(a), inv_of(bb), inv_of(cc)};
            if (comb == Combine::Sum) w[0] = -w[0];
          }
          std::vector<uint32_t> ex;
          for (int e = 0; e < i % 4; ++e) ex.push_back(static_cast<uint32_t>(rng() % (e == 0 ? 64 : v.n)));
          b.add_query(terms, w, ex);
          SearchParams p;
          p.k = i % 3 == 0 ? 61 : i % 3 == 1 ? 50 : 33;
          p.limit = i % 6 == 5 ? static_cast<uint32_t>(v.n * 3 / 4 + 13) : 0;
          const SearchResults want = reference_search(v.trits, v.n, v.dims, b, p);
          expect_same(want, s->search(b, p),
                      "dims=" + std::to_string(dims) + " prefix=" + std::to_string(c) + " route=" + route + " query " +
                          std::to_string(i));
          if (HasFatalFailure()) return;
        }
      }
    }
  }
}

// The persistent one-query kernel (the default one-query route): single queries of changing
// shapes (one-term nearest, 3-term Sum, 3CosMul, k, limit, exclusions: each a restart of the
// kernel's form or grid) interleaved with batches through the same searcher (each stops the
// kernel), with a second searcher taking turns (one persistent kernel a device, shared by both),
// searcher destruction and recreation, idle exits of the kernel (short idle
// limit) with the host restarting it, and an idle exit racing a query (the host restarts it on
// the same message). Every result against the reference.
TEST_F(Cuda, PersistentOneQuery) {
  std::mt19937_64 rng(23);
  const Vocab v = make_vocab(30011, 300, rng);
  const Vocab v2 = make_vocab(20011, 100, rng);
  auto make = [](const Vocab& voc, CudaOptions o = {}) { return make_cuda_searcher_for_codes(voc.view(), o); };
  auto one = [&](const Searcher& s, const Vocab& voc, int i, const std::string& what) {
    const Combine c = i % 7 == 6 ? Combine::CosMul : Combine::Sum;
    QueryBatch b(voc.dims, c);
    auto a = random_query(voc, rng), bb = random_query(voc, rng), cc = random_query(voc, rng);
    std::vector<std::span<const int8_t>> terms{a};
    std::vector<float> w{inv_of(a)};
    if (c == Combine::CosMul || i % 7 == 5) {
      terms = {a, bb, cc};
      w = {inv_of(a), inv_of(bb), inv_of(cc)};
      if (c == Combine::Sum) w[1] = -w[1];
    }
    std::vector<uint32_t> ex;
    for (int e = 0; e < i % 3; ++e) ex.push_back(static_cast<uint32_t>(rng() % voc.n));
    b.add_query(terms, w, ex);
    SearchParams p;
    p.k = i % 5 == 4 ? 31 : i % 5 == 2 ? 50 : 10;
    p.limit = i % 11 == 10 ? 4097 : 0;
    const SearchResults want = reference_search(voc.trits, voc.n, voc.dims, b, p);
    SearchResults got;
    s.search(b, p, got);
    expect_same(want, got, what + " query " + std::to_string(i));
  };
  auto batch = [&](const Searcher& s, const Vocab& voc, size_t nq, const std::string& what) {
    QueryBatch b(voc.dims);
    for (size_t i = 0; i < nq; ++i) {
      auto q = random_query(voc, rng);
      b.add_query(std::vector<std::span<const int8_t>>{q}, std::vector<float>{inv_of(q)});
    }
    SearchParams p;
    p.k = 10;
    const SearchResults want = reference_search(voc.trits, voc.n, voc.dims, b, p);
    SearchResults got;
    s.search(b, p, got);
    expect_same(want, got, what + " batch of " + std::to_string(nq));
  };

  auto s1 = make(v);
  for (int i = 0; i < 40; ++i) {  // runs of queries of one shape (the kernel stays), shape changes
    one(*s1, v, i % 4 == 0 ? 0 : i, "s1");
    if (HasFatalFailure()) return;
  }
  for (int round = 0; round < 3; ++round) {
    batch(*s1, v, round == 1 ? 512 : 5, "s1");  // popc, mma, popc
    if (HasFatalFailure()) return;
    for (int i = 0; i < 5; ++i) {
      one(*s1, v, 100 + i, "s1 after batch");
      if (HasFatalFailure()) return;
    }
  }
  {
    auto s2 = make(v2);  // two searchers taking turns
    for (int i = 0; i < 12; ++i) {
      one(*s2, v2, i, "s2");
      if (HasFatalFailure()) return;
      one(*s1, v, i, "s1 with s2");
      if (HasFatalFailure()) return;
      if (i % 4 == 3) batch(*s2, v2, 7, "s2");
      if (HasFatalFailure()) return;
    }
    one(*s2, v2, 0, "s2 last");  // s2 goes with its kernel running
    if (HasFatalFailure()) return;
  }
  for (int i = 0; i < 5; ++i) {
    one(*s1, v, i, "s1 after s2 went");
    if (HasFatalFailure()) return;
  }
  s1.reset();  // destroyed with its kernel running
  s1 = make(v);
  for (int i = 0; i < 5; ++i) {
    one(*s1, v, i, "s1 recreated");
    if (HasFatalFailure()) return;
  }
  // Idle exits: the kernel leaves after 30 ms; the host restarts it before a query after 15 ms
  // (sleeps of 50 ms), or, told not to (host limit 1 min), finds it gone while waiting for the
  // answer and restarts it on the pending message.
  for (const char* host_ms : {"", "60000"}) {
    CudaOptions o;
    o.persist_idle_ms = 30;
    if (host_ms[0]) o.persist_host_idle_ms = std::atof(host_ms);
    s1.reset();
    s1 = make(v, o);
    for (int i = 0; i < 6; ++i) {
      one(*s1, v, i % 2, std::string("idle exits host_ms=") + host_ms);
      if (HasFatalFailure()) return;
      if (i % 2) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  // The one-launch route still answers (IGLA_CUDA_SINGLE=launch) next to a persistent searcher.
  CudaOptions launch;
  launch.single = "launch";
  auto s3 = make(v, launch);
  for (int i = 0; i < 6; ++i) {
    one(i % 2 ? *s3 : *s1, v, i, i % 2 ? "launch route" : "persistent next to launch");
    if (HasFatalFailure()) return;
  }
}

// The count after `label` in a cuda_report line ("... 12 stops ..." -> 12 for "stops").
unsigned long long report_count(const std::string& report, const std::string& label) {
  const size_t at = report.find(" " + label);
  if (at == std::string::npos) return ~0ull;
  size_t b = report.rfind(' ', at - 1);
  return std::stoull(report.substr(b + 1, at - b - 1));
}

// An in-memory index of random float vectors (rotated codes + rerank rows of `kind`).
std::shared_ptr<const Index> rerank_index(size_t n, uint32_t dims, Rerank kind, uint64_t seed) {
  const FloatVectors fv = testing_util::random_vectors(n, dims, seed);
  QuantParams q;
  q.method = Quantization::Rotated;
  q.threshold_factor = default_threshold_factor(Quantization::Rotated);
  q.rerank = kind;
  return std::make_shared<const Index>(Index::build(fv, q, false));
}

// Queries with a float form made of vocabulary words' vectors: nearest (1 term), 3CosAdd (3 terms,
// exclusions), 3CosMul, and some without a float form (pass-through).
QueryBatch word_queries(const Index& ix, const FloatVectors& fv, Combine c, size_t nq, std::mt19937_64& rng) {
  QueryBatch b(ix.dims(), c);
  for (size_t i = 0; i < nq; ++i) {
    const size_t nt = c == Combine::CosMul ? 3 : (i % 3 == 0 ? 1 : 3);
    std::vector<std::vector<int8_t>> tr;
    std::vector<std::span<const float>> fl;
    std::vector<float> w, fw;
    std::vector<uint32_t> ex;
    for (size_t t = 0; t < nt; ++t) {
      const uint32_t id = static_cast<uint32_t>(rng() % ix.size());
      tr.push_back(ix.trits(id));
      fl.push_back(fv.row(id));
      uint32_t nnz = 0;
      for (int8_t x : tr.back()) nnz += x != 0;
      const float sign = (c == Combine::Sum && t == 1) ? -1.0f : 1.0f;
      w.push_back(sign * inv_norm_from_nnz(nnz));
      fw.push_back(c == Combine::CosMul ? 1.0f : sign);
      ex.push_back(id);
    }
    std::vector<std::span<const int8_t>> terms(tr.begin(), tr.end());
    if (i % 7 == 6) b.add_query(terms, w, ex);  // no float form
    else b.add_query(terms, w, fl, fw, ex);
  }
  return b;
}

// The CPU answer: the exact ternary top-C without exclusions, rescored by rerank_query (the rerank
// stage's arithmetic), queries without a float form passed through.
SearchResults cpu_rerank(const Index& ix, const QueryBatch& b, const SearchParams& p) {
  std::vector<int8_t> vocab;
  for (size_t i = 0; i < ix.size(); ++i) {
    const auto t = ix.trits(i);
    vocab.insert(vocab.end(), t.begin(), t.end());
  }
  SearchParams pc = p;
  pc.k = std::max(p.candidates, p.k);
  const SearchResults cand = reference_search(vocab, ix.size(), ix.dims(), b, pc);
  if (p.candidates == 0) return cand;
  SearchResults out;
  out.reset(b.size(), p.k);
  std::vector<Hit> best;
  for (size_t q = 0; q < b.size(); ++q) {
    const auto c = cand.of(q);
    if (b.has_float[q]) rerank_query(ix, b, q, c, p.k, best);
    else best.assign(c.begin(), c.begin() + static_cast<std::ptrdiff_t>(std::min(p.k, c.size())));
    std::copy(best.begin(), best.end(), out.hits.begin() + static_cast<std::ptrdiff_t>(q * p.k));
    out.count[q] = static_cast<uint32_t>(best.size());
  }
  return out;
}

// Rerank on the device: bit for bit the CPU rerank of the exact candidates, int8 and float16
// rows, odd float dims (the fdot tail), nearest / 3CosAdd / 3CosMul, batches (device rerank on
// each path) and single queries (host rerank of the one-query kernel's candidates). Each with the
// rows on the device as floats and as the index's int8 bytes (CudaOptions::rerank_int8_rows; a
// float16 index keeps float rows either way).
TEST_F(Cuda, RerankOnDeviceMatchesCpu) {
  std::mt19937_64 rng(31);
  for (Rerank kind : {Rerank::Int8, Rerank::F16}) {
    for (uint32_t fdims : {100u, 37u}) {
      const uint64_t seed = 77 + fdims;
      auto ix = rerank_index(4099, fdims, kind, seed);
      const FloatVectors fv = testing_util::random_vectors(4099, fdims, seed);
      for (size_t run = 0; run < 2 * std::size(kPaths); ++run) {
        const char* path = kPaths[run / 2];
        const bool int8_rows = run % 2 == 1;
        SearcherOptions o;
        o.backend = "cuda";
        o.cuda.path = path;
        o.cuda.rerank_int8_rows = int8_rows;
        auto s = make_cuda_searcher(ix, o);
        ASSERT_TRUE(s->capabilities().reranks);
        EXPECT_GE(s->capabilities().max_fast_k, size_t{64});
        for (Combine c : {Combine::Sum, Combine::CosMul}) {
          for (size_t nq : {size_t{1}, size_t{3}, size_t{200}}) {
            const QueryBatch b = word_queries(*ix, fv, c, nq, rng);
            for (size_t cands : {size_t{0}, size_t{5}, size_t{50}, size_t{61}}) {
              SearchParams p;
              p.k = 10;
              p.candidates = cands;
              const SearchResults want = cpu_rerank(*ix, b, p);
              SearchResults got;
              s->search(b, p, got);
              expect_same(want, got,
                          std::string("rerank ") + rerank_name(kind) + " fdims=" + std::to_string(fdims) + " path=" +
                              (path[0] ? path : "auto") + (int8_rows ? " int8 rows" : " float rows") +
                              (c == Combine::Sum ? " sum" : " cosmul") +
                              " nq=" + std::to_string(nq) + " candidates=" + std::to_string(cands));
              if (HasFatalFailure()) return;
            }
          }
        }
      }
    }
  }
}

// The int8 rows' 16-byte loads and shuffles (rerank.cu, Int8Row) at float dims where the bytes fall
// differently: 1 and 5 (tail only), 8, 129 (its tail in a second 128-byte pass), 200 and 300 (two
// and three passes, tails of 0 and 4). Bit for bit the CPU rerank, Sum and 3CosMul.
TEST_F(Cuda, RerankInt8RowsOddDims) {
  std::mt19937_64 rng(41);
  for (uint32_t fdims : {1u, 5u, 8u, 129u, 200u, 300u}) {
    const uint64_t seed = 5 + fdims;
    auto ix = rerank_index(1031, fdims, Rerank::Int8, seed);
    const FloatVectors fv = testing_util::random_vectors(1031, fdims, seed);
    SearcherOptions o;
    o.backend = "cuda";
    o.cuda.rerank_int8_rows = true;
    auto s = make_cuda_searcher(ix, o);
    for (Combine c : {Combine::Sum, Combine::CosMul}) {
      const QueryBatch b = word_queries(*ix, fv, c, 300, rng);
      for (size_t cands : {size_t{7}, size_t{50}}) {
        SearchParams p;
        p.k = 10;
        p.candidates = cands;
        expect_same(cpu_rerank(*ix, b, p), s->search(b, p),
                    "int8 rows fdims=" + std::to_string(fdims) + (c == Combine::Sum ? " sum" : " cosmul") +
                        " candidates=" + std::to_string(cands));
        if (HasFatalFailure()) return;
      }
    }
  }
}

// One device copy per index per GPU: a second searcher over the index reuses the first's copy
// (the derived() cache is filled), and making it does not stop the device's persistent one-query
// kernel (the kernel is the device's; the report counts its stops).
TEST_F(Cuda, SearchersShareDeviceCopiesAndKernel) {
  std::mt19937_64 rng(3);
  auto ix = rerank_index(3001, 64, Rerank::Int8, 5);
  SearcherOptions o;
  o.backend = "cuda";
  o.cuda.rerank_int8_rows = false;
  auto s1 = make_cuda_searcher(ix, o);
  bool made = false;
  auto probe = [&] {
    made = true;
    return std::shared_ptr<const void>();
  };
  ix->derived("cuda/0/codes", probe);
  ix->derived("cuda/0/rerank-rows", probe);
  EXPECT_FALSE(made) << "the searcher's device copies are not in the index's derived() cache";
  o.cuda.rerank_int8_rows = true;  // the int8 form is a copy of its own, made beside the float one
  auto s8 = make_cuda_searcher(ix, o);
  ix->derived("cuda/0/rerank-rows-int8", probe);
  EXPECT_FALSE(made) << "the int8 rows are not in the index's derived() cache under their own key";
  const FloatVectors fv = testing_util::random_vectors(3001, 64, 5);
  const QueryBatch one = word_queries(*ix, fv, Combine::Sum, 1, rng);
  SearchParams p;
  s1->search(one, p);  // starts the persistent kernel
  const auto stops = report_count(cuda_report(*s1), "stops");
  auto s2 = make_cuda_searcher(ix, o);
  EXPECT_EQ(stops, report_count(cuda_report(*s1), "stops")) << cuda_report(*s1);
  expect_same(s1->search(one, p), s2->search(one, p), "second searcher over one index");
}

// search() is const and reentrant: 6 threads x mixed searches (batches, single queries, rerank on
// and off) on one searcher give the answers of a serial run.
TEST_F(Cuda, ConcurrentSearchesMatchSerial) {
  std::mt19937_64 rng(17);
  auto ix = rerank_index(5003, 100, Rerank::Int8, 9);
  const FloatVectors fv = testing_util::random_vectors(5003, 100, 9);
  SearcherOptions o;
  o.backend = "cuda";
  auto s = make_cuda_searcher(ix, o);
  std::vector<QueryBatch> batches;
  std::vector<SearchParams> params;
  for (int i = 0; i < 24; ++i) {
    batches.push_back(word_queries(*ix, fv, i % 5 == 4 ? Combine::CosMul : Combine::Sum, i % 3 == 0 ? 1 : 64 + i, rng));
    SearchParams p;
    p.k = 1 + i % 12;
    p.candidates = i % 4 == 3 ? 0 : 50;
    params.push_back(p);
  }
  std::vector<SearchResults> serial;
  for (size_t i = 0; i < batches.size(); ++i) serial.push_back(s->search(batches[i], params[i]));
  std::vector<std::vector<SearchResults>> got(6);
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t)
    threads.emplace_back([&, t] {
      for (int r = 0; r < 3; ++r)
        for (size_t i = 0; i < batches.size(); ++i) got[t].push_back(s->search(batches[(i + t) % batches.size()], params[(i + t) % batches.size()]));
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < 6; ++t)
    for (size_t j = 0; j < got[t].size(); ++j) {
      const size_t i = (j % batches.size() + t) % batches.size();
      expect_same(serial[i], got[t][j], "thread " + std::to_string(t) + " search " + std::to_string(j));
      if (HasFatalFailure()) return;
    }
}

TEST(CudaAvailability, SaysWhy) {
  std::string why;
  if (!cuda_available(&why)) {
    EXPECT_FALSE(why.empty());
  }
}

}  // namespace
