// The int8 list scan (int8_scan.hpp): the plain reference and the AVX-512 VNNI version, chosen
// at run time by the caller (function-level target attributes: the file builds for any x86-64).
#include "ann/int8_scan.hpp"

#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace igla::ann {

void int8_scan_scalar(const uint8_t* blocks, size_t nblocks, uint32_t G, const int32_t* q4, size_t nq, int32_t* out) {
  for (size_t q = 0; q < nq; ++q)
    for (size_t b = 0; b < nblocks; ++b)
      for (size_t j = 0; j < kInt8BlockRows; ++j) {
        int32_t s = 0;
        for (uint32_t g = 0; g < G; ++g) {
          int8_t qb[4];
          std::memcpy(qb, &q4[q * G + g], 4);
          const uint8_t* r = blocks + (b * G + g) * 64 + 4 * j;
          for (int i = 0; i < 4; ++i) s += int32_t{r[i]} * int32_t{qb[i]};
        }
        out[q * nblocks * kInt8BlockRows + b * kInt8BlockRows + j] = s;
      }
}

#if defined(__x86_64__)
namespace {

// NQ queries at once, so each 64-byte load of a block feeds NQ independent accumulators.
template <int NQ>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void scan_nq(const uint8_t* blocks, size_t nblocks,
                                                                      uint32_t G, const int32_t* q4, int32_t* out) {
  for (size_t b = 0; b < nblocks; ++b) {
    __m512i acc[NQ];
    for (int q = 0; q < NQ; ++q) acc[q] = _mm512_setzero_si512();
    const uint8_t* blk = blocks + b * G * 64;
    for (uint32_t g = 0; g < G; ++g) {
      const __m512i v = _mm512_loadu_si512(blk + size_t{g} * 64);
      for (int q = 0; q < NQ; ++q) acc[q] = _mm512_dpbusd_epi32(acc[q], v, _mm512_set1_epi32(q4[static_cast<size_t>(q) * G + g]));
    }
    for (int q = 0; q < NQ; ++q)
      _mm512_storeu_si512(out + static_cast<size_t>(q) * nblocks * kInt8BlockRows + b * kInt8BlockRows, acc[q]);
  }
}

}  // namespace

void int8_scan_vnni(const uint8_t* blocks, size_t nblocks, uint32_t G, const int32_t* q4, size_t nq, int32_t* out) {
  const size_t stride = nblocks * kInt8BlockRows;
  size_t q = 0;
  for (; q + 4 <= nq; q += 4) scan_nq<4>(blocks, nblocks, G, q4 + q * G, out + q * stride);
  switch (nq - q) {
    case 3: scan_nq<3>(blocks, nblocks, G, q4 + q * G, out + q * stride); break;
    case 2: scan_nq<2>(blocks, nblocks, G, q4 + q * G, out + q * stride); break;
    case 1: scan_nq<1>(blocks, nblocks, G, q4 + q * G, out + q * stride); break;
    default: break;
  }
}

bool int8_scan_vnni_available() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vnni");
}
#else
void int8_scan_vnni(const uint8_t* blocks, size_t nblocks, uint32_t G, const int32_t* q4, size_t nq, int32_t* out) {
  int8_scan_scalar(blocks, nblocks, G, q4, nq, out);
}
bool int8_scan_vnni_available() { return false; }
#endif

}  // namespace igla::ann
