// igla internal: a float dot product in 8 interleaved partial sums, a fixed order (the same result
// on every machine) that GCC vectorizes without -ffast-math. Used by the transform and the rerank.
#pragma once

#include <cstdint>
#include <cstring>

namespace igla {

inline float fdot(const float* a, const float* b, uint32_t n) {
  using V8 = float __attribute__((vector_size(32)));
  V8 acc = {};
  uint32_t d = 0;
  for (; d + 8 <= n; d += 8) {
    V8 x, y;
    std::memcpy(&x, a + d, sizeof x);
    std::memcpy(&y, b + d, sizeof y);
    acc += x * y;
  }
  float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
  for (; d < n; ++d) s += a[d] * b[d];
  return s;
}

}  // namespace igla
