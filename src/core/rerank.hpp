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
// The float16 rows of `data` (rows of D floats), exactly as RF16 stores them: each row scaled to
// unit length in double, then rounded to float16 (Rerank::F16's bytes, as uint16 values).
std::vector<uint16_t> encode_f16_rows(std::span<const float> data, uint32_t D);

// The k best of query q's `candidates` by exact float score on the rerank rows (ties to the
// lower id): each candidate's row x is decoded, and with cos_t = fdot(x, term_t) / |x| the score
// is combine_score's formula over the cosines and the batch's float weights. This order of float
// operations is the contract every rerank (CPU, CUDA) reproduces bit for bit.
// The score rerank_query gives a candidate whose decoded row is x (batch.float_dims values):
// the one place of that arithmetic, shared by every CPU path that rescores rows.
float rerank_score(const float* x, const QueryBatch& batch, size_t q);

void rerank_query(const Index& ix, const QueryBatch& batch, size_t q, std::span<const Hit> candidates, size_t k,
                  std::vector<Hit>& out);

}  // namespace igla
