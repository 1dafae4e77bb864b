// One assertion for the tests that compare two searchers' answers: same k, same count per query,
// same ids in the same order and the same score bits (a fast path must give its reference's
// answer exactly, ties included).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>

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

}  // namespace igla::testing_util
