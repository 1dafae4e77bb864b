// Word-level operations on top of the batch search: similarity, nearest, analogies (clamp, 3CosAdd,
// 3CosMul), most_similar and doesnt_match, each reranked exactly when the index has rerank rows.
#include "igla/engine.hpp"

#include "core/openmp.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "core/rerank.hpp"
#include "igla/error.hpp"

namespace igla {

namespace {

// The float form of a query over words: their rerank rows, weighted.
FloatQuery word_query(const Index& ix, Combine c, std::span<const uint32_t> ids, std::span<const float> w) {
  FloatQuery q;
  q.combine = c;
  std::vector<float> row(ix.float_dims());
  for (size_t i = 0; i < ids.size(); ++i) {
    ix.rerank_row(ids[i], row);
    q.add_term(row, w[i]);
  }
  return q;
}

}  // namespace

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
    : index_(index), searcher_(make_searcher(index.codes(), opts)), threads_(opts.threads) {}

void Engine::run(const QueryBatch& batch, const std::vector<FloatQuery>* fq, const SearchParams& p,
                 SearchResults& out) {
  if (!fq || !reranks()) {
    searcher_->search(batch, p, out);
    return;
  }
  SearchResults cand;
  searcher_->search(batch, {.k = std::max(candidates, p.k), .limit = p.limit}, cand);
  const long nq = static_cast<long>(batch.size());
  out.k = p.k;
  out.hits.assign(batch.size() * p.k, Hit{0, 0.0f});
  out.count.assign(batch.size(), 0);
#pragma omp parallel num_threads(threads_ > 0 ? threads_ : omp_get_max_threads()) if (nq > 8)
  {
    std::vector<Hit> best;
#pragma omp for schedule(dynamic, 16)
    for (long q = 0; q < nq; ++q) {
      rerank_hits(index_, (*fq)[static_cast<size_t>(q)], cand.of(static_cast<size_t>(q)), p.k, best);
      std::copy(best.begin(), best.end(), out.hits.begin() + q * static_cast<long>(p.k));
      out.count[static_cast<size_t>(q)] = static_cast<uint32_t>(best.size());
    }
  }
}

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

float Engine::cosine(uint32_t a, uint32_t b) const {
  if (reranks()) {
    std::vector<float> ra(index_.float_dims()), rb(index_.float_dims());
    index_.rerank_row(a, ra);
    index_.rerank_row(b, rb);
    double ab = 0, aa = 0, bb = 0;
    for (size_t d = 0; d < ra.size(); ++d)
      ab += double(ra[d]) * rb[d], aa += double(ra[d]) * ra[d], bb += double(rb[d]) * rb[d];
    return aa > 0 && bb > 0 ? static_cast<float>(ab / std::sqrt(aa * bb)) : 0.0f;
  }
  const auto ta = index_.trits(a), tb = index_.trits(b);
  int32_t dot = 0;
  for (size_t d = 0; d < ta.size(); ++d) dot += ta[d] * tb[d];
  return (index_.codes().inv_norms[a] * static_cast<float>(dot)) * index_.codes().inv_norms[b];
}

float Engine::similarity(std::string_view a, std::string_view b) const { return cosine(id(a), id(b)); }

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
  if (!reranks()) return nearest_vector(index_.trits(w), k, excl);
  QueryBatch batch(index_.dims());
  batch.add_nearest(index_.trits(w), excl);
  const float one[1] = {1.0f};
  const std::vector<FloatQuery> fq{word_query(index_, Combine::Sum, excl, one)};
  SearchResults r;
  run(batch, &fq, {.k = k}, r);
  return to_words(r.of(0));
}

std::vector<WordHit> Engine::nearest_float(std::span<const float> x, size_t k, std::span<const uint32_t> excl) {
  if (x.size() != index_.float_dims())
    throw Error("the query vector has " + std::to_string(x.size()) + " values, the index's float vectors have " +
                std::to_string(index_.float_dims()) + " dims");
  for (float v : x)
    if (!std::isfinite(v)) throw Error("the query vector holds a value that is not a finite number");
  std::vector<int8_t> t(index_.dims());
  index_.transform().quantize(x, t);
  QueryBatch batch(index_.dims());
  batch.add_nearest(t, excl);
  std::vector<FloatQuery> fq(1);
  fq[0].add_term(x, 1.0f);
  SearchResults r;
  run(batch, &fq, {.k = k}, r);
  return to_words(r.of(0));
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
  const std::array<uint32_t, 3> abc[1] = {{id(a), id(b), id(c)}};
  const SearchResults r = analogies(abc, mode, {.k = k});
  return to_words(r.of(0));
}

SearchResults Engine::analogies(std::span<const std::array<uint32_t, 3>> abc, AnalogyMode mode, const SearchParams& p) {
  QueryBatch batch = make_batch(index_.dims(), mode);
  std::vector<FloatQuery> fq;
  const bool exact = reranks() && mode != AnalogyMode::Clamp;  // clamp is a ternary operation only
  const float w_add[3] = {-1.0f, 1.0f, 1.0f}, w_mul[3] = {1.0f, 1.0f, 1.0f};
  for (const auto& q : abc) {
    add_analogy_query(batch, q[0], q[1], q[2], mode);
    if (exact)
      fq.push_back(word_query(index_, mode == AnalogyMode::Mul ? Combine::CosMul : Combine::Sum, q,
                              mode == AnalogyMode::Mul ? w_mul : w_add));
  }
  SearchResults r;
  run(batch, exact ? &fq : nullptr, p, r);
  return r;
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
  std::vector<FloatQuery> fq;
  if (reranks()) fq.push_back(word_query(index_, Combine::Sum, ids, sign));
  SearchResults r;
  run(batch, &fq, {.k = k}, r);
  // The raw score is sum(+-cos(x, w_i)) = |sum(+-u_i)| * cos(x, sum(+-u_i)); report the cosine to
  // the combined direction, as gensim does (a positive factor: the order is unchanged).
  double norm2 = 0;
  for (size_t i = 0; i < ids.size(); ++i)
    for (size_t j = 0; j < ids.size(); ++j) norm2 += sign[i] * sign[j] * (i == j ? 1.0 : cosine(ids[i], ids[j]));
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
    for (size_t j = 0; j < ids.size(); ++j)
      s += i == j ? (index_.nnz(ids[i]) || reranks() ? 1.0 : 0.0) : cosine(ids[i], ids[j]);
    if (s < worst_sum) worst_sum = s, worst = i;
  }
  return std::string(index_.word(ids[worst]));
}

}  // namespace igla
