#include <gtest/gtest.h>

#include "igla/ternary.hpp"
#include "kernels/layout.hpp"
#include "test_util.hpp"

using namespace igla;

TEST(Quantize, SeedThresholdIsHalfTheMeanAbs) {
  // mean|x| = (3 + 1.5 + 0.75 + 0.5 + 0.25 + 3) / 6 = 1.5, threshold 0.75 (all exact in binary).
  const std::vector<float> x = {3.0f, -1.5f, 0.75f, -0.5f, 0.25f, 3.0f};
  std::vector<int8_t> t(x.size());
  quantize_seed(x, 0.5f, t);
  EXPECT_EQ(t, (std::vector<int8_t>{1, -1, 0, 0, 0, 1}));  // 0.75 is not > 0.75
  quantize_seed(x, 0.25f, t);                              // threshold 0.375
  EXPECT_EQ(t, (std::vector<int8_t>{1, -1, 1, -1, 0, 1}));
}

TEST(Quantize, AllZeroVectorStaysZero) {
  const std::vector<float> x(10, 0.0f);
  std::vector<int8_t> t(10, 5);
  quantize_seed(x, 0.5f, t);
  EXPECT_EQ(count_nonzero(t), 0u);
  EXPECT_EQ(inv_norm_from_nnz(0), 0.0f);
}

TEST(Pack, RowRoundTripAtOddSizes) {
  std::mt19937_64 rng(1);
  for (uint32_t dims : {1u, 63u, 64u, 65u, 100u, 300u, 301u}) {
    const auto t = igla::testing_util::random_trits(dims, rng);
    std::vector<uint64_t> row(2 * plane_words(dims));
    pack_row(t, row);
    std::vector<int8_t> back(dims);
    unpack_row(row, dims, back);
    EXPECT_EQ(t, back) << dims;
    // Canonical: sign bits only where non-zero, nothing past dims.
    const uint32_t W = plane_words(dims);
    for (uint32_t j = 0; j < W; ++j) EXPECT_EQ(row[W + j] & ~row[j], 0u);
    if (dims % 64) {
      EXPECT_EQ(row[W - 1] >> (dims % 64), 0u);
    }
  }
}

TEST(Pack, BlockLayoutRoundTripAndPlacement) {
  std::mt19937_64 rng(2);
  const uint32_t dims = 130;
  const size_t n = 19;
  std::vector<uint64_t> codes(code_words(n, dims), 0);
  std::vector<std::vector<int8_t>> all;
  for (size_t i = 0; i < n; ++i) {
    all.push_back(igla::testing_util::random_trits(dims, rng));
    pack_into_blocks(all.back(), i, codes.data());
  }
  for (size_t i = 0; i < n; ++i) {
    std::vector<int8_t> back(dims);
    unpack_from_blocks(codes.data(), i, dims, back);
    EXPECT_EQ(all[i], back);
  }
  // Word 11 is lane 3 of block 1; its trit 70 lives in plane word 1, bit 6.
  const uint32_t W = plane_words(dims);
  const uint64_t nz = codes[(1 * W + 1) * 16 + 3], sg = codes[(1 * W + 1) * 16 + 8 + 3];
  EXPECT_EQ(((nz >> 6) & 1) != 0, all[11][70] != 0);
  EXPECT_EQ(((sg >> 6) & 1) != 0, all[11][70] < 0);
}

TEST(Pack, SixteenWordLayoutHoldsEveryTritWhereTheKernelReadsIt) {
  // The AVX-512 kernel's layout (kernels/layout.hpp): 16-word blocks of 32-bit plane words.
  std::mt19937_64 rng(3);
  for (uint32_t dims : {1u, 31u, 32u, 33u, 100u, 130u, 300u}) {
    const size_t n = 37;  // three blocks of 16, the last one partly padding
    std::vector<uint64_t> codes(code_words(n, dims), 0);
    std::vector<std::vector<int8_t>> all;
    for (size_t i = 0; i < n; ++i) {
      all.push_back(igla::testing_util::random_trits(dims, rng));
      pack_into_blocks(all.back(), i, codes.data());
    }
    const CodesView view{dims, plane_words(dims), n, codes.data(), nullptr, nullptr};
    const auto out = kernels::to_block_layout(view, 16);
    const uint32_t W32 = kernels::layout_plane_words(dims, 16);
    ASSERT_EQ(W32, (dims + 31) / 32);
    ASSERT_EQ(out.size(), 3 * W32 * 16);
    const auto* w32 = reinterpret_cast<const uint32_t*>(out.data());
    for (size_t i = 0; i < 48; ++i)
      for (uint32_t d = 0; d < W32 * 32; ++d) {
        const size_t at = (i / 16 * W32 + d / 32) * 32 + i % 16;
        const bool nz = (w32[at] >> (d % 32)) & 1, neg = (w32[at + 16] >> (d % 32)) & 1;
        const int8_t t = i < n && d < dims ? all[i][d] : 0;  // padding words and dims are zero
        ASSERT_EQ(nz, t != 0) << "dims " << dims << " word " << i << " dim " << d;
        ASSERT_EQ(neg, t < 0) << "dims " << dims << " word " << i << " dim " << d;
      }
  }
}

TEST(Clamp, SumBackToTrits) {
  const std::vector<int32_t> x = {3, -2, 0, 1, -1};
  std::vector<int8_t> t(5);
  clamp_trits(x, t);
  EXPECT_EQ(t, (std::vector<int8_t>{1, -1, 0, 1, -1}));
}
