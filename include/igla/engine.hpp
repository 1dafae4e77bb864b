// igla: word-level operations (what the CLI and a gensim user call) on an index and a searcher.
//
// Two-stage search: when the index holds rerank rows (RRI8 / RF16) and `candidates` > 0, every
// nearest / analogy (add, mul) / most_similar query runs the ternary scan for its top
// `candidates` words, then rescores those with float math on their rerank rows and returns the
// best k. Without rerank rows, or with candidates = 0, the ternary scores are the answer.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "igla/index.hpp"
#include "igla/search.hpp"

namespace igla {

enum class AnalogyMode { Clamp, Add, Mul };
AnalogyMode parse_analogy_mode(std::string_view name);  // "clamp" | "add" | "mul"; throws Error
const char* analogy_mode_name(AnalogyMode m);

// Ternary candidates per query for the exact rerank: on GloVe-100d (Google analogies, 30,000
// words) the default rotated codes gain nothing past this, seed / centered codes < 0.3 points
// (docs/ACCURACY.md).
inline constexpr size_t kDefaultCandidates = 50;

struct FloatQuery;  // src/core/rerank.hpp

struct WordHit {
  std::string word;
  uint32_t id;
  float score;
};

class Engine {
 public:
  // The engine borrows the index; it must outlive the engine.
  explicit Engine(const Index& index, const SearcherOptions& opts = {});

  const Index& index() const { return index_; }
  Searcher& searcher() { return *searcher_; }

  bool lower = false;  // --lower: fold input words to lower case before lookup
  size_t candidates = kDefaultCandidates;  // --candidates: two-stage search width (0: ternary only)

  // True when queries are reranked: the index has rerank rows and candidates > 0.
  bool reranks() const { return index_.rerank() != Rerank::None && candidates > 0; }

  // Word id; throws Error "unknown word 'x' (closest known: a, b, c)".
  uint32_t id(std::string_view word) const;

  float similarity(std::string_view a, std::string_view b) const;
  // Cosine of two words: on their rerank rows when reranks(), else on their ternary codes.
  float cosine(uint32_t a, uint32_t b) const;
  std::vector<WordHit> nearest(std::string_view word, size_t k);
  std::vector<WordHit> nearest_vector(std::span<const int8_t> trits, size_t k,
                                      std::span<const uint32_t> exclude = {});
  // Nearest words of an arbitrary float vector (float_dims() values): transformed and quantized
  // as the index was, searched, and reranked against the vector itself when reranks().
  std::vector<WordHit> nearest_float(std::span<const float> x, size_t k, std::span<const uint32_t> exclude = {});
  // "a is to b as c is to ?" (b - a + c); inputs excluded.
  std::vector<WordHit> analogy(std::string_view a, std::string_view b, std::string_view c, size_t k,
                               AnalogyMode mode = AnalogyMode::Add);
  // gensim's most_similar: rank by sum of cos with positives minus sum of cos with negatives.
  std::vector<WordHit> most_similar(std::span<const std::string> positive,
                                    std::span<const std::string> negative, size_t k);
  // gensim's doesnt_match: the word farthest from the mean of the others' unit vectors.
  std::string doesnt_match(std::span<const std::string> words) const;

  // Builds the query of an analogy over word ids (used by evaluation to batch many).
  void add_analogy_query(QueryBatch& batch, uint32_t a, uint32_t b, uint32_t c, AnalogyMode mode) const;
  static QueryBatch make_batch(uint32_t dims, AnalogyMode mode);
  // A batch of analogies (a, b, c word ids; inputs excluded) through both stages: the top k per
  // question among the first `limit` words (SearchParams).
  SearchResults analogies(std::span<const std::array<uint32_t, 3>> abc, AnalogyMode mode, const SearchParams& p);

  std::vector<WordHit> to_words(std::span<const Hit> hits) const;

 private:
  const Index& index_;
  std::unique_ptr<Searcher> searcher_;
  int threads_ = 0;
  // The ternary stage, then (when reranks() and `fq` is given, one per query) the exact one.
  void run(const QueryBatch& batch, const std::vector<FloatQuery>* fq, const SearchParams& p, SearchResults& out);
};

}  // namespace igla
