// igla internal: the best 16 (score, position) pairs pushed so far, kept in two AVX-512 registers'
// worth of 64-bit keys, for the IVF-int8 searcher's per-query candidates (src/ann/ivf8_searcher.cpp).
// A key is the score as an order-preserving 32-bit key (-0 as +0, equal floats tie) above the
// position's complement, so a larger key is a better pair: higher score, then lower position (the
// searcher's total order). An insertion is branch-free: the keys below the new one move one lane
// down (a lane shift and a masked minimum), instead of a sorted array's loop of compares and moves
// whose branches the scores make unpredictable. Only where top16_available() (AVX-512F).
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace igla::ann {

inline uint64_t top16_key(float s, uint32_t pos) {
  if (s == 0.0f) s = 0.0f;  // -0 as +0
  uint32_t b;
  std::memcpy(&b, &s, 4);
  b ^= (b & 0x80000000u) ? 0xFFFFFFFFu : 0x80000000u;
  return (uint64_t{b} << 32) | (0xFFFFFFFFu - pos);
}
inline float top16_score(uint64_t key) {
  const uint32_t k = static_cast<uint32_t>(key >> 32);
  const uint32_t b = (k & 0x80000000u) ? (k ^ 0x80000000u) : ~k;
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}
inline uint32_t top16_pos(uint64_t key) { return 0xFFFFFFFFu - static_cast<uint32_t>(key); }

bool top16_available();

// The 16 best keys pushed, best first; empty slots hold key 0 (below every pair of a finite score).
class Top16 {
 public:
  void clear() {
    for (auto& k : keys_) k = 0;
  }
  uint64_t operator[](size_t i) const { return keys_[i]; }
#if defined(__x86_64__)
  // Inserts `key` (a key not already held) in order; the 16th best falls out.
  __attribute__((target("avx512f"))) void insert(uint64_t key) {
    const __m512i x = _mm512_set1_epi64(static_cast<long long>(key));
    const __m512i lo = _mm512_load_si512(keys_), hi = _mm512_load_si512(keys_ + 8);
    // lanes shifted one down: [first lane: all ones, lo0..lo6] and [lo7, hi0..hi6]
    // (the masked form with every lane: GCC 12's plain one warns on its undefined pass-through)
    const __m512i slo = _mm512_maskz_alignr_epi64(0xFF, lo, _mm512_set1_epi64(-1), 7);
    const __m512i shi = _mm512_maskz_alignr_epi64(0xFF, hi, lo, 7);
    // Keys below x (a suffix: the keys are sorted) take min(the key above them, x): x at the
    // first of them, the shifted key after it.
    _mm512_store_si512(keys_, _mm512_mask_min_epu64(lo, _mm512_cmplt_epu64_mask(lo, x), slo, x));
    _mm512_store_si512(keys_ + 8, _mm512_mask_min_epu64(hi, _mm512_cmplt_epu64_mask(hi, x), shi, x));
  }
#else
  void insert(uint64_t) {}  // not reached: top16_available() is false
#endif

 private:
  alignas(64) uint64_t keys_[16] = {};
};

}  // namespace igla::ann
