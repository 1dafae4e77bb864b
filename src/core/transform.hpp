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

// Mean and per-dimension scale over every word (and the rotation for Rotated); nothing for Seed.
FittedTransform fit_transform(const FloatVectors& v, const QuantParams& q);

// A rows x cols matrix (row-major) with orthonormal columns when rows >= cols (norms are kept:
// |R x| = |x|), else orthonormal rows. Gaussian entries from mt19937_64 (fully specified, so a
// seed gives the same matrix everywhere), then Gram-Schmidt twice in double.
std::vector<float> random_orthogonal(uint32_t rows, uint32_t cols, uint64_t seed);

}  // namespace igla
