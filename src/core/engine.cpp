// Word-level operations on top of the batch search: similarity, nearest, analogies (clamp, 3CosAdd,
// 3CosMul), most_similar and doesnt_match.
#include "igla/engine.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "igla/error.hpp"

namespace igla {

AnalogyMode parse_analogy_mode(std::string_view name) {
  if (name == "clamp") return AnalogyMode::Clamp;
  if (name == "add") return AnalogyMode::Add;
  if (name == "mul") return AnalogyMode::Mul;
  throw Error("unknown analogy mode '" + std::string(name) + "' (expected clamp, add or mul)");
}

const char* analogy_mode_name(AnalogyMode m) {
  switch (m) {
    case AnalogyMode::Clamp: return "clamp";
    case AnalogyMode::Add: return "add";
    case AnalogyMode::Mul: return "mul";
  }
  return "?";
}

Engine::Engine(const Index& index, const SearcherOptions& opts)
    : index_(index), searcher_(make_searcher(index.codes(), opts)) {}

uint32_t Engine::id(std::string_view word) const {
  std::string w(word);
  if (lower)
    std::transform(w.begin(), w.end(), w.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (auto id = index_.find(w)) return *id;
  std::string msg = "unknown word '" + w + "'";
  const auto close = index_.suggest(w, 3);
  if (!close.empty()) {
    msg += " (closest known:";
    for (size_t i = 0; i < close.size(); ++i) msg += (i ? ", " : " ") + close[i];
    msg += ")";
  }
  throw Error(msg);
}

static float cosine(const Index& ix, uint32_t a, uint32_t b) {
  const auto ta = ix.trits(a), tb = ix.trits(b);
  int32_t dot = 0;
  for (size_t d = 0; d < ta.size(); ++d) dot += ta[d] * tb[d];
  return (ix.codes().inv_norms[a] * static_cast<float>(dot)) * ix.codes().inv_norms[b];
}

float Engine::similarity(std::string_view a, std::string_view b) const { return cosine(index_, id(a), id(b)); }

std::vector<WordHit> Engine::to_words(std::span<const Hit> hits) const {
  std::vector<WordHit> out;
  out.reserve(hits.size());
  for (const Hit& h : hits) out.push_back({std::string(index_.word(h.id)), h.id, h.score});
  return out;
}

std::vector<WordHit> Engine::nearest_vector(std::span<const int8_t> trits, size_t k, std::span<const uint32_t> excl) {
  QueryBatch batch(index_.dims());
  batch.add_nearest(trits, excl);
  SearchResults r;
  searcher_->search(batch, {.k = k}, r);
  return to_words(r.of(0));
}

std::vector<WordHit> Engine::nearest(std::string_view word, size_t k) {
  const uint32_t w = id(word);
  const uint32_t excl[1] = {w};
  return nearest_vector(index_.trits(w), k, excl);
}

QueryBatch Engine::make_batch(uint32_t dims, AnalogyMode mode) {
  return QueryBatch(dims, mode == AnalogyMode::Mul ? Combine::CosMul : Combine::Sum);
}

void Engine::add_analogy_query(QueryBatch& batch, uint32_t a, uint32_t b, uint32_t c, AnalogyMode mode) const {
  const uint32_t excl[3] = {a, b, c};
  const auto ta = index_.trits(a), tb = index_.trits(b), tc = index_.trits(c);
  const float* inv = index_.codes().inv_norms;
  if (mode == AnalogyMode::Clamp) {  // the seed: b - a + c clamped back to a ternary vector
    std::vector<int32_t> sum(index_.dims());
    for (size_t d = 0; d < sum.size(); ++d) sum[d] = tb[d] - ta[d] + tc[d];
    std::vector<int8_t> q(sum.size());
    clamp_trits(sum, q);
    batch.add_nearest(q, excl);
    return;
  }
  const std::span<const int8_t> terms[3] = {ta, tb, tc};
  const float w_add[3] = {-inv[a], inv[b], inv[c]};  // cos(x,b) - cos(x,a) + cos(x,c)
  const float w_mul[3] = {inv[a], inv[b], inv[c]};
  batch.add_query(terms, mode == AnalogyMode::Mul ? std::span<const float>(w_mul) : std::span<const float>(w_add),
                  excl);
}

std::vector<WordHit> Engine::analogy(std::string_view a, std::string_view b, std::string_view c, size_t k,
                                     AnalogyMode mode) {
  const uint32_t ia = id(a), ib = id(b), ic = id(c);
  QueryBatch batch = make_batch(index_.dims(), mode);
  add_analogy_query(batch, ia, ib, ic, mode);
  SearchResults r;
  searcher_->search(batch, {.k = k}, r);
  return to_words(r.of(0));
}

std::vector<WordHit> Engine::most_similar(std::span<const std::string> positive, std::span<const std::string> negative,
                                          size_t k) {
  if (positive.empty() && negative.empty()) throw Error("most-similar needs at least one positive or negative word");
  std::vector<uint32_t> ids;
  std::vector<float> sign;
  for (auto& w : positive) ids.push_back(id(w)), sign.push_back(1.0f);
  for (auto& w : negative) ids.push_back(id(w)), sign.push_back(-1.0f);
  std::vector<std::vector<int8_t>> trits;
  std::vector<std::span<const int8_t>> terms;
  std::vector<float> weights;
  for (size_t i = 0; i < ids.size(); ++i) trits.push_back(index_.trits(ids[i]));
  for (size_t i = 0; i < ids.size(); ++i) {
    terms.emplace_back(trits[i]);
    weights.push_back(sign[i] * index_.codes().inv_norms[ids[i]]);
  }
  QueryBatch batch(index_.dims());
  batch.add_query(terms, weights, ids);
  SearchResults r;
  searcher_->search(batch, {.k = k}, r);
  // The raw score is sum(+-cos(x, w_i)) = |sum(+-u_i)| * cos(x, sum(+-u_i)); report the cosine to
  // the combined direction, as gensim does (a positive factor: the order is unchanged).
  double norm2 = 0;
  for (size_t i = 0; i < ids.size(); ++i)
    for (size_t j = 0; j < ids.size(); ++j) norm2 += sign[i] * sign[j] * (i == j ? 1.0 : cosine(index_, ids[i], ids[j]));
  const float scale = norm2 > 1e-12 ? static_cast<float>(1.0 / std::sqrt(norm2)) : 1.0f;
  auto out = to_words(r.of(0));
  for (auto& h : out) h.score *= scale;
  return out;
}

std::string Engine::doesnt_match(std::span<const std::string> words) const {
  if (words.size() < 2) throw Error("doesnt-match needs at least two words");
  std::vector<uint32_t> ids;
  for (auto& w : words) ids.push_back(id(w));
  // gensim: the word least similar to the mean of all unit vectors, i.e. the smallest sum of cosines.
  size_t worst = 0;
  double worst_sum = INFINITY;
  for (size_t i = 0; i < ids.size(); ++i) {
    double s = 0;
    for (size_t j = 0; j < ids.size(); ++j) s += i == j ? (index_.nnz(ids[i]) ? 1.0 : 0.0) : cosine(index_, ids[i], ids[j]);
    if (s < worst_sum) worst_sum = s, worst = i;
  }
  return std::string(index_.word(ids[worst]));
}

}  // namespace igla
