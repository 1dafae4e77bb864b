// Word-level operations over the batch search: words <-> ids, then every operation builds one
// QueryBatch (igla/queries.hpp) and makes one search call; the rerank stage, when the searcher
// has one, rescores on the rerank rows.
#include "igla/engine.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "igla/error.hpp"

namespace igla {

namespace {

std::string unknown_message(const std::string& w, const std::vector<std::string>& closest) {
  std::string msg = "unknown word '" + w + "'";
  if (!closest.empty()) {
    msg += " (closest known:";
    for (size_t i = 0; i < closest.size(); ++i) msg += (i ? ", " : " ") + closest[i];
    msg += ")";
  }
  return msg;
}

}  // namespace

UnknownWord::UnknownWord(std::string word, std::vector<std::string> closest)
    : Error(unknown_message(word, closest)), word_(std::move(word)), closest_(std::move(closest)) {}

Engine::Engine(std::shared_ptr<const Index> index, std::shared_ptr<const Searcher> searcher, EngineOptions opts)
    : index_(std::move(index)), searcher_(std::move(searcher)), opts_(opts) {
  if (!index_ || !searcher_) throw Error("Engine: no index or no searcher");
}

Engine::Engine(std::shared_ptr<const Index> index, const SearcherOptions& so, EngineOptions opts)
    : Engine(index, make_searcher(index, so), opts) {}

bool Engine::reranks(const SearchParams& p) const { return index_->rerank() != Rerank::None && p.candidates > 0; }

std::optional<uint32_t> Engine::find(std::string_view word) const {
  if (!opts_.lower) return index_->find(word);
  std::string w(word);
  std::transform(w.begin(), w.end(), w.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return index_->find(w);
}

uint32_t Engine::id(std::string_view word) const {
  if (auto id = find(word)) return *id;
  std::string w(word);
  if (opts_.lower)
    std::transform(w.begin(), w.end(), w.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  throw UnknownWord(w, index_->suggest(w, 3));
}

std::vector<uint32_t> Engine::ids_of(std::span<const std::string> words) const {
  std::vector<uint32_t> ids;
  ids.reserve(words.size());
  for (const auto& w : words) ids.push_back(id(w));
  return ids;
}

std::vector<WordHit> Engine::to_words(std::span<const Hit> hits) const {
  std::vector<WordHit> out;
  out.reserve(hits.size());
  for (const Hit& h : hits) out.push_back({std::string(index_->word(h.id)), h.id, h.score});
  return out;
}

// ---- batch forms ---------------------------------------------------------------------------------

SearchResults Engine::nearest(std::span<const uint32_t> ids, const SearchParams& p) const {
  QueryBuilder qb(*index_, Combine::Sum, opts_.float_form);
  for (uint32_t id : ids) qb.word(id);
  return searcher_->search(qb.batch(), p);
}

SearchResults Engine::nearest_vectors(std::span<const float> x, size_t n, const SearchParams& p) const {
  QueryBuilder qb(*index_, Combine::Sum, opts_.float_form);
  qb.vectors(x, n);
  return searcher_->search(qb.batch(), p);
}

SearchResults Engine::analogies(std::span<const std::array<uint32_t, 3>> abc, AnalogyMode mode,
                                const SearchParams& p) const {
  QueryBuilder qb(*index_, combine_of(mode), opts_.float_form);
  qb.analogies(abc, mode);
  return searcher_->search(qb.batch(), p);
}

SearchResults Engine::most_similar(std::span<const PosNeg> queries, const SearchParams& p) const {
  QueryBuilder qb(*index_, Combine::Sum, opts_.float_form);
  for (const auto& q : queries) qb.most_similar(q.positive, q.negative);
  SearchResults r = searcher_->search(qb.batch(), p);
  // The raw score is sum(+-cos(x, w_i)) = |sum(+-u_i)| * cos(x, sum(+-u_i)); report the cosine to
  // the combined direction, as gensim does (a positive factor: the order is unchanged).
  for (size_t q = 0; q < queries.size(); ++q) {
    std::vector<uint32_t> ids(queries[q].positive);
    ids.insert(ids.end(), queries[q].negative.begin(), queries[q].negative.end());
    const size_t np = queries[q].positive.size();
    double norm2 = 0;
    for (size_t i = 0; i < ids.size(); ++i)
      for (size_t j = 0; j < ids.size(); ++j)
        norm2 += ((i < np) == (j < np) ? 1.0 : -1.0) * (i == j ? 1.0 : cosine(ids[i], ids[j], p));
    const float scale = norm2 > 1e-12 ? static_cast<float>(1.0 / std::sqrt(norm2)) : 1.0f;
    for (uint32_t i = 0; i < r.count[q]; ++i) r.hits[q * r.k + i].score *= scale;
  }
  return r;
}

float Engine::cosine(uint32_t a, uint32_t b, const SearchParams& p) const {
  if (a >= index_->size() || b >= index_->size()) throw Error("word id out of range");
  if (reranks(p)) {
    std::vector<float> ra(index_->float_dims()), rb(index_->float_dims());
    index_->rerank_row(a, ra);
    index_->rerank_row(b, rb);
    double ab = 0, aa = 0, bb = 0;
    for (size_t d = 0; d < ra.size(); ++d)
      ab += double(ra[d]) * rb[d], aa += double(ra[d]) * ra[d], bb += double(rb[d]) * rb[d];
    return aa > 0 && bb > 0 ? static_cast<float>(ab / std::sqrt(aa * bb)) : 0.0f;
  }
  const auto ta = index_->trits(a), tb = index_->trits(b);
  int32_t dot = 0;
  for (size_t d = 0; d < ta.size(); ++d) dot += ta[d] * tb[d];
  return (index_->codes().inv_norms[a] * static_cast<float>(dot)) * index_->codes().inv_norms[b];
}

std::vector<float> Engine::similarities(std::span<const std::pair<uint32_t, uint32_t>> pairs,
                                        const SearchParams& p) const {
  std::vector<float> out;
  out.reserve(pairs.size());
  for (const auto& [a, b] : pairs) out.push_back(cosine(a, b, p));
  return out;
}

std::vector<size_t> Engine::doesnt_match(std::span<const std::vector<uint32_t>> groups, const SearchParams& p) const {
  std::vector<size_t> out;
  out.reserve(groups.size());
  for (const auto& ids : groups) {
    if (ids.size() < 2) throw Error("doesnt_match needs at least two words");
    // gensim: the word least similar to the mean of all unit vectors, i.e. the smallest sum of cosines.
    size_t worst = 0;
    double worst_sum = INFINITY;
    for (size_t i = 0; i < ids.size(); ++i) {
      double s = 0;
      for (size_t j = 0; j < ids.size(); ++j)
        s += i == j ? (index_->nnz(ids[i]) || reranks(p) ? 1.0 : 0.0) : cosine(ids[i], ids[j], p);
      if (s < worst_sum) worst_sum = s, worst = i;
    }
    out.push_back(worst);
  }
  return out;
}

// ---- one query over words ------------------------------------------------------------------------

std::vector<WordHit> Engine::nearest(std::string_view word, const SearchParams& p) const {
  const uint32_t ids[1] = {id(word)};
  return to_words(nearest(ids, p).of(0));
}

std::vector<WordHit> Engine::nearest_vector(std::span<const float> x, const SearchParams& p) const {
  return to_words(nearest_vectors(x, 1, p).of(0));
}

std::vector<WordHit> Engine::nearest_trits(std::span<const int8_t> t, const SearchParams& p,
                                           std::span<const uint32_t> exclude) const {
  QueryBuilder qb(*index_, Combine::Sum, FloatForm::None);
  qb.trits(t, exclude);
  return to_words(searcher_->search(qb.batch(), p).of(0));
}

std::vector<WordHit> Engine::analogy(std::string_view a, std::string_view b, std::string_view c, AnalogyMode mode,
                                     const SearchParams& p) const {
  const std::array<uint32_t, 3> abc[1] = {{id(a), id(b), id(c)}};
  return to_words(analogies(abc, mode, p).of(0));
}

std::vector<WordHit> Engine::most_similar(std::span<const std::string> positive,
                                          std::span<const std::string> negative, const SearchParams& p) const {
  if (positive.empty() && negative.empty()) throw Error("most-similar needs at least one positive or negative word");
  const PosNeg q[1] = {{ids_of(positive), ids_of(negative)}};
  return to_words(most_similar(q, p).of(0));
}

float Engine::similarity(std::string_view a, std::string_view b, const SearchParams& p) const {
  return cosine(id(a), id(b), p);
}

std::string Engine::doesnt_match(std::span<const std::string> words, const SearchParams& p) const {
  if (words.size() < 2) throw Error("doesnt-match needs at least two words");
  const std::vector<uint32_t> groups[1] = {ids_of(words)};
  return std::string(index_->word(groups[0][doesnt_match(groups, p)[0]]));
}

}  // namespace igla
