// One assertion for the tests that compare two searchers' answers: same k, same count per query,
// same ids in the same order and the same score bits (a fast path must give its reference's
// answer exactly, ties included).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "igla/index.hpp"
#include "igla/queries.hpp"
#include "igla/search.hpp"

namespace igla::testing_util {

inline void expect_same_results(const SearchResults& want, const SearchResults& got, const std::string& what) {
  ASSERT_EQ(want.k, got.k) << what;
  ASSERT_EQ(want.count.size(), got.count.size()) << what;
  for (size_t q = 0; q < want.count.size(); ++q) {
    ASSERT_EQ(want.count[q], got.count[q]) << what << ": query " << q;
    const auto a = want.of(q), b = got.of(q);
    for (size_t i = 0; i < a.size(); ++i) {
      uint32_t ab, bb;
      std::memcpy(&ab, &a[i].score, 4);
      std::memcpy(&bb, &b[i].score, 4);
      ASSERT_TRUE(a[i].id == b[i].id && ab == bb)
          << what << ": query " << q << " rank " << i << ": want (" << a[i].id << ", " << a[i].score << ") got ("
          << b[i].id << ", " << b[i].score << ")";
    }
  }
}

// Word queries one at a time (through `single`) give what the same queries give in one batch
// (through `batched`: a query's answer does not depend on the rest of its batch), ids and scores,
// and never the query word itself.
inline void expect_one_at_a_time_as_batched(const Searcher& single, const Searcher& batched, const Index& ix,
                                            const std::vector<uint32_t>& words, const SearchParams& p) {
  QueryBuilder b(ix);
  for (uint32_t w : words) b.word(w);
  const SearchResults all = batched.search(b.batch(), p);
  for (size_t i = 0; i < words.size(); ++i) {
    QueryBuilder one(ix);
    one.word(words[i]);
    const SearchResults r = single.search(one.batch(), p);
    ASSERT_EQ(r.count[0], all.count[i]) << "query " << i;
    for (size_t j = 0; j < r.count[0]; ++j) {
      EXPECT_EQ(r.of(0)[j], all.of(i)[j]) << "query " << i;
      EXPECT_NE(r.of(0)[j].id, words[i]) << "the query word is excluded";
    }
  }
}

// Every `step`-th id below n * step: the word queries of the tests above.
inline std::vector<uint32_t> strided_words(uint32_t n, uint32_t step) {
  std::vector<uint32_t> w(n);
  for (uint32_t i = 0; i < n; ++i) w[i] = i * step;
  return w;
}

// An approximate searcher over the int8 rows at full breadth: with every list / node searched
// (full(p) sets that on the params) and every word a candidate, its answers to word and
// most_similar queries equal the exact scan + rerank stage's, ids and score bits, for k = 1, 10
// and 25, with the best kernel and the scalar one. make(options) builds the searcher under test.
template <class Make, class Full>
void expect_full_breadth_is_exact_rerank(const std::shared_ptr<const Index>& ix, Make make, Full full) {
  SearcherOptions o;
  o.cpu.threads = 2;
  const auto exact = make_searcher(ix, o);  // ternary scan + rerank stage
  for (const std::string kernel : {"", "scalar"}) {
    o.cpu.kernel = kernel;
    const auto s = make(o);
    QueryBuilder words(*ix), ms(*ix);
    for (uint32_t i = 0; i < 60; ++i) {
      words.word(i * 31 % 2000);
      const uint32_t pos[] = {i, i + 500}, neg[] = {i + 900};
      ms.most_similar(pos, neg);
    }
    for (const QueryBatch* b : {&words.batch(), &ms.batch()})
      for (size_t k : {1, 10, 25}) {
        SearchParams p;
        p.k = k;
        full(p);
        p.candidates = ix->size();
        expect_same_results(exact->search(*b, p), s->search(*b, p),
                            "kernel '" + kernel + "' k=" + std::to_string(k));
      }
  }
}

}  // namespace igla::testing_util
