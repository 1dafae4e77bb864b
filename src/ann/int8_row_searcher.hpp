// What the searchers over the index's int8 rows (ivf-int8, graph) share: the batches they answer
// themselves and the capabilities they report. Both quantize a query's float form to int8, so a
// batch without float forms, a 3CosMul batch or a --limit search goes to their exact fallback.
#pragma once

#include <cstdint>
#include <limits>

#include "igla/search.hpp"

namespace igla::ann {

// Whether a searcher over int8 rows of `dims` values answers `batch` itself.
inline bool int8_rows_answer(const QueryBatch& batch, const SearchParams& params, uint32_t dims) {
  if (batch.combine != Combine::Sum || batch.float_dims != dims || params.limit != 0) return false;
  for (size_t q = 0; q < batch.size(); ++q)
    if (!batch.has_float[q]) return false;
  return true;
}

// Approximate, rescored with the rerank stage's formula, no kernel-held limit on k or terms.
inline Capabilities int8_rows_capabilities() {
  Capabilities c;
  c.max_fast_k = std::numeric_limits<size_t>::max();
  c.max_fast_terms = std::numeric_limits<uint32_t>::max();
  c.multi_term = true;
  c.exact = false;
  c.reranks = true;
  return c;
}

}  // namespace igla::ann
