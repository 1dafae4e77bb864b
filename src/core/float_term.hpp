// igla internal: the one place a query term's float form is made unit length (QueryBatch::add_query
// and QueryBuilder::analogies both call it, so the two give the same bits).
#pragma once

#include <cmath>
#include <cstddef>

namespace igla {

// out[d] = in[d] / |in|, the norm summed in double (as the rerank rows were); zeros stay zeros.
// `in` and `out` may be the same array.
inline void unit_float_term(const float* in, size_t n, float* out) {
  double n2 = 0;
  for (size_t d = 0; d < n; ++d) n2 += double(in[d]) * in[d];
  const double inv = n2 > 0 ? 1.0 / std::sqrt(n2) : 0.0;
  for (size_t d = 0; d < n; ++d) out[d] = static_cast<float>(in[d] * inv);
}

}  // namespace igla
