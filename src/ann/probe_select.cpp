// The IVF-int8 searcher's choice of lists (probe_select.hpp): the plain reference and the
// AVX-512 version (function-level target attributes: the file builds for any x86-64).
#include "ann/probe_select.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

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

// The largest t with at least m of the 16 * nv keys >= t (m <= 16 nv): the m-th largest key. `lo`
// and `hi` bound it (lo <= the answer <= hi, e.g. the smallest and largest key), so the bits they
// share are the answer's and the bisection starts below them. With `steps` > 0 it stops after
// that many bits: t is then a lower bound of the m-th largest key (at least m keys are >= t at
// every step), at least lo, within 2^(b - steps) of it where b is the highest bit lo and hi differ in.
IGLA_AVX512 inline uint32_t mth_largest(const uint32_t* p, size_t nv, size_t m, uint32_t lo = 0,
                                        uint32_t hi = 0xFFFFFFFFu, int steps = 32) {
  if (lo == hi) return lo;
  const int top = 31 - __builtin_clz(lo ^ hi);
  uint32_t t = lo & ~((2u << top) - 1u);  // (2u << 31 is 0: every bit cleared)
  if (top == 31) t = 0;
  for (int bit = top; bit >= 0 && steps > 0; --bit, --steps) {
    const uint32_t c = t | (1u << bit);
    if (count_at_least(p, nv, c) >= m) t = c;
  }
  return std::max(t, lo);
}

// The smallest and largest of the 16 * nv keys at p.
IGLA_AVX512 inline void key_range(const uint32_t* p, size_t nv, uint32_t& lo, uint32_t& hi) {
  __m512i mn = _mm512_loadu_si512(p), mx = mn;
  for (size_t v = 1; v < nv; ++v) {
    const __m512i k = _mm512_loadu_si512(p + 16 * v);
    mn = _mm512_min_epu32(mn, k);
    mx = _mm512_max_epu32(mx, k);
  }
  lo = _mm512_reduce_min_epu32(mn);
  hi = _mm512_reduce_max_epu32(mx);
}

// Scores as order-preserving unsigned keys (-0 as +0: equal floats tie) and back.
IGLA_AVX512 inline __m512i float_keys(__m512 v) {
  v = _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_EQ_OQ), _mm512_setzero_ps());
  const __m512i b = _mm512_castps_si512(v);
  return _mm512_xor_si512(b, _mm512_or_si512(_mm512_srai_epi32(b, 31), _mm512_set1_epi32(static_cast<int>(0x80000000u))));
}
inline float key_float(uint32_t k) {
  const uint32_t b = (k & 0x80000000u) ? (k ^ 0x80000000u) : ~k;
  float f;
  std::memcpy(&f, &b, 4);
  return f;
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
  for (size_t i = 0; i < 4 * S; i += 16) {
    const __mmask16 valid = i >= n ? __mmask16(0) : i + 16 <= n ? __mmask16(0xFFFF) : __mmask16((1u << (n - i)) - 1);
    _mm512_storeu_si512(key + i, _mm512_maskz_mov_epi32(valid, float_keys(_mm512_maskz_loadu_ps(valid, s + i))));
  }
  for (size_t j = 0; j < S; j += 16) {
    const __m512i a = _mm512_max_epu32(_mm512_loadu_si512(key + j), _mm512_loadu_si512(key + S + j));
    const __m512i b = _mm512_max_epu32(_mm512_loadu_si512(key + 2 * S + j), _mm512_loadu_si512(key + 3 * S + j));
    _mm512_storeu_si512(gmax + j, _mm512_max_epu32(a, b));
  }
  // At least m groups have a key >= bound (each group's maximum is one of its keys), so the m
  // best keys are all >= bound. (With fewer than m non-empty groups bound is 0: every key.)
  // Any lower bound of the m-th largest group maximum will do (a lower one only lets more keys
  // through to the exact second step): the bisection runs over the bits where the smallest and
  // largest maxima differ, and stops after kBoundSteps of them.
  constexpr int kBoundSteps = 12;
  uint32_t glo = 0, ghi = 0;
  key_range(gmax, S / 16, glo, ghi);
  // (With fewer groups than m there is no such maximum: every key passes.)
  const uint32_t bound = m > S ? 1u : std::max<uint32_t>(mth_largest(gmax, S / 16, m, glo, ghi, kBoundSteps), 1);
  const __m512i bv = _mm512_set1_epi32(static_cast<int>(bound));
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  size_t c = 0;
  for (size_t i = 0; i < n; i += 16) {
    const __m512i k = _mm512_loadu_si512(key + i);
    const __mmask16 pass = _mm512_cmpge_epu32_mask(k, bv);  // padding keys (0) never pass
    // (compressed in a register and stored whole: the arrays have 16 slots of slack; a
    // compressing store to memory is slower on Zen)
    _mm512_storeu_si512(ck + c, _mm512_maskz_compress_epi32(pass, k));
    _mm512_storeu_si512(ci + c, _mm512_maskz_compress_epi32(pass, _mm512_add_epi32(lane, _mm512_set1_epi32(static_cast<int>(i)))));
    c += static_cast<size_t>(__builtin_popcount(pass));
  }
  const size_t cv = (c + 15) / 16;
  std::fill(ck + c, ck + cv * 16, 0u);
  // The m-th best key exactly; every key above it is in, and of the keys equal to it the ones of
  // the lowest indices (the candidates are in ascending index order).
  uint32_t clo = 0, chi = 0;  // (the padding's 0 keys are never the answer: at least m keys are >= bound >= 1)
  key_range(ck, cv, clo, chi);
  const uint32_t t = mth_largest(ck, cv, m, bound, chi);
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

IGLA_AVX512 float mth_largest_lower_bound_avx512(const float* s, size_t n, size_t m, int steps) {
  if (m == 0 || m > n || n > kMaxBoundScores) return -std::numeric_limits<float>::infinity();
  alignas(64) uint32_t key[kMaxBoundScores];
  const size_t nv = (n + 15) / 16;
  for (size_t i = 0; i < 16 * nv; i += 16) {
    const __mmask16 valid = i + 16 <= n ? __mmask16(0xFFFF) : __mmask16((1u << (n - i)) - 1);
    _mm512_store_si512(key + i, _mm512_maskz_mov_epi32(valid, float_keys(_mm512_maskz_loadu_ps(valid, s + i))));
  }
  uint32_t lo = 0, hi = 0;
  key_range(key, nv, lo, hi);
  if (n % 16) {  // the padding keys (0) are not scores: the smallest real key bounds from below
    lo = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; ++i) lo = std::min(lo, key[i]);
  }
  return key_float(mth_largest(key, nv, m, lo, hi, steps));
}

bool choose_probes_avx512_available() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("bmi2");
}
#else
void choose_probes_avx512(const float* s, size_t n, size_t m, uint32_t* out, std::vector<uint32_t>&) {
  choose_probes_plain(s, n, m, out);
}
float mth_largest_lower_bound_avx512(const float*, size_t, size_t, int) {
  return -std::numeric_limits<float>::infinity();
}
bool choose_probes_avx512_available() { return false; }
#endif

}  // namespace igla::ann
