// igla internal: the IVF-int8 searcher's choice of lists (src/ann/ivf8_searcher.cpp): the m best
// of a query's L centroid scores. The searcher needs the set and the best one only (the best
// list gives the query's score floor; the others are visited grouped by list), so the answer is
// ordered for that: out[0] the best, out[1, m) the others in ascending index order. Ties go to the
// lower index, as in top_indices (kmeans.hpp), so both implementations pick the same set.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace igla::ann {

// The plain reference: top_indices, then the tail sorted by index.
void choose_probes_plain(const float* s, size_t n, size_t m, uint32_t* out);

// The same answer without sorting (AVX-512, branch-free): scores as order-preserving 32-bit keys;
// the m-th largest of the maxima of 4-key groups (found by bisection on the key, counting with
// vector compares) bounds the answer from below, the keys at or above it are compressed out
// (typically a few times m), and a second bisection over those finds the m-th key exactly. Only
// where choose_probes_avx512_available(); `scratch` is reused across calls.
void choose_probes_avx512(const float* s, size_t n, size_t m, uint32_t* out, std::vector<uint32_t>& scratch);
bool choose_probes_avx512_available();

// A lower bound of the m-th largest of s[0, n) (n <= kMaxBoundScores, 1 <= m <= n; else -inf):
// the scores as the keys above, bisected over the bits where the smallest and largest differ for
// at most `steps` bits (32: the m-th largest itself, -0 returned as +0). Never above the m-th
// largest and never below the smallest score. The IVF-int8 score floor. Only where
// choose_probes_avx512_available().
inline constexpr size_t kMaxBoundScores = 64;
float mth_largest_lower_bound_avx512(const float* s, size_t n, size_t m, int steps);

}  // namespace igla::ann
