// The graph's int8 row dot (int8_dot.hpp): plain loop and AVX-512 VNNI, chosen at run time.
#include "ann/int8_dot.hpp"

#if defined(__x86_64__)
// GCC 12 warns inside its own avx512fintrin.h (the undefined operand of _mm512_reduce_add_epi32's
// shuffles), as in int8_scan.cpp; not our code.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#endif

namespace igla::ann {

int32_t query_bias(const int8_t* q, size_t dims) {
  int32_t s = 0;
  for (size_t d = 0; d < dims; ++d) s += q[d];
  return 128 * s;
}

int32_t dot_i8_scalar(const int8_t* row, const int8_t* q, int32_t, size_t dims) {
  int32_t s = 0;
  for (size_t d = 0; d < dims; ++d) s += int32_t{row[d]} * int32_t{q[d]};
  return s;
}

DotI8 pick_dot_i8(bool scalar) { return !scalar && dot_i8_vnni_available() ? dot_i8_vnni : dot_i8_scalar; }

#if defined(__x86_64__)
__attribute__((target("avx512f,avx512bw,avx512vnni,bmi2"))) int32_t dot_i8_vnni(const int8_t* row, const int8_t* q,
                                                                                 int32_t bias, size_t dims) {
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512i acc = _mm512_setzero_si512();
  size_t d = 0;
  for (; d + 64 <= dims; d += 64) {
    const __m512i r = _mm512_xor_si512(_mm512_loadu_si512(row + d), flip);
    acc = _mm512_dpbusd_epi32(acc, r, _mm512_loadu_si512(q + d));
  }
  if (d < dims) {
    // Masked-off bytes load as 0 and flip to 128, against query padding of 0: they add nothing.
    const __mmask64 m = _bzhi_u64(~0ull, static_cast<unsigned>(dims - d));
    const __m512i r = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, row + d), flip);
    acc = _mm512_dpbusd_epi32(acc, r, _mm512_loadu_si512(q + d));
  }
  return _mm512_reduce_add_epi32(acc) - bias;
}

bool dot_i8_vnni_available() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("bmi2");
}
#else
int32_t dot_i8_vnni(const int8_t* row, const int8_t* q, int32_t bias, size_t dims) {
  return dot_i8_scalar(row, q, bias, dims);
}
bool dot_i8_vnni_available() { return false; }
#endif

}  // namespace igla::ann
