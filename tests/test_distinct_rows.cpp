// distinct_rows (src/core): the CUDA mt path's shared-terms scan takes a chunk's distinct terms
// from it, so every row must map to an exact copy of itself, in order of first appearance.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "core/distinct_rows.hpp"

namespace {

TEST(DistinctRows, MapsEveryRowToAnEqualDistinctRow) {
  std::mt19937_64 rng(11);
  for (size_t width : {size_t{1}, size_t{7}, size_t{100}, size_t{301}}) {
    for (size_t pool : {size_t{1}, size_t{3}, size_t{40}}) {
      std::vector<std::vector<int8_t>> base(pool, std::vector<int8_t>(width));
      for (auto& r : base)
        for (auto& t : r) t = static_cast<int8_t>(static_cast<int>(rng() % 3) - 1);
      const size_t n = 500;
      std::vector<int8_t> rows(n * width);
      for (size_t i = 0; i < n; ++i) std::memcpy(rows.data() + i * width, base[rng() % pool].data(), width);
      std::vector<uint32_t> index(n, ~0u);
      std::vector<int8_t> distinct(n * width);
      const size_t u = igla::distinct_rows(rows.data(), n, width, index.data(), distinct.data(), n);
      ASSERT_GE(u, 1u);
      ASSERT_LE(u, pool);
      uint32_t next = 0;  // first appearances come in order
      for (size_t i = 0; i < n; ++i) {
        ASSERT_LT(index[i], u);
        ASSERT_EQ(0, std::memcmp(rows.data() + i * width, distinct.data() + index[i] * width, width))
            << "row " << i << " width " << width;
        if (index[i] == next) ++next;
        ASSERT_LE(index[i], next) << "row " << i << " maps past the distinct rows seen so far";
      }
      for (size_t a = 0; a < u; ++a)
        for (size_t b = a + 1; b < u; ++b)
          ASSERT_NE(0, std::memcmp(distinct.data() + a * width, distinct.data() + b * width, width));
    }
  }
}

TEST(DistinctRows, GivesUpPastTheLimit) {
  std::vector<int8_t> rows = {1, 2, 3, 1, 4};  // width 1: 4 distinct rows
  std::vector<uint32_t> index(rows.size());
  std::vector<int8_t> distinct(rows.size());
  EXPECT_EQ(0u, igla::distinct_rows(rows.data(), rows.size(), 1, index.data(), distinct.data(), 3));
  EXPECT_EQ(4u, igla::distinct_rows(rows.data(), rows.size(), 1, index.data(), distinct.data(), 4));
  EXPECT_EQ((std::vector<uint32_t>{0, 1, 2, 0, 3}), index);
  EXPECT_EQ(0u, igla::distinct_rows(rows.data(), 0, 1, index.data(), distinct.data(), 4));
}

}  // namespace
