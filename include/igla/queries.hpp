// igla: building query batches from what users have — word ids, float vectors, ternary vectors,
// analogies and most_similar's positives and negatives — each with its exclusions.
//
// A query gets the ternary terms the backends scan and, where the index can rescore, the float
// form the rerank stage needs (FloatForm). Builders read the index only; one builder is used by
// one thread at a time, and any number of builders may read one index at once.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "igla/index.hpp"
#include "igla/search.hpp"

namespace igla {

// Analogy "a is to b as c is to ?" (b - a + c), the inputs excluded.
enum class AnalogyMode {
  Clamp,  // the seed: b - a + c clamped back to one ternary vector (ternary only, never reranked)
  Add,    // 3CosAdd: cos(x, b) - cos(x, a) + cos(x, c)
  Mul,    // 3CosMul (Levy & Goldberg 2014)
};
AnalogyMode parse_analogy_mode(std::string_view name);  // "clamp" | "add" | "mul"; throws Error
const char* analogy_mode_name(AnalogyMode m);
inline Combine combine_of(AnalogyMode m) { return m == AnalogyMode::Mul ? Combine::CosMul : Combine::Sum; }

// Where a query's float form comes from.
enum class FloatForm : uint8_t {
  Auto,     // the rerank rows when the index has them, else none
  Rows,     // the rerank rows (Error if absent)
  Float32,  // the float32 vectors kept in the index (Error if absent): the float peer's queries
  None,     // ternary only
};

class QueryBuilder {
 public:
  // A builder of queries over `ix` (which must outlive it); `c` must be CosMul for 3CosMul analogies.
  explicit QueryBuilder(const Index& ix, Combine c = Combine::Sum, FloatForm f = FloatForm::Auto);
  // The same, building into `storage`'s memory (its contents dropped, its vectors' capacity kept):
  // batch after batch of a similar size written into pages already faulted in (the GPU machine's
  // host took 10-12 ms to fault in 17 MB of fresh floats, 2.2 ms to write them again; run 78).
  QueryBuilder(const Index& ix, Combine c, FloatForm f, QueryBatch&& storage);

  // Nearest words of word `id` (itself excluded unless `exclude_self` is false).
  QueryBuilder& word(uint32_t id, bool exclude_self = true);
  // Nearest words of n float vectors (n x float_dims, row-major): transformed and quantized as the
  // index was, in one pass; the float form is the vector itself. Throws Error on a wrong size or
  // a value that is not finite, naming the row.
  QueryBuilder& vectors(std::span<const float> x, size_t n, std::span<const uint32_t> excl = {});
  // Nearest words of a ternary vector (dims values in {-1, 0, 1}); no float form.
  QueryBuilder& trits(std::span<const int8_t> t, std::span<const uint32_t> excl = {});
  // b - a + c; the combine of the builder must match the mode (Mul: CosMul, else Sum).
  QueryBuilder& analogy(uint32_t a, uint32_t b, uint32_t c, AnalogyMode mode);
  // Many analogies b - a + c at once, abc[i] = {a, b, c}: the same queries, bit for bit, as
  // analogy() called for each in order, but the batch is sized once and filled in parallel
  // slices on the process-wide thread pool (eval's 19,544 questions: NOTES v14). Every id is
  // checked first: on an id out of range nothing is added.
  QueryBuilder& analogies(std::span<const std::array<uint32_t, 3>> abc, AnalogyMode mode);
  // gensim's most_similar: sum of cosines to the positives minus those to the negatives; all
  // inputs excluded. Needs at least one word.
  QueryBuilder& most_similar(std::span<const uint32_t> positive, std::span<const uint32_t> negative);

  QueryBatch& batch() { return b_; }
  QueryBatch take() { return std::move(b_); }

 private:
  const Index& ix_;
  FloatForm form_;
  QueryBatch b_;
  std::vector<float> row_;  // one float row, reused
  void add(std::span<const uint32_t> ids, std::span<const float> signs, std::span<const uint32_t> excl);
  bool floats() const { return form_ != FloatForm::None; }
  void float_row(uint32_t id, std::span<float> out) const;
};

}  // namespace igla
