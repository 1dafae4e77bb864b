// The int8 list scan (int8_scan.hpp): the plain reference and the AVX-512 VNNI version, chosen
// at run time by the caller (function-level target attributes: the file builds for any x86-64).
#include "ann/int8_scan.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#if defined(__x86_64__)
// GCC 12 warns inside its own avx512fintrin.h (the undefined pass-through operand of
// _mm512_cvtepi32_ps), as in the AVX-512 kernel; not our code.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
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

size_t select_rows_scalar(const int32_t* dots, size_t n, float corr, const float* inv, float thr, uint32_t* pos,
                          float* score) {
  size_t m = 0;
  for (size_t j = 0; j < n; ++j) {
    const float s = (static_cast<float>(dots[j]) - corr) * inv[j];
    if (s >= thr) {
      pos[m] = static_cast<uint32_t>(j);
      score[m++] = s;
    }
  }
  return m;
}

void scan_select_scalar(const uint8_t* blocks, size_t rows, uint32_t G, const float* inv, const ScanSelect& s) {
  const size_t nb = (rows + kInt8BlockRows - 1) / kInt8BlockRows, stride = nb * kInt8BlockRows;
  std::vector<int32_t> dots(s.nq * stride);
  int8_scan_scalar(blocks, nb, G, s.q4, s.nq, dots.data());
  for (size_t q = 0; q < s.nq; ++q)
    s.count[q] = static_cast<uint32_t>(select_rows_scalar(dots.data() + q * stride, rows, s.corr[q], inv, s.thr[q],
                                                          s.pos + q * s.stride, s.score + q * s.stride));
}

int32_t quantize_query_plain(const float* x, const float* scales, size_t D, int8_t* out) {
  float m = 0;
  for (size_t d = 0; d < D; ++d) m = std::max(m, std::fabs(x[d] * scales[d]));
  const float s = m > 0 ? 127.0f / m : 0.0f;
  int32_t sum = 0;
  for (size_t d = 0; d < D; ++d) {
    const long v = std::lround(x[d] * scales[d] * s);
    out[d] = static_cast<int8_t>(std::clamp<long>(v, -127, 127));
    sum += out[d];
  }
  return sum;
}

void centroid_scores_plain(const int32_t* dots, float corr, const float* step, size_t L, float* cs) {
  for (size_t l = 0; l < L; ++l) cs[l] = (static_cast<float>(dots[l]) - corr) * step[l];
}

#if defined(__x86_64__)
#define IGLA_AVX512F __attribute__((target("avx512f")))

IGLA_AVX512F int32_t quantize_query_avx512(const float* x, const float* scales, size_t D, int8_t* out) {
  __m512 mv = _mm512_setzero_ps();
  for (size_t d = 0; d < D; d += 16) {
    const __mmask16 k = D - d >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (D - d)) - 1);
    const __m512 y = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + d), _mm512_maskz_loadu_ps(k, scales + d));
    mv = _mm512_max_ps(mv, _mm512_abs_ps(y));  // (the maximum of |y|: exact in any order)
  }
  const float m = _mm512_reduce_max_ps(mv);
  const float s = m > 0 ? 127.0f / m : 0.0f;
  const __m512 sv = _mm512_set1_ps(s), half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f);
  const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127);
  __m512i sum = _mm512_setzero_si512();
  for (size_t d = 0; d < D; d += 16) {
    const __mmask16 k = D - d >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (D - d)) - 1);
    const __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + d), _mm512_maskz_loadu_ps(k, scales + d)), sv);
    // lround: the truncation, one more away from zero where the (exact) remainder is >= 0.5
    const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __mmask16 up = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(v, t)), half, _CMP_GE_OQ);
    const __m512 sign_one = _mm512_castsi512_ps(_mm512_or_si512(
        _mm512_castps_si512(one), _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(static_cast<int>(0x80000000u)))));
    const __m512 r = _mm512_mask_add_ps(t, up, t, sign_one);
    // (|v| <= 127 up to rounding, far inside int32; NaN would not come: m is finite for finite x)
    const __m512i q = _mm512_min_epi32(_mm512_max_epi32(_mm512_cvttps_epi32(r), lo), hi);
    _mm512_mask_cvtepi32_storeu_epi8(out + d, k, q);
    sum = _mm512_add_epi32(sum, _mm512_maskz_mov_epi32(k, q));
  }
  return _mm512_reduce_add_epi32(sum);
}

IGLA_AVX512F void centroid_scores_avx512(const int32_t* dots, float corr, const float* step, size_t L, float* cs) {
  const __m512 c = _mm512_set1_ps(corr);
  size_t l = 0;
  for (; l + 16 <= L; l += 16)
    _mm512_storeu_ps(cs + l, _mm512_mul_ps(_mm512_sub_ps(_mm512_cvtepi32_ps(_mm512_loadu_si512(dots + l)), c),
                                           _mm512_loadu_ps(step + l)));
  for (; l < L; ++l) cs[l] = (static_cast<float>(dots[l]) - corr) * step[l];
}

bool query_prep_avx512_available() { return __builtin_cpu_supports("avx512f"); }

namespace {

// NQ queries at once, so each 64-byte load of a block feeds NQ independent accumulators; NB
// blocks at a time (then one), so that few queries still have enough of them.
template <int NQ>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void scan_nq(const uint8_t* blocks, size_t nblocks,
                                                                      uint32_t G, const int32_t* q4, int32_t* out) {
  constexpr int NB = NQ == 1 ? 8 : NQ == 2 ? 4 : 3;
  const size_t bytes = size_t{G} * 64;
  size_t b = 0;
  auto step = [&]<int B>() __attribute__((target("avx512f,avx512bw,avx512vnni"))) {
    __m512i acc[B][NQ];
    for (int i = 0; i < B; ++i)
      for (int q = 0; q < NQ; ++q) acc[i][q] = _mm512_setzero_si512();
    const uint8_t* blk = blocks + b * bytes;
    for (uint32_t g = 0; g < G; ++g) {
      __m512i v[B];
      for (int i = 0; i < B; ++i) v[i] = _mm512_loadu_si512(blk + static_cast<size_t>(i) * bytes + size_t{g} * 64);
      for (int q = 0; q < NQ; ++q) {
        const __m512i qb = _mm512_set1_epi32(q4[static_cast<size_t>(q) * G + g]);
        for (int i = 0; i < B; ++i) acc[i][q] = _mm512_dpbusd_epi32(acc[i][q], v[i], qb);
      }
    }
    for (int i = 0; i < B; ++i)
      for (int q = 0; q < NQ; ++q)
        _mm512_storeu_si512(out + static_cast<size_t>(q) * nblocks * kInt8BlockRows + (b + static_cast<size_t>(i)) * kInt8BlockRows,
                            acc[i][q]);
    b += B;
  };
  while (b + NB <= nblocks) step.template operator()<NB>();
  while (b < nblocks) step.template operator()<1>();
}

// The selection of one block (16 rows from row j0) for NQ queries, lanes in `valid` only.
template <int NQ>
__attribute__((target("avx512f,avx512bw,avx512vnni"), always_inline)) inline void select_block(
    const __m512i* acc, size_t j0, __mmask16 valid, const float* inv, const ScanSelect& s, uint32_t* cnt) {
  const __m512 iv = _mm512_loadu_ps(inv + j0);
  const __m512i idx = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(j0)),
                                       _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
  for (int q = 0; q < NQ; ++q) {
    const __m512 sc = _mm512_mul_ps(_mm512_sub_ps(_mm512_cvtepi32_ps(acc[q]), _mm512_set1_ps(s.corr[q])), iv);
    const __mmask16 k = _mm512_mask_cmp_ps_mask(valid, sc, _mm512_set1_ps(s.thr[q]), _CMP_GE_OQ);
    if (k) {
      const size_t o = static_cast<size_t>(q) * s.stride + cnt[q];
      _mm512_mask_compressstoreu_epi32(s.pos + o, k, idx);
      _mm512_mask_compressstoreu_ps(s.score + o, k, sc);
      cnt[q] += static_cast<uint32_t>(__builtin_popcount(k));
    }
  }
}

// NB blocks (16 NB rows) x NQ queries: NB NQ independent accumulators, so that a small group
// of queries (one query: NB = 8) still keeps the multiply units busy instead of waiting on one
// accumulator's latency; then the rest of the blocks with NB / 2, down to one block.
template <int NQ, int NB>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) inline void scan_blocks(const uint8_t* blocks, size_t& b,
                                                                              size_t nb, size_t rows, uint32_t G,
                                                                              const float* inv, const ScanSelect& s,
                                                                              uint32_t* cnt, size_t& pf) {
  const size_t bytes = size_t{G} * 64;
  const int32_t* q4 = s.q4;
  // (locals: the cursor and the region in registers, not re-read through s and pf each group)
  const uint8_t* const pf_base = s.prefetch;
  const size_t pf_end = s.prefetch_bytes;
  size_t pf_at = pf;
  for (; b + NB <= nb; b += NB) {
    __m512i acc[NB][NQ];
    for (int i = 0; i < NB; ++i)
      for (int q = 0; q < NQ; ++q) acc[i][q] = _mm512_setzero_si512();
    const uint8_t* p0 = blocks + b * bytes;
    for (uint32_t g = 0; g < G; ++g) {
      if (pf_at < pf_end) {  // (NB lines a group: the rate of this scan's own reads)
        for (int i = 0; i < NB; ++i)
          _mm_prefetch(reinterpret_cast<const char*>(pf_base + pf_at + static_cast<size_t>(i) * 64), _MM_HINT_T1);
        pf_at += size_t{NB} * 64;
      }
      __m512i v[NB];
      for (int i = 0; i < NB; ++i) v[i] = _mm512_loadu_si512(p0 + static_cast<size_t>(i) * bytes + size_t{g} * 64);
      for (int q = 0; q < NQ; ++q) {
        const __m512i qb = _mm512_set1_epi32(q4[static_cast<size_t>(q) * G + g]);
        for (int i = 0; i < NB; ++i) acc[i][q] = _mm512_dpbusd_epi32(acc[i][q], v[i], qb);
      }
    }
    for (int i = 0; i < NB; ++i) {
      const size_t j0 = (b + static_cast<size_t>(i)) * kInt8BlockRows, left = rows - j0;
      select_block<NQ>(acc[i], j0, left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1), inv, s, cnt);
    }
  }
  pf = pf_at;
  if constexpr (NB > 1) scan_blocks<NQ, NB / 2>(blocks, b, nb, rows, G, inv, s, cnt, pf);
}

template <int NQ>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void scan_select_nq(const uint8_t* blocks, size_t rows,
                                                                             uint32_t G, const float* inv,
                                                                             const ScanSelect& s) {
  const size_t nb = (rows + kInt8BlockRows - 1) / kInt8BlockRows;
  constexpr int NB = NQ == 1 ? 8 : NQ == 2 ? 4 : NQ <= 4 ? 3 : 2;  // at most 16 accumulators
  uint32_t cnt[NQ] = {};
  size_t b = 0, pf = 0;
  scan_blocks<NQ, NB>(blocks, b, nb, rows, G, inv, s, cnt, pf);
  for (int q = 0; q < NQ; ++q) s.count[q] = cnt[q];
}

}  // namespace

void scan_select_vnni(const uint8_t* blocks, size_t rows, uint32_t G, const float* inv, const ScanSelect& s) {
  switch (s.nq) {
    case 8: scan_select_nq<8>(blocks, rows, G, inv, s); break;
    case 7: scan_select_nq<7>(blocks, rows, G, inv, s); break;
    case 6: scan_select_nq<6>(blocks, rows, G, inv, s); break;
    case 5: scan_select_nq<5>(blocks, rows, G, inv, s); break;
    case 4: scan_select_nq<4>(blocks, rows, G, inv, s); break;
    case 3: scan_select_nq<3>(blocks, rows, G, inv, s); break;
    case 2: scan_select_nq<2>(blocks, rows, G, inv, s); break;
    case 1: scan_select_nq<1>(blocks, rows, G, inv, s); break;
    default: break;
  }
}

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
int32_t quantize_query_avx512(const float* x, const float* scales, size_t D, int8_t* out) {
  return quantize_query_plain(x, scales, D, out);
}
void centroid_scores_avx512(const int32_t* dots, float corr, const float* step, size_t L, float* cs) {
  centroid_scores_plain(dots, corr, step, L, cs);
}
bool query_prep_avx512_available() { return false; }
void int8_scan_vnni(const uint8_t* blocks, size_t nblocks, uint32_t G, const int32_t* q4, size_t nq, int32_t* out) {
  int8_scan_scalar(blocks, nblocks, G, q4, nq, out);
}
bool int8_scan_vnni_available() { return false; }
void scan_select_vnni(const uint8_t* blocks, size_t rows, uint32_t G, const float* inv, const ScanSelect& s) {
  scan_select_scalar(blocks, rows, G, inv, s);
}
#endif

}  // namespace igla::ann
