// igla internal: spherical k-means and the dense float products it and the IVF search share.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace igla::ann {

// out[i * nc + j] = dot(x row i, c row j), x: nx rows of d floats, ct: the c rows transposed
// (d x nc, row-major: transpose()). Vectorized across j, so each dot is summed over k in
// ascending order in every clone (AVX-512, AVX2, baseline; target_clones): the same bits on
// every machine.
void dot_rows(const float* x, size_t nx, const float* ct, size_t nc, size_t d, float* out);
std::vector<float> transpose(const float* c, size_t nc, size_t d);

// The `m` largest of s[0, n) as indices, best first, ties to the lower index.
void top_indices(const float* s, size_t n, size_t m, uint32_t* out);

struct KMeansResult {
  std::vector<float> centroids;  // L x d, unit vectors
  std::vector<uint32_t> assign;  // per point (all n points, not only the sample)
};

// Spherical k-means of n unit vectors (n x d): L initial centroids drawn from a sample of
// `train` points (seeded), `iterations` Lloyd rounds on the sample (assign by largest dot,
// centroid = normalized mean; an emptied list takes the sample point worst served by its
// centroid), then every point assigned. Deterministic for fixed inputs, whatever `threads`.
KMeansResult spherical_kmeans(const float* x, size_t n, size_t d, uint32_t L, uint32_t iterations, size_t train,
                              uint64_t seed, int threads, const std::function<void(uint32_t)>& on_iteration);

// Runs fn(begin, end) over [0, n) in fixed chunks on up to `threads` threads.
void parallel_chunks(size_t n, size_t chunk, int threads, const std::function<void(size_t, size_t)>& fn);

}  // namespace igla::ann
