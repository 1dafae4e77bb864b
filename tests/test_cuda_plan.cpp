// The CUDA batch planner (host arithmetic only, so it runs in CI without a GPU where the CUDA
// backend is built): a chunk's CTAs of the tensor-core path fit in one wave when they can. The
// old rule, ceil(SMs / query tiles) vocabulary splits, made 136 CTAs for 132 SMs at 1024
// queries and doubled the time (scripts/gpu/NOTES.md, v8).
#include <gtest/gtest.h>

#if IGLA_TEST_CUDA_PLANS
#include <cstddef>
#include <cstdint>

#include "cuda/kernels.hpp"

namespace {

using namespace igla::cuda;

DeviceIndex index_of(uint32_t n, uint32_t dims) {
  DeviceIndex ix;
  ix.dims = dims;
  ix.W = (dims + 63) / 64;
  ix.n = n;
  ix.n_tiles = (n + kTileWords - 1) / kTileWords;
  ix.Kp = (dims + 31) / 32 * 32;
  ix.tile_stride = kTileWords * ix.Kp + kTileExtra;
  return ix;
}

TEST(CudaPlan, MmaChunksStayInOneWave) {
  constexpr int kSms = 132;            // H100 SXM
  constexpr size_t kSmem = 232448;     // its opt-in shared memory per block
  for (const uint32_t n : {100000u, 341479u, 1000000u}) {
    const DeviceIndex ix = index_of(n, n == 341479u ? 100 : 300);
    for (const int n_q : {1, 100, 1024, 4096, 8192, 14848, 16896}) {
      MmaPlan p;
      ASSERT_TRUE(mma_plan(ix, n_q, n, 10, kSms, kSmem, p)) << n << " words, " << n_q << " queries";
      SCOPED_TRACE(::testing::Message() << n << " words, " << n_q << " queries: " << p.n_qt << " query tiles x "
                                        << p.n_splits << " splits of " << p.tiles_per_split << " tiles");
      EXPECT_GE(p.stages, 2);
      EXPECT_LE(p.smem, kSmem);
      // Every tile in exactly one split, no empty split.
      EXPECT_GE(static_cast<int64_t>(p.n_splits) * p.tiles_per_split, p.n_tiles);
      EXPECT_LT(static_cast<int64_t>(p.n_splits - 1) * p.tiles_per_split, p.n_tiles);
      // One wave where the query tiles alone fit in one, and then at least half the SMs busy.
      const int ctas = p.n_qt * p.n_splits;
      if (p.n_qt <= kSms) {
        EXPECT_LE(ctas, kSms);
        EXPECT_GT(ctas, kSms / 2);
      } else {
        EXPECT_EQ(p.n_splits, 1);
      }
    }
  }
}

// The default two-stage query (50 candidates + 3 exclusions, lists up to kMaxListK = 64) stays on
// the tensor-core path for GloVe-sized codes (rotated 128 dims, seed 100), with a tile ring of at
// least 3 stages; wide codes fall back to popc only past what shared memory holds.
TEST(CudaPlan, MmaTakesListsOf64) {
  constexpr int kSms = 132;
  constexpr size_t kSmem = 232448;
  EXPECT_GE(kMaxListK, 64);
  for (const uint32_t dims : {100u, 128u}) {
    const DeviceIndex ix = index_of(341479, dims);
    for (const int K : {33, 53, 64}) {
      MmaPlan p;
      ASSERT_TRUE(mma_plan(ix, 65536, 341479, K, kSms, kSmem, p)) << dims << " dims, K = " << K;
      EXPECT_GE(p.stages, 3) << dims << " dims, K = " << K;
      EXPECT_LE(p.smem, kSmem);
    }
  }
  MmaPlan p;
  EXPECT_TRUE(mma_plan(index_of(100000, 300), 65536, 100000, 53, kSms, kSmem, p));
  EXPECT_FALSE(mma_plan(index_of(100000, 300), 65536, 100000, kMaxListK + 1, kSms, kSmem, p));
}

// Append lists (kernels.hpp): K sorted keys + slack slots from K = append_min_k on (default off:
// past kMaxListK), at least one queue (12 keys) of slack, sorted lists below it; where the slack
// does not fit with two stages the plan keeps sorted lists rather than fail.
TEST(CudaPlan, MmaAppendLists) {
  constexpr int kSms = 132;
  constexpr size_t kSmem = 232448;
  EXPECT_GT(kAppendMinK, kMaxListK);  // off until a GPU run has timed them (NOTES v16)
  EXPECT_EQ(mma_list_cap(64), 64);
  EXPECT_EQ(mma_list_cap(32, 33), 32);
  EXPECT_EQ(mma_list_cap(33, 33), 33 + kAppendSlack);
  EXPECT_EQ(mma_list_cap(53, 1, 0), 53 + 12);
  EXPECT_EQ(mma_list_cap(1, 1, 40), 41);
  EXPECT_EQ(mma_list_cap(64, 65, 40), 64);
  const DeviceIndex glove = index_of(341479, 100);
  for (const int K : {1, 11, 32, 33, 51, 53, 64}) {
    MmaPlan p;
    ASSERT_TRUE(mma_plan(glove, 65536, 341479, K, kSms, kSmem, p, 6, 33)) << K;
    EXPECT_EQ(p.cap, mma_list_cap(K, 33)) << K;
    EXPECT_LE(p.smem, kSmem);
    EXPECT_GE(p.stages, 3) << K;
    ASSERT_TRUE(mma_plan(glove, 65536, 341479, K, kSms, kSmem, p, 6, 65)) << K;
    EXPECT_EQ(p.cap, K);
  }
  // 256-byte rows: slack 32 at K = 64 needs 248,864 bytes with two stages; sorted lists fit.
  MmaPlan p;
  ASSERT_TRUE(mma_plan(index_of(100000, 256), 65536, 100000, 64, kSms, kSmem, p, 6, 33));
  EXPECT_EQ(p.cap, 64);
  EXPECT_EQ(p.stages, 2);
  ASSERT_TRUE(mma_plan(index_of(100000, 256), 65536, 100000, 40, kSms, kSmem, p, 6, 33));
  EXPECT_EQ(p.cap, 72);
}

// One query with lists past 32 keys (the two-stage query's 50 candidates + exclusions): GloVe's
// 341,479 words take the prefix mode, one pass of 1,024 words a CTA (334 CTAs), with shared memory
// for three CTAs a SM (the persistent kernel's grid is resident only then); K <= 32, explicit
// splits, prefix 0, vocabularies whose CTAs cannot keep K keys together, and unions past what the
// last CTA holds keep the old plan.
TEST(CudaPlan, OneQueryPrefixMode) {
  constexpr int kSms = 132;
  constexpr size_t kSmem = 232448;
  const DeviceIndex glove = index_of(341479, 128);
  for (const int T : {1, 3}) {
    const SinglePlan p = single_plan(glove, 341479, 53, T, kSms, 0, 8);
    EXPECT_EQ(p.prefix, 8);
    EXPECT_EQ(p.n_splits, 334);
    EXPECT_EQ(p.split_len, 1024u);
    EXPECT_GE(static_cast<int64_t>(p.n_splits) * 1024, 341479 + 7);
    EXPECT_LE(3 * (p.smem + 4096), kSmem);
  }
  EXPECT_EQ(single_plan(glove, 341479, 64, 3, kSms, 0, 32).prefix, 0);  // 334 x 32 keys: past the merge cap
  EXPECT_EQ(single_plan(glove, 341479, 13, 3, kSms, 0, 8).prefix, 0);
  EXPECT_EQ(single_plan(glove, 341479, 53, 3, kSms, 2048, 8).prefix, 0);
  EXPECT_EQ(single_plan(glove, 341479, 53, 3, kSms, 0, 0).prefix, 0);
  EXPECT_EQ(single_plan(glove, 5000, 53, 3, kSms, 0, 8).prefix, 0);   // 5 CTAs x 8 < 53
  EXPECT_EQ(single_plan(glove, 70001, 53, 3, kSms, 0, 1).prefix, 1);  // 69 CTAs x 1 >= 53
  EXPECT_EQ(single_plan(index_of(1000000, 300), 1000000, 53, 1, kSms, 0, 8).prefix, 0);
}

// The mt path's shared-terms scan keeps each distinct term's dots with a pass of words as int8 in
// shared memory: up to kStMaxDistinct terms of at most 127 non-zeros each (|dot| <= a term's
// non-zeros; GloVe's rotated codes have 128 dims), within the block's limit.
TEST(CudaPlan, SharedTermsFit) {
  constexpr size_t kSmem = 232448;
  static const int8_t tiles[1] = {0};
  DeviceIndex glove = index_of(341479, 128);
  glove.tiled = tiles;
  EXPECT_TRUE(shared_terms_fit(glove, 1, 90, kSmem));
  EXPECT_TRUE(shared_terms_fit(glove, 300, 127, kSmem));
  EXPECT_TRUE(shared_terms_fit(glove, kStMaxDistinct, 90, kSmem));
  EXPECT_FALSE(shared_terms_fit(glove, kStMaxDistinct + 1, 90, kSmem));
  EXPECT_FALSE(shared_terms_fit(glove, 0, 90, kSmem));
  EXPECT_FALSE(shared_terms_fit(glove, 300, 128, kSmem));  // a dot of 128 does not fit int8
  EXPECT_FALSE(shared_terms_fit(glove, 300, 90, 64 * 1024));  // not in a 64 KB block
  glove.tiled = nullptr;
  EXPECT_FALSE(shared_terms_fit(glove, 16, 90, kSmem));
}

}  // namespace
#else
TEST(CudaPlan, MmaChunksStayInOneWave) { GTEST_SKIP() << "the CUDA backend is not built here (no nvcc)"; }
#endif
