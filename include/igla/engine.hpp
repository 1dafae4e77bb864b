// igla: word-level operations (what the CLI and a gensim user call) on an index and a searcher.
#pragma once

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

  // Word id; throws Error "unknown word 'x' (closest known: a, b, c)".
  uint32_t id(std::string_view word) const;

  float similarity(std::string_view a, std::string_view b) const;
  std::vector<WordHit> nearest(std::string_view word, size_t k);
  std::vector<WordHit> nearest_vector(std::span<const int8_t> trits, size_t k,
                                      std::span<const uint32_t> exclude = {});
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

  std::vector<WordHit> to_words(std::span<const Hit> hits) const;

 private:
  const Index& index_;
  std::unique_ptr<Searcher> searcher_;
};

}  // namespace igla
