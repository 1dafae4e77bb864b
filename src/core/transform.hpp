// igla internal: fitting the float -> code transform (centering, scaling, random rotation) to a
// vocabulary at build time. Applying it is Transform::apply (include/igla/index.hpp).
#pragma once

#include <cstdint>
#include <vector>

#include "igla/index.hpp"
#include "igla/vectors.hpp"

namespace igla {

struct FittedTransform {
  uint32_t in_dims = 0, out_dims = 0;
  std::vector<float> mean, scale;  // in_dims each
  std::vector<float> rotation;     // out_dims x in_dims, empty unless Rotated
  Transform view(const QuantParams& q) const;
};

// Bounds on the work of fitting a rotated transform, both O(d^3): building a D x d random
// rotation takes d*d*D multiply-adds (Gram-Schmidt twice), so d*d*D must be at most
// kMaxRotationWork (2^33: 2048 dims square, 300 dims to 65536 trits; ~10 s on one 2024 x86
// core); reducing (D < d) runs Jacobi eigen-decompositions of a d x d covariance, ~40x slower a
// step, so d is at most kMaxReducedDims. Larger vectors take `centered` (linear in d).
constexpr uint64_t kMaxRotationWork = uint64_t{1} << 33;
constexpr uint32_t kMaxReducedDims = 512;
// Throws Error naming the dims, the limit and what to use instead when a fit would exceed them.
void check_rotation_cost(uint32_t in_dims, uint32_t out_dims);

// Mean and per-dimension scale over every word (and the rotation for Rotated); nothing for Seed.
FittedTransform fit_transform(const FloatVectors& v, const QuantParams& q);

// A rows x cols matrix (row-major) with orthonormal columns when rows >= cols (norms are kept:
// |R x| = |x|), else orthonormal rows. Gaussian entries from mt19937_64 (fully specified, so a
// seed gives the same matrix everywhere), then Gram-Schmidt twice in double.
std::vector<float> random_orthogonal(uint32_t rows, uint32_t cols, uint64_t seed);

}  // namespace igla
