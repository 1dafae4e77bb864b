// The IVF-int8 searcher (include/igla/ivf.hpp, make_ivf8_searcher) and its int8 list scan
// (src/ann/int8_scan.hpp): the VNNI scan against the plain loop, the exact rescoring against the
// rerank stage, recall on clustered data, batch/one-query/thread agreement and the fallbacks.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <thread>

#include "ann/int8_rescore.hpp"
#include "ann/int8_scan.hpp"
#include "ann/kmeans.hpp"
#include "ann/probe_select.hpp"
#include "ann/top16.hpp"
#include "igla/ivf.hpp"
#include "igla/queries.hpp"
#include "igla/search.hpp"
#include "expect_results.hpp"
#include "test_util.hpp"

namespace igla {
namespace {

using testing_util::error_of;


// 61 float dims: not a multiple of 4 (a padded group in the scan layout).
std::shared_ptr<const Index> index8(size_t n = 2000, uint32_t dims = 61, Rerank r = Rerank::Int8) {
  QuantParams q;
  q.rerank = r;
  return std::make_shared<const Index>(Index::build(testing_util::clustered(n, dims, 11), q, true));
}

std::shared_ptr<const IvfIndex> lists_of(const Index& ix, uint32_t lists = 20) {
  IvfParams p;
  p.lists = lists;
  p.iterations = 8;
  return std::make_shared<const IvfIndex>(IvfIndex::build(ix, p));
}

void expect_same(const SearchResults& a, const SearchResults& b, const std::string& what) {
  igla::testing_util::expect_same_results(a, b, what);
}

TEST(Int8Scan, VnniEqualsPlainLoop) {
  if (!ann::int8_scan_vnni_available()) GTEST_SKIP() << "no AVX-512 VNNI on this CPU";
  std::mt19937_64 rng(3);
  for (uint32_t G : {1u, 7u, 25u, 33u})
    for (size_t nq : {size_t{1}, size_t{3}, size_t{4}, size_t{9}}) {
      const size_t nb = 5;
      std::vector<uint8_t> blocks(nb * G * 64);
      for (auto& b : blocks) b = static_cast<uint8_t>(rng());  // extremes included: 0 and 255
      blocks[0] = 255;
      std::vector<int32_t> q4(nq * G);
      for (auto& q : q4) q = static_cast<int32_t>(rng());
      q4[0] = static_cast<int32_t>(0x81818181u);  // -127 bytes
      std::vector<int32_t> a(nq * nb * 16, 1), b(nq * nb * 16, 2);
      ann::int8_scan_scalar(blocks.data(), nb, G, q4.data(), nq, a.data());
      ann::int8_scan_vnni(blocks.data(), nb, G, q4.data(), nq, b.data());
      ASSERT_EQ(a, b) << "G=" << G << " nq=" << nq;
    }
}

// The probes' AVX-512 choice against the plain reference (top_indices, tail sorted): the same
// indices in the same order (best first, the others ascending), ties (many equal scores, -0 and
// +0) to the lower index, odd n around the 16-lane and 4-group edges, m from 1 to n.
TEST(Int8Scan, ChooseProbesAvx512EqualsPlain) {
  if (!ann::choose_probes_avx512_available()) GTEST_SKIP() << "no AVX-512 on this CPU";
  std::mt19937_64 rng(9);
  std::vector<uint32_t> scratch;
  for (size_t n : {size_t{1}, size_t{17}, size_t{63}, size_t{64}, size_t{65}, size_t{100}, size_t{1151}, size_t{2302}})
    for (size_t m : {size_t{1}, size_t{2}, size_t{3}, size_t{8}, size_t{32}, size_t{48}, size_t{72}, size_t{80},
                     size_t{300}, n - 1, n}) {
      if (m > n || m == 0) continue;
      for (int kind = 0; kind < 3; ++kind) {
        std::vector<float> s(n);
        for (auto& v : s) {
          if (kind == 0) v = static_cast<float>(rng() % 100000) * 1e-3f - 50.0f;
          if (kind == 1) v = static_cast<float>(rng() % 5);                       // many ties
          if (kind == 2) v = rng() % 2 ? 0.0f : (rng() % 2 ? -0.0f : -1e-30f);  // -0 ties +0
        }
        std::vector<uint32_t> a(m, 0), b(m, 1);
        ann::choose_probes_plain(s.data(), n, m, a.data());
        ann::choose_probes_avx512(s.data(), n, m, b.data(), scratch);
        ASSERT_EQ(a, b) << "n=" << n << " m=" << m << " kind=" << kind;
        std::vector<uint32_t> top(m);  // the same set as top_indices, the best first
        ann::top_indices(s.data(), n, m, top.data());
        ASSERT_EQ(a[0], top[0]);
        std::sort(top.begin(), top.end());
        std::sort(a.begin(), a.end());
        ASSERT_EQ(a, top);
      }
    }
}

// The score floor's bound: never above the m-th largest, never below the smallest score, the
// m-th largest itself with every bit (-0 as +0); -inf outside its domain.
TEST(Int8Scan, MthLargestLowerBound) {
  if (!ann::choose_probes_avx512_available()) GTEST_SKIP() << "no AVX-512 on this CPU";
  std::mt19937_64 rng(21);
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(ann::mth_largest_lower_bound_avx512(nullptr, 0, 1, 32), -inf);
  const float one[] = {2.5f, -1.0f};
  EXPECT_EQ(ann::mth_largest_lower_bound_avx512(one, 2, 3, 32), -inf) << "m > n";
  EXPECT_EQ(ann::mth_largest_lower_bound_avx512(one, 2, 0, 32), -inf) << "m = 0";
  for (size_t n : {size_t{1}, size_t{2}, size_t{15}, size_t{16}, size_t{17}, size_t{33}, size_t{64}})
    for (int kind = 0; kind < 4; ++kind)
      for (int rep = 0; rep < 20; ++rep) {
        std::vector<float> s(n);
        for (auto& v : s) {
          if (kind == 0) v = static_cast<float>(rng() % 100000) * 1e-4f - 5.0f;  // both signs
          if (kind == 1) v = static_cast<float>(rng() % 3);                       // ties
          if (kind == 2) v = rng() % 2 ? 0.0f : -0.0f;
          if (kind == 3) v = 1e-3f * static_cast<float>(rng() % 1000) + 0.5f;  // close, one sign
        }
        std::vector<float> sorted = s;
        std::sort(sorted.begin(), sorted.end(), std::greater<float>());
        for (size_t m = 1; m <= n; ++m)
          for (int steps : {1, 4, 10, 32}) {
            const float b = ann::mth_largest_lower_bound_avx512(s.data(), n, m, steps);
            ASSERT_LE(b, sorted[m - 1]) << "n=" << n << " m=" << m << " steps=" << steps << " kind=" << kind;
            ASSERT_GE(b, sorted[n - 1]) << "n=" << n << " m=" << m << " steps=" << steps << " kind=" << kind;
            if (steps == 32) {
              ASSERT_EQ(b, sorted[m - 1]) << "n=" << n << " m=" << m << " kind=" << kind;
            }
          }
      }
}

// The rescoring dot in registers against decode-then-fdot (the rerank stage's arithmetic): the
// same float bits for every dims count (tails of 0-7), extreme bytes, both signs of scale.
TEST(Int8Scan, RescoreDotAvx2EqualsPlain) {
  if (!ann::rescore_dot_avx2_available()) GTEST_SKIP() << "no AVX2 on this CPU";
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  for (uint32_t D : {1u, 7u, 8u, 9u, 33u, 61u, 100u, 300u})
    for (int rep = 0; rep < 50; ++rep) {
      std::vector<int8_t> r(D);
      std::vector<float> sc(D), t(D), scratch(D);
      for (uint32_t d = 0; d < D; ++d) {
        r[d] = static_cast<int8_t>(rep == 0 ? (d % 2 ? 127 : -127) : static_cast<int>(rng() % 255) - 127);
        sc[d] = u(rng) * 1e-2f;
        t[d] = u(rng);
      }
      const float a = ann::rescore_dot_plain(r.data(), sc.data(), t.data(), D, scratch.data());
      const float b = ann::rescore_dot_avx2(r.data(), sc.data(), t.data(), D);
      ASSERT_EQ(std::bit_cast<uint32_t>(a), std::bit_cast<uint32_t>(b)) << "D=" << D << " rep=" << rep;
    }
}

// Top16's branch-free insertion against a sort: after every push the 16 slots hold the best 16
// pairs so far by (score desc, position asc), best first, 0 in empty slots; many ties, -0 and +0
// (equal), negative scores; the keys round-trip the score and the position.
TEST(Int8Scan, Top16KeepsTheBest16InOrder) {
  if (!ann::top16_available()) GTEST_SKIP() << "no AVX-512 on this CPU";
  std::mt19937_64 rng(17);
  for (int kind = 0; kind < 3; ++kind) {
    ann::Top16 top;
    top.clear();
    std::vector<uint64_t> all;
    std::vector<uint32_t> order(300);
    for (uint32_t i = 0; i < order.size(); ++i) order[i] = i * 7 + 3;
    std::shuffle(order.begin(), order.end(), rng);
    for (uint32_t pos : order) {
      float s = 0;
      if (kind == 0) s = static_cast<float>(rng() % 100000) * 1e-3f - 50.0f;
      if (kind == 1) s = static_cast<float>(rng() % 4) - 1.5f;
      if (kind == 2) s = rng() % 2 ? 0.0f : -0.0f;
      const uint64_t key = ann::top16_key(s, pos);
      ASSERT_EQ(ann::top16_pos(key), pos);
      ASSERT_EQ(ann::top16_score(key), s == 0.0f ? 0.0f : s);
      top.insert(key);
      all.push_back(key);
      std::vector<std::pair<float, uint32_t>> want;
      for (uint64_t k : all) want.push_back({ann::top16_score(k), ann::top16_pos(k)});
      std::sort(want.begin(), want.end(), [](const auto& a, const auto& b) {
        return a.first != b.first ? a.first > b.first : a.second < b.second;
      });
      for (size_t i = 0; i < 16; ++i) {
        if (i >= want.size()) {
          ASSERT_EQ(top[i], 0u) << "empty slot " << i;
          continue;
        }
        ASSERT_EQ(ann::top16_pos(top[i]), want[i].second) << "kind " << kind << " after " << all.size() << " slot " << i;
        ASSERT_EQ(ann::top16_score(top[i]), want[i].first);
      }
    }
  }
}

// The query's int8 form and the centroid scores with AVX-512 against the plain loops: the same
// bytes, sums and float bits; values on and next to the rounding halves (lround rounds them away
// from zero), zero queries, dims with a partial last vector.
TEST(Int8Scan, QueryPrepAvx512EqualsPlain) {
  if (!ann::query_prep_avx512_available()) GTEST_SKIP() << "no AVX-512 on this CPU";
  std::mt19937_64 rng(31);
  std::uniform_real_distribution<float> u(-3.0f, 3.0f);
  for (size_t D : {size_t{1}, size_t{15}, size_t{16}, size_t{17}, size_t{61}, size_t{100}, size_t{300}})
    for (int rep = 0; rep < 200; ++rep) {
      std::vector<float> x(D), sc(D, 1.0f);
      for (size_t d = 0; d < D; ++d) {
        x[d] = u(rng);
        if (rep % 4 == 1) sc[d] = u(rng) * 0.1f;
      }
      if (rep % 4 == 2) {  // y * 127 / max on exact halves and their neighbours: max 127, values k + 0.5
        x[0] = 127.0f;
        for (size_t d = 1; d < D; ++d) {
          const float h = static_cast<float>(static_cast<int>(rng() % 254) - 127) + 0.5f;
          const int nb = static_cast<int>(rng() % 3);
          x[d] = nb == 0 ? h : nb == 1 ? std::nextafter(h, 0.0f) : std::nextafter(h, 200.0f);
        }
      }
      if (rep == 3) std::fill(x.begin(), x.end(), 0.0f);
      std::vector<int8_t> a(D, 1), b(D, 2);
      const int32_t sa = ann::quantize_query_plain(x.data(), sc.data(), D, a.data());
      const int32_t sb = ann::quantize_query_avx512(x.data(), sc.data(), D, b.data());
      ASSERT_EQ(a, b) << "D=" << D << " rep=" << rep;
      ASSERT_EQ(sa, sb);
    }
  for (size_t L : {size_t{1}, size_t{16}, size_t{23}, size_t{1168}}) {
    std::vector<int32_t> dots(L);
    std::vector<float> step(L), a(L), b(L);
    for (size_t l = 0; l < L; ++l) {
      dots[l] = static_cast<int32_t>(rng() % 6000000) - 3000000;
      step[l] = u(rng) * 1e-3f;
    }
    ann::centroid_scores_plain(dots.data(), 12800.0f, step.data(), L, a.data());
    ann::centroid_scores_avx512(dots.data(), 12800.0f, step.data(), L, b.data());
    for (size_t l = 0; l < L; ++l) ASSERT_EQ(std::bit_cast<uint32_t>(a[l]), std::bit_cast<uint32_t>(b[l])) << l;
  }
}

// The batched path's fused scan + selection against the plain loop (scan into a dots buffer, then
// select): same rows, same order, same score bits; odd row counts (partial last blocks, one or
// two blocks at a time), odd groups, every group size, thresholds that pass all, some, none.
TEST(Int8Scan, ScanSelectVnniEqualsPlainLoop) {
  if (!ann::int8_scan_vnni_available()) GTEST_SKIP() << "no AVX-512 VNNI on this CPU";
  std::mt19937_64 rng(7);
  for (uint32_t G : {1u, 7u, 25u, 33u})
    for (size_t rows : {size_t{1}, size_t{15}, size_t{16}, size_t{17}, size_t{31}, size_t{32}, size_t{33}, size_t{291}})
      for (size_t nq = 1; nq <= ann::kMaxScanGroup; ++nq) {
        const size_t nb = (rows + 15) / 16;
        std::vector<uint8_t> blocks(nb * G * 64);
        for (auto& b : blocks) b = static_cast<uint8_t>(rng());
        std::vector<float> inv(nb * 16);
        for (size_t j = 0; j < inv.size(); ++j) inv[j] = j % 7 == 3 ? 0.0f : 1e-6f * static_cast<float>(rng() % 1000);
        std::vector<int32_t> q4(nq * G);
        for (auto& q : q4) q = static_cast<int32_t>(rng() & 0x7f7f7f7fu) ^ static_cast<int32_t>(rng() & 0x80808080u);
        std::vector<float> corr(nq), thr(nq);
        for (size_t q = 0; q < nq; ++q) {
          corr[q] = 128.0f * static_cast<float>(static_cast<int>(rng() % 2001) - 1000);
          const float t[] = {-std::numeric_limits<float>::infinity(), 0.0f, -0.5f, 0.3f, 1e9f};
          thr[q] = t[(q + rows) % 5];
        }
        const size_t stride = rows + 3;
        std::vector<uint32_t> pa(nq * stride, 7), pb(nq * stride, 7), ca(nq, 9), cb(nq, 9);
        std::vector<float> sa(nq * stride, 1.5f), sb(nq * stride, 1.5f);
        ann::scan_select_scalar(blocks.data(), rows, G, inv.data(),
                                {q4.data(), corr.data(), thr.data(), nq, pa.data(), sa.data(), stride, ca.data()});
        ann::scan_select_vnni(blocks.data(), rows, G, inv.data(),
                              {q4.data(), corr.data(), thr.data(), nq, pb.data(), sb.data(), stride, cb.data()});
        // With a region prefetched meanwhile (a hint: the same answer), here a short one.
        std::vector<uint32_t> pc(nq * stride, 7), cc(nq, 9);
        std::vector<float> sc(nq * stride, 1.5f);
        ann::ScanSelect with_prefetch{q4.data(), corr.data(), thr.data(), nq, pc.data(), sc.data(), stride, cc.data()};
        with_prefetch.prefetch = blocks.data();
        with_prefetch.prefetch_bytes = 64 * (rows % 5);
        ann::scan_select_vnni(blocks.data(), rows, G, inv.data(), with_prefetch);
        const std::string what = "G=" + std::to_string(G) + " rows=" + std::to_string(rows) + " nq=" + std::to_string(nq);
        ASSERT_EQ(ca, cb) << what;
        ASSERT_EQ(cb, cc) << what;
        ASSERT_EQ(pb, pc) << what;
        ASSERT_EQ(0, std::memcmp(sb.data(), sc.data(), 4 * sb.size())) << what;
        for (size_t q = 0; q < nq; ++q) {
          ASSERT_LE(ca[q], rows) << what;
          for (size_t i = 0; i < ca[q]; ++i) {
            ASSERT_EQ(pa[q * stride + i], pb[q * stride + i]) << what << " q=" << q << " i=" << i;
            ASSERT_EQ(std::bit_cast<uint32_t>(sa[q * stride + i]), std::bit_cast<uint32_t>(sb[q * stride + i]))
                << what << " q=" << q << " i=" << i;
          }
        }
      }
}

// The batched path (VNNI, fused scan) against the plain reference (kernel "scalar": scan into a
// buffer, then select, then the same candidates' rescoring): identical ids, score bits and order
// for batches of 1, 3, 17 and 1000, 1 and 2 threads, odd dims (61 and 33: a partial last group)
// and the uneven list sizes of k-means (none a multiple of 16 by design).
TEST(Ivf8, BatchedPathEqualsPlainReference) {
  if (!ann::int8_scan_vnni_available()) GTEST_SKIP() << "no AVX-512 VNNI on this CPU";
  for (uint32_t dims : {61u, 33u}) {
    const auto ix = index8(3001, dims);
    const auto ivf = lists_of(*ix, 23);
    size_t multiple_of_16 = 0;
    for (uint32_t l = 0; l < ivf->lists(); ++l) multiple_of_16 += ivf->list_size(l) % 16 == 0;
    EXPECT_LT(multiple_of_16, ivf->lists()) << "the lists should include partial blocks";
    for (int threads : {1, 2}) {
      SearcherOptions o;
      o.cpu.threads = threads;
      const auto fast = make_ivf8_searcher(ix, o, ivf);
      o.cpu.kernel = "scalar";
      const auto plain = make_ivf8_searcher(ix, o, ivf);
      ASSERT_NE(fast->name(), plain->name());
      for (size_t nq : {size_t{1}, size_t{3}, size_t{17}, size_t{1000}}) {
        QueryBuilder b(*ix);
        for (size_t i = 0; i < nq; ++i) {
          if (i % 5 == 4) {
            const uint32_t pos[] = {static_cast<uint32_t>(i * 7 % 3001), static_cast<uint32_t>((i * 11 + 1) % 3001)};
            const uint32_t neg[] = {static_cast<uint32_t>((i * 13 + 2) % 3001)};
            b.most_similar(pos, neg);
          } else {
            b.word(static_cast<uint32_t>(i * 29 % 3001));
          }
        }
        for (uint32_t nprobe : {1u, 4u, 23u})
          for (size_t c : {size_t{1}, size_t{10}, size_t{57}}) {
            SearchParams p;
            p.k = 10;
            p.nprobe = nprobe;
            p.candidates = c;
            expect_same(fast->search(b.batch(), p), plain->search(b.batch(), p),
                        "dims " + std::to_string(dims) + " threads " + std::to_string(threads) + " nq " +
                            std::to_string(nq) + " nprobe " + std::to_string(nprobe) + " c " + std::to_string(c));
          }
      }
    }
  }
}

// With every list probed and every word a candidate, the answer is the rerank stage's over every
// word: same ids, same score bits (the rescoring shares rerank_score and reads the same rows).
TEST(Ivf8, AllListsAllCandidatesEqualRerankOfEveryWord) {
  const auto ix = index8();
  const auto ivf = lists_of(*ix);
  igla::testing_util::expect_full_breadth_is_exact_rerank(
      ix, [&](const SearcherOptions& o) { return make_ivf8_searcher(ix, o, ivf); },
      [&](SearchParams& p) { p.nprobe = ivf->lists(); });
}

TEST(Ivf8, RecallFloorOnClusteredData) {
  const auto ix = index8();
  const auto ivf = lists_of(*ix);
  const auto exact = make_searcher(ix);
  const auto s = make_ivf8_searcher(ix, {}, ivf);
  QueryBuilder b(*ix);
  for (uint32_t i = 0; i < 300; ++i) b.word(i * 6);
  SearchParams tp;
  tp.candidates = ix->size();
  const SearchResults truth = exact->search(b.batch(), tp);
  auto recall = [&](uint32_t nprobe, size_t c) {
    SearchParams p;
    p.nprobe = nprobe;
    p.candidates = c;
    const SearchResults r = s->search(b.batch(), p);
    size_t hit = 0;
    for (size_t q = 0; q < b.batch().size(); ++q)
      for (const Hit& h : r.of(q))
        for (const Hit& t : truth.of(q)) hit += h.id == t.id;
    return double(hit) / double(b.batch().size() * p.k);
  };
  const double r1 = recall(1, 20), r4 = recall(4, 20), r_all = recall(20, 40);
  EXPECT_GE(r4, 0.90) << "nprobe 4 of 20 lists on 40 tight clusters";
  EXPECT_GE(r4, r1);
  EXPECT_GE(r_all, 0.97) << "every list, 40 int8-ranked candidates";
}

TEST(Ivf8, OneQueryBatchAndThreadsAgree) {
  const auto ix = index8();
  const auto ivf = lists_of(*ix);
  SearcherOptions o1, o2;
  o1.cpu.threads = 1;
  o2.cpu.threads = 2;
  const auto s1 = make_ivf8_searcher(ix, o1, ivf), s2 = make_ivf8_searcher(ix, o2, ivf);
  const std::vector<uint32_t> words = testing_util::strided_words(50, 13);
  QueryBuilder b(*ix);
  for (uint32_t w : words) b.word(w);
  SearchParams p;
  p.nprobe = 3;
  p.candidates = 15;
  expect_same(s1->search(b.batch(), p), s2->search(b.batch(), p), "1 vs 2 threads");
  testing_util::expect_one_at_a_time_as_batched(*s1, *s2, *ix, words, p);
}

// The searcher keeps its per-batch buffers between calls (a pool): calls of different sizes,
// nprobe and candidates in a row, and from several threads at once, answer as a fresh searcher does.
TEST(Ivf8, ReusedBuffersAnswerAsAFreshSearcher) {
  const auto ix = index8(1500, 61);
  const auto ivf = lists_of(*ix, 17);
  SearcherOptions o;
  o.cpu.threads = 2;
  const auto reused = make_ivf8_searcher(ix, o, ivf);
  struct Call {
    size_t nq;
    uint32_t nprobe;
    size_t c;
  };
  const std::vector<Call> calls = {{300, 4, 10}, {1, 17, 3}, {40, 2, 57}, {300, 9, 10}, {17, 1, 1}, {500, 17, 40}};
  std::vector<QueryBatch> batches;
  for (const Call& c : calls) {
    QueryBuilder b(*ix);
    for (size_t i = 0; i < c.nq; ++i) b.word(static_cast<uint32_t>((i * 37 + c.nq) % 1500));
    batches.push_back(b.take());
  }
  auto params = [&](size_t i) {
    SearchParams p;
    p.nprobe = calls[i].nprobe;
    p.candidates = calls[i].c;
    return p;
  };
  std::vector<SearchResults> fresh;
  for (size_t i = 0; i < calls.size(); ++i) fresh.push_back(make_ivf8_searcher(ix, o, ivf)->search(batches[i], params(i)));
  for (int rep = 0; rep < 2; ++rep)
    for (size_t i = 0; i < calls.size(); ++i)
      expect_same(reused->search(batches[i], params(i)), fresh[i], "call " + std::to_string(i) + " rep " + std::to_string(rep));
  std::vector<std::thread> threads;
  std::vector<std::vector<SearchResults>> got(4);
  for (size_t t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (size_t i = 0; i < 3 * calls.size(); ++i) {
        const size_t j = (i + t) % calls.size();
        got[t].push_back(reused->search(batches[j], params(j)));
      }
    });
  for (auto& th : threads) th.join();
  for (size_t t = 0; t < 4; ++t)
    for (size_t i = 0; i < got[t].size(); ++i)
      expect_same(got[t][i], fresh[(i + t) % calls.size()], "thread " + std::to_string(t) + " call " + std::to_string(i));
}

// 3CosMul and --limit are not its own: the ternary IVF and the rerank stage answer them.
TEST(Ivf8, FallsBackToTheTernaryIvfWithRerank) {
  const auto ix = index8();
  const auto ivf = lists_of(*ix);
  const auto s = make_ivf8_searcher(ix, {}, ivf);
  const auto ref = make_rerank_stage(make_ivf_searcher(ix, {}, ivf), ix, 0);
  QueryBuilder mul(*ix, Combine::CosMul), words(*ix);
  for (uint32_t i = 0; i < 30; ++i) {
    mul.analogy(i, i + 100, i + 200, AnalogyMode::Mul);
    words.word(i);
  }
  SearchParams p;
  p.nprobe = 5;
  expect_same(s->search(mul.batch(), p), ref->search(mul.batch(), p), "3CosMul");
  p.limit = 700;
  expect_same(s->search(words.batch(), p), ref->search(words.batch(), p), "limit");
}

// The registered backend (what `--device ivf-int8` asks for) is this searcher: same answers, and
// make_searcher adds no second rerank stage.
TEST(Ivf8, RegisteredBackendIsTheSearcher) {
  const auto ix = index8();
  register_ivf_backend();
  SearcherOptions o;
  o.cpu.threads = 2;
  const auto direct = make_ivf8_searcher(ix, o);
  o.backend = "ivf-int8";
  const auto registered = make_searcher(ix, o);
  EXPECT_EQ(registered->name(), direct->name());
  QueryBuilder words(*ix);
  for (uint32_t i = 0; i < 40; ++i) words.word(i * 37 % 2000);
  SearchParams p;
  p.nprobe = 8;
  expect_same(registered->search(words.batch(), p), direct->search(words.batch(), p), "registered");
}

TEST(Ivf8, NeedsInt8RerankRows) {
  const auto ix = index8(500, 32, Rerank::F16);
  const std::string e = error_of([&] { make_ivf8_searcher(ix, {}, lists_of(*ix, 8)); });
  EXPECT_NE(e.find("int8 rerank rows"), std::string::npos) << e;
}

}  // namespace
}  // namespace igla
