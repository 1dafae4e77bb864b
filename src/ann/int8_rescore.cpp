// The rescoring dot (int8_rescore.hpp): the plain reference and the AVX2 version (a
// function-level target attribute: the file builds for any x86-64).
#include "ann/int8_rescore.hpp"

#include <cstring>

#include "core/fdot.hpp"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace igla::ann {

float rescore_dot_plain(const int8_t* r, const float* scales, const float* t, uint32_t D, float* scratch) {
  for (uint32_t d = 0; d < D; ++d) scratch[d] = static_cast<float>(r[d]) * scales[d];
  return fdot(scratch, t, D);
}

#if defined(__x86_64__)
// fdot's V8 accumulator as one __m256: acc[j] += x[d + j] * t[d + j] (a multiply, then an add:
// the build has -ffp-contract=off and no FMA target here), then ((a0 + a4) + (a1 + a5)) + ((a2 +
// a6) + (a3 + a7)) and the tail added in order.
__attribute__((target("avx2"))) float rescore_dot_avx2(const int8_t* r, const float* scales, const float* t,
                                                       uint32_t D) {
  __m256 acc = _mm256_setzero_ps();
  uint32_t d = 0;
  for (; d + 8 <= D; d += 8) {
    int64_t b;
    std::memcpy(&b, r + d, 8);
    const __m256 x = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_cvtsi64_si128(b))), _mm256_loadu_ps(scales + d));
    acc = _mm256_add_ps(acc, _mm256_mul_ps(x, _mm256_loadu_ps(t + d)));
  }
  alignas(32) float a[8];
  _mm256_store_ps(a, acc);
  float s = ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
  for (; d < D; ++d) s += (static_cast<float>(r[d]) * scales[d]) * t[d];
  return s;
}

bool rescore_dot_avx2_available() { return __builtin_cpu_supports("avx2"); }
#else
// Not reached (rescore_dot_avx2_available() is false); the same arithmetic in portable vectors.
float rescore_dot_avx2(const int8_t* r, const float* scales, const float* t, uint32_t D) {
  using V8 = float __attribute__((vector_size(32)));
  V8 acc = {};
  uint32_t d = 0;
  for (; d + 8 <= D; d += 8) {
    V8 x, y;
    for (int j = 0; j < 8; ++j) x[j] = static_cast<float>(r[d + j]) * scales[d + j];
    std::memcpy(&y, t + d, sizeof y);
    acc += x * y;
  }
  float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
  for (; d < D; ++d) s += (static_cast<float>(r[d]) * scales[d]) * t[d];
  return s;
}
bool rescore_dot_avx2_available() { return false; }
#endif

}  // namespace igla::ann

