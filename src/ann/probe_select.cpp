// The IVF-int8 searcher's choice of lists (probe_select.hpp): the plain reference and the
// AVX-512 version (function-level target attributes: the file builds for any x86-64).
#include "ann/probe_select.hpp"

#include <algorithm>
#include <cstring>

#include "ann/kmeans.hpp"

#if defined(__x86_64__)
// GCC 12 warns inside its own avx512fintrin.h (undefined pass-through operands), as in
// int8_scan.cpp; not our code.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#endif

namespace igla::ann {

void choose_probes_plain(const float* s, size_t n, size_t m, uint32_t* out) {
  m = std::min(m, n);
  if (m == 0) return;
  top_indices(s, n, m, out);
  std::sort(out + 1, out + m);
}

#if defined(__x86_64__)
namespace {

#define IGLA_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,bmi2")))

// The number of the 16 * nv keys at p that are >= t (unsigned).
IGLA_AVX512 inline size_t count_at_least(const uint32_t* p, size_t nv, uint32_t t) {
  const __m512i tv = _mm512_set1_epi32(static_cast<int>(t));
  size_t c = 0;
  for (size_t v = 0; v < nv; ++v)
    c += static_cast<size_t>(__builtin_popcount(_mm512_cmpge_epu32_mask(_mm512_loadu_si512(p + 16 * v), tv)));
  return c;
}

// The largest t with at least m of the keys >= t (m <= their count): the m-th largest key.
IGLA_AVX512 inline uint32_t mth_largest(const uint32_t* p, size_t nv, size_t m) {
  uint32_t t = 0;
  for (int bit = 31; bit >= 0; --bit) {
    const uint32_t c = t | (1u << bit);
    if (count_at_least(p, nv, c) >= m) t = c;
  }
  return t;
}

}  // namespace

IGLA_AVX512 void choose_probes_avx512(const float* s, size_t n, size_t m, uint32_t* out,
                                      std::vector<uint32_t>& scratch) {
  m = std::min(m, n);
  if (m == 0) return;
  if (m == n || n < 64) return choose_probes_plain(s, n, m, out);
  // Keys: the score's bits made monotone as unsigned (negatives flipped; -0 as +0, since equal
  // floats tie); 0 for padding, below every real key. Groups j < S: keys j, j + S, j + 2S, j + 3S.
  const size_t S = ((n + 3) / 4 + 15) / 16 * 16, cand_cap = (n + 15) / 16 * 16 + 16;
  scratch.resize(4 * S + S + 2 * cand_cap);
  uint32_t* key = scratch.data();
  uint32_t* gmax = key + 4 * S;
  uint32_t* ck = gmax + S;
  uint32_t* ci = ck + cand_cap;
  const __m512 zero = _mm512_setzero_ps();
  const __m512i top = _mm512_set1_epi32(static_cast<int>(0x80000000u));
  for (size_t i = 0; i < 4 * S; i += 16) {
    const __mmask16 valid = i >= n ? __mmask16(0) : i + 16 <= n ? __mmask16(0xFFFF) : __mmask16((1u << (n - i)) - 1);
    __m512 v = _mm512_maskz_loadu_ps(valid, s + i);
    v = _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, zero, _CMP_EQ_OQ), zero);
    const __m512i b = _mm512_castps_si512(v);
    const __m512i k = _mm512_xor_si512(b, _mm512_or_si512(_mm512_srai_epi32(b, 31), top));
    _mm512_storeu_si512(key + i, _mm512_maskz_mov_epi32(valid, k));
  }
  for (size_t j = 0; j < S; j += 16) {
    const __m512i a = _mm512_max_epu32(_mm512_loadu_si512(key + j), _mm512_loadu_si512(key + S + j));
    const __m512i b = _mm512_max_epu32(_mm512_loadu_si512(key + 2 * S + j), _mm512_loadu_si512(key + 3 * S + j));
    _mm512_storeu_si512(gmax + j, _mm512_max_epu32(a, b));
  }
  // At least m groups have a key >= bound (each group's maximum is one of its keys), so the m
  // best keys are all >= bound. (With fewer than m non-empty groups bound is 0: every key.)
  const uint32_t bound = std::max<uint32_t>(mth_largest(gmax, S / 16, m), 1);
  const __m512i bv = _mm512_set1_epi32(static_cast<int>(bound));
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  size_t c = 0;
  for (size_t i = 0; i < n; i += 16) {
    const __m512i k = _mm512_loadu_si512(key + i);
    const __mmask16 pass = _mm512_cmpge_epu32_mask(k, bv);  // padding keys (0) never pass
    _mm512_mask_compressstoreu_epi32(ck + c, pass, k);
    _mm512_mask_compressstoreu_epi32(ci + c, pass, _mm512_add_epi32(lane, _mm512_set1_epi32(static_cast<int>(i))));
    c += static_cast<size_t>(__builtin_popcount(pass));
  }
  const size_t cv = (c + 15) / 16;
  std::fill(ck + c, ck + cv * 16, 0u);
  // The m-th best key exactly; every key above it is in, and of the keys equal to it the ones of
  // the lowest indices (the candidates are in ascending index order).
  const uint32_t t = mth_largest(ck, cv, m);
  size_t need_eq = m - (t == 0xFFFFFFFFu ? 0 : count_at_least(ck, cv, t + 1));
  const __m512i tv = _mm512_set1_epi32(static_cast<int>(t));
  uint32_t best_key = 0;
  size_t o = 0;
  for (size_t v = 0; v < cv; ++v) {
    const __m512i k = _mm512_loadu_si512(ck + 16 * v);
    uint32_t eq = _mm512_cmpeq_epu32_mask(k, tv);
    if (static_cast<size_t>(__builtin_popcount(eq)) > need_eq)
      eq = _pdep_u32(static_cast<uint32_t>((1ull << need_eq) - 1), eq);  // the lowest need_eq of them
    need_eq -= static_cast<size_t>(__builtin_popcount(eq));
    const __mmask16 take = static_cast<__mmask16>(_mm512_cmpgt_epu32_mask(k, tv) | eq);
    _mm512_mask_compressstoreu_epi32(out + o, take, _mm512_loadu_si512(ci + 16 * v));
    o += static_cast<size_t>(__builtin_popcount(take));
    best_key = std::max(best_key, _mm512_mask_reduce_max_epu32(take, k));
  }
  // The best (the lowest index among equal keys) to the front, the others kept ascending.
  size_t p = 0;
  for (size_t j = 0; j < c; ++j)
    if (ck[j] == best_key) {
      p = static_cast<size_t>(std::lower_bound(out, out + m, ci[j]) - out);
      break;
    }
  const uint32_t best = out[p];
  std::memmove(out + 1, out, p * sizeof(uint32_t));
  out[0] = best;
}

bool choose_probes_avx512_available() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("bmi2");
}
#else
void choose_probes_avx512(const float* s, size_t n, size_t m, uint32_t* out, std::vector<uint32_t>&) {
  choose_probes_plain(s, n, m, out);
}
bool choose_probes_avx512_available() { return false; }
#endif

}  // namespace igla::ann
