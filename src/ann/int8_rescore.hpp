// igla internal: the IVF-int8 searcher's rescoring of one candidate row (src/ann/ivf8_searcher.cpp)
// with the rerank stage's arithmetic (src/core/rerank.cpp, rerank_score over fdot.hpp): the row's
// int8 values decoded as float(r[d]) * scales[d], dotted with a float query term in fdot's order
// (8 interleaved partial sums, combined pairwise, then the tail in order; no fused multiply-add).
// Every implementation returns the same float bits as fdot over the decoded row.
#pragma once

#include <cstddef>
#include <cstdint>

namespace igla::ann {

// fdot(decoded row, t, D): the plain reference (decodes into `scratch`, D floats, then fdot).
float rescore_dot_plain(const int8_t* r, const float* scales, const float* t, uint32_t D, float* scratch);
// The same with AVX2, decoding in registers (no scratch); only where rescore_dot_avx2_available().
float rescore_dot_avx2(const int8_t* r, const float* scales, const float* t, uint32_t D);
bool rescore_dot_avx2_available();

}  // namespace igla::ann
