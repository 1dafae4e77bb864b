// QueryBuilder::analogies (many analogies in parallel slices, each distinct word's rows made once
// where words repeat) against analogy() called once per question: every field of the batch bit
// for bit, on odd sizes, every mode and float form, after other queries, and nothing added on a
// bad id.
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <random>
#include <vector>

#include "igla/error.hpp"
#include "igla/queries.hpp"
#include "test_util.hpp"

using namespace igla;

namespace {

template <typename T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

void expect_same(const QueryBatch& a, const QueryBatch& b, const std::string& what) {
  EXPECT_EQ(a.dims, b.dims) << what;
  EXPECT_EQ(a.combine, b.combine) << what;
  EXPECT_EQ(a.float_dims, b.float_dims) << what;
  EXPECT_TRUE(same_bits(a.trits, b.trits)) << what << ": trits";
  EXPECT_TRUE(same_bits(a.weights, b.weights)) << what << ": weights";
  EXPECT_EQ(a.term_offsets, b.term_offsets) << what;
  EXPECT_EQ(a.exclude, b.exclude) << what;
  EXPECT_EQ(a.exclude_offsets, b.exclude_offsets) << what;
  EXPECT_TRUE(same_bits(a.float_terms, b.float_terms)) << what << ": float terms";
  EXPECT_TRUE(same_bits(a.float_weights, b.float_weights)) << what << ": float weights";
  EXPECT_EQ(a.has_float, b.has_float) << what;
  EXPECT_NO_THROW(a.validate()) << what;
}

std::vector<std::array<uint32_t, 3>> random_questions(size_t n, size_t words, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<uint32_t> id(0, static_cast<uint32_t>(words - 1));
  std::vector<std::array<uint32_t, 3>> qs(n);
  for (auto& q : qs) q = {id(rng), id(rng), id(rng)};
  return qs;
}

}  // namespace

TEST(QueryBuilderBulk, AnalogiesEqualOneAtATimeBitForBit) {
  const FloatVectors v = igla::testing_util::random_vectors(613, 37, 5);
  for (Rerank rr : {Rerank::Int8, Rerank::F16, Rerank::None}) {
    QuantParams qp;  // rotated codes of 64 dims, or seed codes of 37 (a partial plane word)
    qp.method = rr == Rerank::Int8 ? Quantization::Rotated : Quantization::Seed;
    qp.rerank = rr;
    const Index ix = Index::build(v, qp, /*keep_float=*/true);
    for (FloatForm form : {FloatForm::Auto, FloatForm::Float32, FloatForm::None}) {
      for (AnalogyMode mode : {AnalogyMode::Add, AnalogyMode::Mul, AnalogyMode::Clamp}) {
        // 700, 1001, 3000: past 2,048 terms each distinct word's rows are made once and copied
        // (3000: 7 words, each repeated hundreds of times); below, made per term.
        for (size_t n : {size_t{0}, size_t{1}, size_t{7}, size_t{255}, size_t{256}, size_t{257}, size_t{700},
                         size_t{1001}, size_t{3000}}) {
          const auto qs = random_questions(n, n == 3000 ? 7 : ix.size(), 11 + n);
          const std::string what = "rerank " + std::to_string(int(rr)) + " form " + std::to_string(int(form)) +
                                   " mode " + analogy_mode_name(mode) + " n " + std::to_string(n);
          QueryBuilder one(ix, combine_of(mode), form), bulk(ix, combine_of(mode), form);
          if (mode != AnalogyMode::Mul) {  // after queries of another shape: offsets carry on
            one.word(3);
            bulk.word(3);
          }
          for (const auto& q : qs) one.analogy(q[0], q[1], q[2], mode);
          bulk.analogies(qs, mode);
          expect_same(bulk.batch(), one.batch(), what);
          // In two calls (the second appended to the first's terms and exclusions).
          QueryBuilder two(ix, combine_of(mode), form);
          if (mode != AnalogyMode::Mul) two.word(3);
          const std::span<const std::array<uint32_t, 3>> all(qs);
          two.analogies(all.first(n / 3), mode).analogies(all.subspan(n / 3), mode);
          expect_same(two.batch(), one.batch(), what + " (two calls)");
        }
      }
    }
  }
}

// Past 2,048 terms but with few repeats (3,000 terms over 6,000 words: ~2,400 distinct), the rows
// are made per term again; the same bits either way.
TEST(QueryBuilderBulk, AnalogiesWithFewRepeatsEqualOneAtATime) {
  const FloatVectors v = igla::testing_util::random_vectors(6000, 40, 8);
  QuantParams qp;
  qp.rerank = Rerank::Int8;
  const Index ix = Index::build(v, qp, false);
  for (size_t n : {size_t{1000}, size_t{683}}) {
    const auto qs = random_questions(n, ix.size(), 5 + n);
    QueryBuilder one(ix), bulk(ix);
    for (const auto& q : qs) one.analogy(q[0], q[1], q[2], AnalogyMode::Add);
    bulk.analogies(qs, AnalogyMode::Add);
    expect_same(bulk.batch(), one.batch(), std::to_string(n) + " analogies over 6,000 words");
  }
}

// A builder over another batch's memory (QueryBuilder's storage constructor) drops that batch's
// contents, whatever its combine, float form or queries, and builds the same bits as a fresh
// builder, in the same memory where it holds the new batch.
// The distinct words' scratch is kept between batches (a process-wide pool, its slots reset after
// each): batches one after another, on two indexes of different sizes, with heavy repeats over
// overlapping words and with few repeats (whose distinct words are dropped mid-way) between them,
// each equal to building one at a time (a slot left set would point a word at another's rows).
TEST(QueryBuilderBulk, SuccessiveBatchesOverOtherWordsAndIndexesEqualOneAtATime) {
  QuantParams qp;
  qp.rerank = Rerank::Int8;
  const Index small = Index::build(igla::testing_util::random_vectors(900, 24, 21), qp, false);
  const Index large = Index::build(igla::testing_util::random_vectors(5000, 24, 22), qp, false);
  std::mt19937_64 rng(23);
  for (int round = 0; round < 6; ++round) {
    const Index& ix = round % 2 && round != 3 ? small : large;  // round 3 over 5,000 words: few repeats
    std::vector<std::array<uint32_t, 3>> qs(round == 3 ? 1000 : 1500);
    const uint32_t base = static_cast<uint32_t>(5 * round);  // 15 of 20 words shared with the round before
    for (auto& q : qs)
      for (uint32_t& id : q)  // round 3: few repeats; else 20 words from a moving base
        id = round == 3 ? static_cast<uint32_t>(rng() % ix.size()) : base + static_cast<uint32_t>(rng() % 20);
    QueryBuilder one(ix), bulk(ix);
    for (const auto& q : qs) one.analogy(q[0], q[1], q[2], AnalogyMode::Add);
    bulk.analogies(qs, AnalogyMode::Add);
    expect_same(bulk.batch(), one.batch(), "round " + std::to_string(round));
  }
}

TEST(QueryBuilderBulk, BuildingIntoAnOldBatchKeepsItsMemoryAndNoneOfItsContents) {
  const FloatVectors v = igla::testing_util::random_vectors(900, 40, 4);
  QuantParams qp;
  qp.rerank = Rerank::Int8;
  const Index ix = Index::build(v, qp, /*keep_float=*/true);
  const auto big = random_questions(1500, ix.size(), 1), small = random_questions(999, ix.size(), 2);
  for (AnalogyMode old_mode : {AnalogyMode::Mul, AnalogyMode::Add})
    for (FloatForm old_form : {FloatForm::Float32, FloatForm::None}) {
      QueryBuilder first(ix, combine_of(old_mode), old_form);
      first.analogies(big, old_mode);
      QueryBatch old = first.take();
      const int8_t* trits = old.trits.data();
      const float* floats = old.float_terms.data();
      QueryBuilder fresh(ix), reused(ix, Combine::Sum, FloatForm::Auto, std::move(old));
      fresh.word(7);
      reused.word(7);
      fresh.analogies(small, AnalogyMode::Add);
      reused.analogies(small, AnalogyMode::Add);
      const std::string what = std::string("over a ") + analogy_mode_name(old_mode) + " batch";
      expect_same(reused.batch(), fresh.batch(), what);
      EXPECT_EQ(reused.batch().trits.data(), trits) << what << ": the trits moved to new memory";
      if (old_form == FloatForm::Float32) {
        EXPECT_EQ(reused.batch().float_terms.data(), floats) << what << ": the float terms moved to new memory";
      }
    }
}

TEST(QueryBuilderBulk, FloatFormAfterTernaryOnlyQueriesIsZeroFilled) {
  const FloatVectors v = igla::testing_util::random_vectors(300, 24, 9);
  QuantParams qp;
  qp.rerank = Rerank::Int8;
  const Index ix = Index::build(v, qp, false);
  const auto qs = random_questions(600, ix.size(), 3);
  QueryBuilder one(ix), bulk(ix);
  const std::vector<int8_t> t = ix.trits(5);
  one.trits(t);  // no float form: float_dims is set by the first analogy
  bulk.trits(t);
  for (const auto& q : qs) one.analogy(q[0], q[1], q[2], AnalogyMode::Add);
  bulk.analogies(qs, AnalogyMode::Add);
  expect_same(bulk.batch(), one.batch(), "trits, then 600 analogies");
  EXPECT_EQ(bulk.batch().has_float.front(), 0);
}

TEST(QueryBuilderBulk, BadIdAddsNothingAndWrongModeThrows) {
  const FloatVectors v = igla::testing_util::random_vectors(100, 16, 1);
  QuantParams qp;
  qp.rerank = Rerank::Int8;
  const Index ix = Index::build(v, qp, false);
  auto qs = random_questions(700, ix.size(), 4);
  qs[650][1] = 100;  // one past the last word
  QueryBuilder qb(ix);
  qb.word(1);
  try {
    qb.analogies(qs, AnalogyMode::Add);
    FAIL() << "no error for word id 100 of 100 words";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("word id 100 is out of range"), std::string::npos) << e.what();
  }
  EXPECT_EQ(qb.batch().size(), 1u);
  EXPECT_EQ(qb.batch().n_terms(), 1u);
  EXPECT_THROW(qb.analogies(std::span(qs).first(2), AnalogyMode::Mul), Error);  // a Sum batch
  EXPECT_EQ(qb.batch().size(), 1u);
}
