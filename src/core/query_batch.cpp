// QueryBatch builders and the int8 reference search every fast path is held to.
#include <algorithm>
#include <cmath>
#include <queue>

#include "core/float_term.hpp"
#include "igla/error.hpp"
#include "igla/search.hpp"

namespace igla {

namespace {
void check_dims(std::span<const int8_t> t, uint32_t dims) {
  if (t.size() != dims)
    throw Error("query has " + std::to_string(t.size()) + " dimensions, the index has " + std::to_string(dims));
}
}  // namespace

void QueryBatch::add_nearest(std::span<const int8_t> q, std::span<const uint32_t> excl) {
  check_dims(q, dims);
  const std::span<const int8_t> terms[1] = {q};
  const float w[1] = {inv_norm_from_nnz(count_nonzero(q))};
  add_query(terms, w, excl);
}

void QueryBatch::add_query(std::span<const std::span<const int8_t>> terms, std::span<const float> w,
                           std::span<const uint32_t> excl) {
  add_query(terms, w, {}, {}, excl);
}

void QueryBatch::add_query(std::span<const std::span<const int8_t>> terms, std::span<const float> w,
                           std::span<const std::span<const float>> fterms, std::span<const float> fw,
                           std::span<const uint32_t> excl) {
  if (terms.size() != w.size() || terms.empty()) throw Error("a query needs one weight per term, and a term");
  if (combine == Combine::CosMul && terms.size() != 3) throw Error("3CosMul takes exactly three terms (a, b, c)");
  const bool with_float = !fterms.empty();
  if (with_float) {
    if (fterms.size() != terms.size() || fw.size() != terms.size())
      throw Error("a query's float form needs one vector and one weight per term");
    const uint32_t fd = static_cast<uint32_t>(fterms[0].size());
    if (fd == 0) throw Error("a query's float form has no values");
    for (auto f : fterms)
      if (f.size() != fd) throw Error("a query's float terms differ in length");
    if (float_dims == 0) {  // the first float query: earlier terms get zero float forms
      float_dims = fd;
      float_terms.assign(n_terms() * fd, 0.0f);
      float_weights.assign(n_terms(), 0.0f);
    } else if (fd != float_dims) {
      throw Error("query float form has " + std::to_string(fd) + " values, the batch's have " +
                  std::to_string(float_dims));
    }
  }
  for (auto t : terms) check_dims(t, dims);
  for (auto t : terms) trits.insert(trits.end(), t.begin(), t.end());
  if (float_dims) {
    for (size_t i = 0; i < terms.size(); ++i) {
      if (!with_float) {
        float_terms.insert(float_terms.end(), float_dims, 0.0f);
        float_weights.push_back(0.0f);
        continue;
      }
      const size_t at = float_terms.size();
      float_terms.resize(at + float_dims);
      unit_float_term(fterms[i].data(), float_dims, float_terms.data() + at);
      float_weights.push_back(fw[i]);
    }
  }
  has_float.push_back(with_float ? 1 : 0);
  weights.insert(weights.end(), w.begin(), w.end());
  term_offsets.push_back(static_cast<uint32_t>(weights.size()));
  exclude.insert(exclude.end(), excl.begin(), excl.end());
  exclude_offsets.push_back(static_cast<uint32_t>(exclude.size()));
}

bool QueryBatch::any_float() const {
  return float_dims && std::any_of(has_float.begin(), has_float.end(), [](uint8_t f) { return f != 0; });
}

void QueryBatch::append(const QueryBatch& o) {
  if (o.dims != dims || o.combine != combine) throw Error("append: batches of different dims or combine");
  o.validate();
  if (o.float_dims && float_dims && o.float_dims != float_dims) throw Error("append: batches of different float dims");
  if (o.float_dims && !float_dims) {
    float_dims = o.float_dims;
    float_terms.assign(n_terms() * float_dims, 0.0f);
    float_weights.assign(n_terms(), 0.0f);
  }
  const uint32_t t0 = static_cast<uint32_t>(n_terms()), e0 = static_cast<uint32_t>(exclude.size());
  trits.insert(trits.end(), o.trits.begin(), o.trits.end());
  weights.insert(weights.end(), o.weights.begin(), o.weights.end());
  for (size_t i = 1; i < o.term_offsets.size(); ++i) term_offsets.push_back(t0 + o.term_offsets[i]);
  exclude.insert(exclude.end(), o.exclude.begin(), o.exclude.end());
  for (size_t i = 1; i < o.exclude_offsets.size(); ++i) exclude_offsets.push_back(e0 + o.exclude_offsets[i]);
  if (float_dims) {
    if (o.float_dims) {
      float_terms.insert(float_terms.end(), o.float_terms.begin(), o.float_terms.end());
      float_weights.insert(float_weights.end(), o.float_weights.begin(), o.float_weights.end());
    } else {
      float_terms.resize(n_terms() * float_dims, 0.0f);
      float_weights.resize(n_terms(), 0.0f);
    }
  }
  if (o.has_float.empty()) has_float.resize(size(), 0);
  else has_float.insert(has_float.end(), o.has_float.begin(), o.has_float.end());
}

void QueryBatch::validate() const {
  const size_t nq = size(), nt = n_terms();
  bool ok = !term_offsets.empty() && term_offsets.front() == 0 && term_offsets.back() == nt &&
            trits.size() == nt * dims && exclude_offsets.size() == nq + 1 && exclude_offsets.front() == 0 &&
            exclude_offsets.back() == exclude.size() && (has_float.empty() || has_float.size() == nq);
  for (size_t q = 0; ok && q < nq; ++q)
    ok = term_offsets[q] < term_offsets[q + 1] && exclude_offsets[q] <= exclude_offsets[q + 1];
  if (ok && float_dims) ok = float_terms.size() == nt * float_dims && float_weights.size() == nt;
  if (!ok) throw Error("malformed QueryBatch (offsets and sizes disagree)");
  if (combine == Combine::CosMul)
    for (size_t q = 0; q < nq; ++q)
      if (term_offsets[q + 1] - term_offsets[q] != 3) throw Error("3CosMul queries need exactly three terms (a, b, c)");
}

void SearchResults::reset(size_t n_queries, size_t k_) {
  k = k_;
  hits.assign(n_queries * k_, Hit{0, 0.0f});
  count.assign(n_queries, 0);
}

SearchResults reference_search(std::span<const int8_t> vocab, size_t n, uint32_t dims, const QueryBatch& batch,
                               const SearchParams& params) {
  if (vocab.size() != n * dims) throw Error("reference_search: vocabulary size does not match n * dims");
  const size_t n_eff = params.limit ? std::min(params.limit, n) : n;
  SearchResults out;
  out.k = params.k;
  out.hits.assign(batch.size() * params.k, Hit{0, 0.0f});
  out.count.assign(batch.size(), 0);
  std::vector<float> inv(n);
  for (size_t i = 0; i < n; ++i) inv[i] = inv_norm_from_nnz(count_nonzero(vocab.subspan(i * dims, dims)));
  std::vector<int32_t> dots;
  std::vector<Hit> all;
  for (size_t q = 0; q < batch.size(); ++q) {
    const uint32_t t0 = batch.term_offsets[q], t1 = batch.term_offsets[q + 1];
    dots.assign(t1 - t0, 0);
    all.clear();
    const auto ex_begin = batch.exclude.begin() + batch.exclude_offsets[q];
    const auto ex_end = batch.exclude.begin() + batch.exclude_offsets[q + 1];
    for (size_t i = 0; i < n_eff; ++i) {
      if (std::find(ex_begin, ex_end, static_cast<uint32_t>(i)) != ex_end) continue;
      for (uint32_t t = t0; t < t1; ++t) {
        int32_t d = 0;
        for (uint32_t j = 0; j < dims; ++j)
          d += int32_t{vocab[i * dims + j]} * int32_t{batch.trits[size_t{t} * dims + j]};
        dots[t - t0] = d;
      }
      all.push_back({static_cast<uint32_t>(i),
                     combine_score(batch.combine, dots.data(), batch.weights.data() + t0, t1 - t0, inv[i])});
    }
    const size_t m = std::min(params.k, all.size());
    std::partial_sort(all.begin(), all.begin() + m, all.end(), better);
    std::copy(all.begin(), all.begin() + m, out.hits.begin() + q * params.k);
    out.count[q] = static_cast<uint32_t>(m);
  }
  return out;
}

}  // namespace igla
