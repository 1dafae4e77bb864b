// igla internal: the exact second stage of a two-stage search. The ternary scan returns a
// query's top C candidates; here each candidate's rerank row (int8 or float16, see index.hpp) is
// decoded and scored with float math, and the best k are kept.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "igla/index.hpp"
#include "igla/search.hpp"
#include "igla/vectors.hpp"

namespace igla {

// Section bytes of the rerank rows of `v` (unit vectors, then int8 with per-dimension scales, or
// float16); empty for Rerank::None.
std::vector<char> encode_rerank_rows(const FloatVectors& v, Rerank kind);

// One query in float form: unit term vectors (float dims each) and their weights, combined as
// the ternary query is (combine_score over cosines instead of dot products).
struct FloatQuery {
  Combine combine = Combine::Sum;
  std::vector<float> terms;                          // n_terms * float dims
  std::vector<float> weights;                        // Sum: the cosine's sign (+1 / -1); CosMul: 1 each
  void add_term(std::span<const float> v, float w);  // normalizes v
};

// The k best of `candidates` by exact float score on the rerank rows (ties to the lower id).
void rerank_hits(const Index& ix, const FloatQuery& q, std::span<const Hit> candidates, size_t k,
                 std::vector<Hit>& out);

}  // namespace igla
