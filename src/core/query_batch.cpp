// QueryBatch builders and the int8 reference search every fast path is held to.
#include <algorithm>
#include <queue>

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
  if (terms.size() != w.size() || terms.empty()) throw Error("a query needs one weight per term, and a term");
  if (combine == Combine::CosMul && terms.size() != 3) throw Error("3CosMul takes exactly three terms (a, b, c)");
  for (auto t : terms) {
    check_dims(t, dims);
    trits.insert(trits.end(), t.begin(), t.end());
  }
  weights.insert(weights.end(), w.begin(), w.end());
  term_offsets.push_back(static_cast<uint32_t>(weights.size()));
  exclude.insert(exclude.end(), excl.begin(), excl.end());
  exclude_offsets.push_back(static_cast<uint32_t>(exclude.size()));
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
