// The CUDA backend against the plain reference: same ids, same float scores to the bit, same
// order, same counts, on random data of odd sizes, for every CUDA path (mma, popc, sort) and the
// automatic choice. Skips, saying why, where no usable GPU is present (CI has none).
#include <gtest/gtest.h>

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
#include "igla/search.hpp"
#include "igla/ternary.hpp"

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
  std::shared_ptr<const Index> index;  // exactly these trits
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
  v.index = index_of_trits(v.trits, n, dims);
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
  return v;
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
  ASSERT_EQ(want.k, got.k) << what;
  ASSERT_EQ(want.count.size(), got.count.size()) << what;
  for (size_t q = 0; q < want.count.size(); ++q) {
    ASSERT_EQ(want.count[q], got.count[q]) << what << " query " << q;
    const auto a = want.of(q), b = got.of(q);
    for (size_t i = 0; i < a.size(); ++i) {
      uint32_t ab, bb;
      std::memcpy(&ab, &a[i].score, 4);
      std::memcpy(&bb, &b[i].score, 4);
      ASSERT_TRUE(a[i].id == b[i].id && ab == bb)
          << what << " query " << q << " rank " << i << ": want (" << a[i].id << ", " << a[i].score << ") got ("
          << b[i].id << ", " << b[i].score << ")";
    }
  }
}

const char* kPaths[] = {"", "mma", "popc", "sort"};

class Cuda : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!cuda_available(&why)) GTEST_SKIP() << "CUDA backend not usable here: " << why;
  }
  // One searcher per path (automatic choice, mma, popc, sort) over v.
  void use(const Vocab& v) {
    searchers_.clear();
    for (const char* path : kPaths) {
      SearcherOptions o;
      o.backend = "cuda";
      o.cuda.path = path;
      searchers_.push_back(make_cuda_searcher(v.index, o));
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
        for (size_t k : {size_t{1}, size_t{10}, size_t{32}, size_t{33}, n + 5}) {
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
      for (size_t k : {size_t{3}, size_t{10}, size_t{29}, size_t{40}}) {
        SearchParams p;
        p.k = k;
        p.limit = limit;
        check_all(v, b, p, "dims=" + std::to_string(dims) + " limit=" + std::to_string(limit) + " k=" + std::to_string(k));
        if (HasFatalFailure()) return;
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
      for (size_t k : {size_t{1}, size_t{10}, size_t{40}}) {
        SearchParams p;
        p.k = k;
        p.limit = (k == 10) ? 2000 : 0;
        check_all(v, b, p,
                  std::string(c == Combine::Sum ? "sum" : "cosmul") + " dims=" + std::to_string(dims) +
                      " k=" + std::to_string(k));
        if (HasFatalFailure()) return;
      }
    }
  }
}

// The one-query path replays a cached CUDA graph: run many single queries of changing shapes
// (k, exclusions) through one searcher and check each.
TEST_F(Cuda, OneQueryGraphReplays) {
  std::mt19937_64 rng(5);
  const Vocab v = make_vocab(20011, 300, rng);
  SearcherOptions o;
  o.backend = "cuda";
  auto s = make_cuda_searcher(v.index, o);
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
// Split sizes (IGLA_CUDA_SINGLE_SPLIT, read at searcher creation): automatic (one pass of 4 words
// a thread), 256 (one word a thread), 2048 (several passes, warp lists).
TEST_F(Cuda, OneQueryShapes) {
  std::mt19937_64 rng(11);
  for (const char* split : {"", "256", "2048"})
  for (uint32_t dims : {64u, 100u, 300u, 1400u}) {
    if (split[0] && dims != 300) continue;
    const Vocab v = make_vocab(dims == 1400 ? 3001 : 30011, dims, rng);
    if (split[0]) setenv("IGLA_CUDA_SINGLE_SPLIT", split, 1);
    use(v);
    unsetenv("IGLA_CUDA_SINGLE_SPLIT");
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
      p.k = i % 5 == 4 ? 31 : (i % 2 ? 10 : 1);
      p.limit = i % 6 == 5 ? 777 : 0;
      check_all(v, b, p, "split=" + std::string(split) + " dims=" + std::to_string(dims) + " query " + std::to_string(i));
      if (HasFatalFailure()) return;
    }
  }
}

// The persistent one-query kernel (the default one-query route): single queries of changing
// shapes (one-term nearest, 3-term Sum, 3CosMul, k, limit, exclusions: each a restart of the
// kernel's form or grid) interleaved with batches through the same searcher (each stops the
// kernel), with a second searcher taking turns (one persistent kernel a process: each takes it
// from the other), searcher destruction and recreation, idle exits of the kernel (short idle
// limit) with the host restarting it, and an idle exit racing a query (the host restarts it on
// the same message). Every result against the reference.
TEST_F(Cuda, PersistentOneQuery) {
  std::mt19937_64 rng(23);
  const Vocab v = make_vocab(30011, 300, rng);
  const Vocab v2 = make_vocab(20011, 100, rng);
  auto make = [](const Vocab& voc) {
    SearcherOptions o;
    o.backend = "cuda";
    return make_cuda_searcher(voc.index, o);
  };
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
    p.k = i % 5 == 4 ? 31 : 10;
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
    setenv("IGLA_CUDA_PERSIST_IDLE_MS", "30", 1);
    if (host_ms[0]) setenv("IGLA_CUDA_PERSIST_HOST_IDLE_MS", host_ms, 1);
    s1.reset();
    s1 = make(v);
    unsetenv("IGLA_CUDA_PERSIST_IDLE_MS");
    unsetenv("IGLA_CUDA_PERSIST_HOST_IDLE_MS");
    for (int i = 0; i < 6; ++i) {
      one(*s1, v, i % 2, std::string("idle exits host_ms=") + host_ms);
      if (HasFatalFailure()) return;
      if (i % 2) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  // The one-launch route still answers (IGLA_CUDA_SINGLE=launch) next to a persistent searcher.
  setenv("IGLA_CUDA_SINGLE", "launch", 1);
  auto s3 = make(v);
  unsetenv("IGLA_CUDA_SINGLE");
  for (int i = 0; i < 6; ++i) {
    one(i % 2 ? *s3 : *s1, v, i, i % 2 ? "launch route" : "persistent next to launch");
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
