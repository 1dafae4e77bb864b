// igla: word-level operations (what the CLI, the server and a gensim user call): words <-> ids,
// and nearest, analogy, most_similar, similarity and doesnt_match, each in a batch form over the
// batch search API (igla/search.hpp, igla/queries.hpp) and a one-query form over words.
//
// Two-stage search: with rerank rows in the index and params.candidates > 0, the searcher's rerank
// stage rescores each query's ternary candidates with float math (make_searcher adds the stage).
//
// Thread-safety: an Engine is immutable after construction; every method is const and any number
// of threads may call them at once (the searcher is reentrant, the index is shared and read-only).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "igla/index.hpp"
#include "igla/queries.hpp"
#include "igla/search.hpp"

namespace igla {

struct WordHit {
  std::string word;
  uint32_t id;
  float score;
};

struct EngineOptions {
  bool lower = false;  // fold input words to lower case (ASCII) before lookup
  // Where queries' float forms come from: Auto (the rerank rows when the index has them) for the
  // ternary searchers, Float32 for the float peer (backend "float").
  FloatForm float_form = FloatForm::Auto;
};

// most_similar's input in ids.
struct PosNeg {
  std::vector<uint32_t> positive, negative;
};

class Engine {
 public:
  // Over a searcher made for `index` (make_searcher(index, ...)).
  Engine(std::shared_ptr<const Index> index, std::shared_ptr<const Searcher> searcher, EngineOptions opts = {});
  // Makes the searcher itself.
  explicit Engine(std::shared_ptr<const Index> index, const SearcherOptions& so = {}, EngineOptions opts = {});

  const Index& index() const { return *index_; }
  const std::shared_ptr<const Index>& index_ptr() const { return index_; }
  const Searcher& searcher() const { return *searcher_; }
  const EngineOptions& options() const { return opts_; }

  // True when calls with `p` rescore on rerank rows: the index has them and p.candidates > 0.
  bool reranks(const SearchParams& p) const;

  // ---- words <-> ids
  std::optional<uint32_t> find(std::string_view word) const;  // after --lower folding
  uint32_t id(std::string_view word) const;                    // throws UnknownWord
  std::vector<WordHit> to_words(std::span<const Hit> hits) const;

  // ---- batch forms (over ids; one search call each)
  SearchResults nearest(std::span<const uint32_t> ids, const SearchParams& p) const;
  // n float vectors of float_dims values, quantized by the index's transform in one pass.
  SearchResults nearest_vectors(std::span<const float> x, size_t n, const SearchParams& p) const;
  SearchResults analogies(std::span<const std::array<uint32_t, 3>> abc, AnalogyMode mode, const SearchParams& p) const;
  // Scores are cosines to the combined direction, as gensim reports them.
  SearchResults most_similar(std::span<const PosNeg> queries, const SearchParams& p) const;
  // Cosine of each pair: on the rerank rows when reranks(p), else on the ternary codes.
  std::vector<float> similarities(std::span<const std::pair<uint32_t, uint32_t>> pairs, const SearchParams& p) const;
  // For each group (>= 2 words): the position of the word farthest from the others (gensim).
  std::vector<size_t> doesnt_match(std::span<const std::vector<uint32_t>> groups, const SearchParams& p) const;

  // ---- one query over words (unknown words throw UnknownWord)
  std::vector<WordHit> nearest(std::string_view word, const SearchParams& p) const;
  std::vector<WordHit> nearest_vector(std::span<const float> x, const SearchParams& p) const;
  std::vector<WordHit> nearest_trits(std::span<const int8_t> t, const SearchParams& p,
                                     std::span<const uint32_t> exclude = {}) const;
  std::vector<WordHit> analogy(std::string_view a, std::string_view b, std::string_view c, AnalogyMode mode,
                               const SearchParams& p) const;
  std::vector<WordHit> most_similar(std::span<const std::string> positive, std::span<const std::string> negative,
                                    const SearchParams& p) const;
  float similarity(std::string_view a, std::string_view b, const SearchParams& p) const;
  float cosine(uint32_t a, uint32_t b, const SearchParams& p) const;
  std::string doesnt_match(std::span<const std::string> words, const SearchParams& p) const;

 private:
  std::shared_ptr<const Index> index_;
  std::shared_ptr<const Searcher> searcher_;
  EngineOptions opts_;
  std::vector<uint32_t> ids_of(std::span<const std::string> words) const;
};

}  // namespace igla
