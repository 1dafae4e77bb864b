// AVX2 kernel for CPUs without AVX-512 ("fast scan", as FAISS's 4-bit PQ fast-scan). AVX2 has no
// vector popcount, and a nibble-lookup popcount of the bitplanes costs ~14 vector ops per 4 words,
// 64 dims and query. Here the codes are transposed to bytes instead (the 32-word layout of
// kernels/layout.hpp: one byte per word and 4 dims, 32 words per ymm), so a VPSHUFB does the
// multiplication itself: its 16-entry table holds the products of the query's 2 dims with every
// 2-dim code of a word (a nibble), and one lookup scores 2 dims of 32 words exactly. Per 4 dims
// and 32 words each query costs 2 lookups and 2 byte adds; splitting the bytes into nibbles
// (AND, shift, AND) is shared by the QB = 8 queries of a pass. The int8 sums are widened every
// kChunk quads (|sum| <= 4 per quad), to int16 (int32 past 32764 dims).
//
// Op count per word-query at 300 dims (76 quads): 76 x (16 VPSHUFB + 16 VPADDB + 3) / (32 x 8)
// = 10.4 vector ALU ops, ~0.6 to widen, ~0.6 to score and compare: ~11.6, i.e. 2.9 cycles at
// 4 vector ALU ops per cycle (Zen 2-5; VPSHUFB alone, 4.75 per word-query on 2 shuffle pipes,
// needs 2.4). Measured on Zen 5 (2026-12-04, one core, BENCHMARKS.md): 4.0 cycles per
// word-query for the scan, 4.2 for the whole searcher (the bitplane kernel before it: 10.4).
// The step's own instruction mix, alone in a loop with no memory traffic, issues at ~3.4 ops
// per cycle there (10.5 cycles per quad of 8 queries, not 8.75), which puts the loop at 3.1.
// Above 124 dims the scans test an int16 bound per block and query first (Int16Bounds: one
// compare per 16 words instead of converting, scaling and comparing 32 floats), ~0.9 ops per
// word-query fewer; the float test runs only on blocks where a word may pass.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "kernels/kernel.hpp"
#include "kernels/layout.hpp"

namespace igla::kernels {
namespace avx2 {
#include "kernels/epilogue.inl"

constexpr uint32_t kWords = 32;  // vocabulary words per block (one per byte of a ymm)
constexpr uint32_t kChunk = 31;  // quads (4 dims) summed in int8: each adds at most +-4

// Value of a 2-bit trit code (nz, sign): 0, +1, (unused: 0), -1.
constexpr int trit_of(uint32_t code) { return (code & 1) ? ((code & 2) ? -1 : 1) : 0; }

// kPairs.t[q][x]: the dot product of 2 dims coded q (the query's nibble) and x (the word's).
struct PairTables {
  alignas(16) int8_t t[16][16];
  constexpr PairTables() : t{} {
    for (uint32_t q = 0; q < 16; ++q)
      for (uint32_t x = 0; x < 16; ++x)
        t[q][x] = static_cast<int8_t>(trit_of(q & 3) * trit_of(x & 3) + trit_of(q >> 2) * trit_of(x >> 2));
  }
};
inline constexpr PairTables kPairs{};

// The lookup tables of one pass's QB queries, for quads g = 0 .. 4 W - 1:
// tables + (g * QB + k) * 32: query k's table for the low nibble (dims 4 g, 4 g + 1), then the
// high one (4 g + 2, 4 g + 3). Query rows are pack_row's 64-bit rows (nz[W64], sign[W64]).
template <int QB>
class PassTables {
 public:
  PassTables(const uint64_t* rows, uint32_t W) : bytes_(size_t{4} * W * QB * 32) {
    const uint32_t W64 = (W + 3) / 4;
    for (int k = 0; k < QB; ++k) {
      const uint64_t* nz = rows + k * 2 * W64;
      const uint64_t* sg = nz + W64;
      for (uint32_t g = 0; g < 4 * W; ++g) {
        const unsigned shift = (4 * g) % 64;
        const uint8_t c = quad_code((nz[4 * g / 64] >> shift) & 15, (sg[4 * g / 64] >> shift) & 15);
        uint8_t* dst = bytes_.data() + (size_t{g} * QB + k) * 32;
        std::memcpy(dst, kPairs.t[c & 15], 16);
        std::memcpy(dst + 16, kPairs.t[c >> 4], 16);
      }
    }
  }
  const uint8_t* tables() const { return bytes_.data(); }

 private:
  std::vector<uint8_t> bytes_;
};

// One quad of one query: x = table(lo nibbles) + table(hi nibbles); acc += x. Written out for
// the 8-query pass: from intrinsics GCC adds the two lookups to the sum one after the other
// and copies the sum between registers each step (measured 11.0 vs 10.5 cycles per quad of 8
// queries on Zen 5; the op count gives 8.75: 16 VPSHUFB, 16 VPADDB, 3 shared ops).
#define IGLA_QUAD(K, ACC, X, Y)                                     \
  "vbroadcasti128 " #K "*32(%[t]), %[" #X "]\n\t"                 \
  "vbroadcasti128 " #K "*32+16(%[t]), %[" #Y "]\n\t"              \
  "vpshufb %[lo], %[" #X "], %[" #X "]\n\t"                       \
  "vpshufb %[hi], %[" #Y "], %[" #Y "]\n\t"                       \
  "vpaddb %[" #Y "], %[" #X "], %[" #X "]\n\t"                    \
  "vpaddb %[" #X "], %[" #ACC "], %[" #ACC "]\n\t"

inline void chunk_sums8(const uint8_t* blk, const uint8_t* tab, uint32_t n, __m256i (&acc)[8]) {
  const __m256i low = _mm256_set1_epi8(0x0f);
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  __m256i lo, hi, x0, y0, x1, y1;
  asm("1:\n\t"
      "vmovdqu (%[b]), %[hi]\n\t"
      "vpand (%[b]), %[low], %[lo]\n\t"
      "vpsrlw $4, %[hi], %[hi]\n\t"
      "vpand %[low], %[hi], %[hi]\n\t"
      IGLA_QUAD(0, a0, x0, y0) IGLA_QUAD(1, a1, x1, y1) IGLA_QUAD(2, a2, x0, y0) IGLA_QUAD(3, a3, x1, y1)
      IGLA_QUAD(4, a4, x0, y0) IGLA_QUAD(5, a5, x1, y1) IGLA_QUAD(6, a6, x0, y0) IGLA_QUAD(7, a7, x1, y1)
      "add $32, %[b]\n\t"
      "add $256, %[t]\n\t"
      "dec %[n]\n\t"
      "jnz 1b"
      : [a0] "+x"(a0), [a1] "+x"(a1), [a2] "+x"(a2), [a3] "+x"(a3), [a4] "+x"(a4), [a5] "+x"(a5), [a6] "+x"(a6),
        [a7] "+x"(a7), [lo] "=&x"(lo), [hi] "=&x"(hi), [x0] "=&x"(x0), [y0] "=&x"(y0), [x1] "=&x"(x1),
        [y1] "=&x"(y1), [b] "+r"(blk), [t] "+r"(tab), [n] "+r"(n)
      : [low] "x"(low)
      : "cc", "memory");
  acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3, acc[4] = a4, acc[5] = a5, acc[6] = a6, acc[7] = a7;
}
#undef IGLA_QUAD

// The int8 sums of QB queries over quads [g0, g1) of one block (0 < g1 - g0 <= kChunk).
template <int QB>
inline void chunk_sums(const uint8_t* blk, const uint8_t* tab, uint32_t g0, uint32_t g1, __m256i (&acc)[QB]) {
  if constexpr (QB == 8) {
    chunk_sums8(blk + size_t{g0} * 32, tab + size_t{g0} * QB * 32, g1 - g0, acc);
    return;
  }
  const __m256i low = _mm256_set1_epi8(0x0f);
  for (int k = 0; k < QB; ++k) acc[k] = _mm256_setzero_si256();
#pragma GCC unroll 1
  for (uint32_t g = g0; g < g1; ++g) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + size_t{g} * 32));
    const __m256i lo = _mm256_and_si256(v, low), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
    const uint8_t* t = tab + size_t{g} * QB * 32;
#pragma GCC unroll 8
    for (int k = 0; k < QB; ++k) {
      const __m256i tl = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t + k * 32)));
      const __m256i th =
          _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t + k * 32 + 16)));
      acc[k] = _mm256_add_epi8(acc[k], _mm256_add_epi8(_mm256_shuffle_epi8(tl, lo), _mm256_shuffle_epi8(th, hi)));
    }
  }
}

// d[k] = (First ? 0 : d[k]) + acc[k] widened to int32.
template <int QB, bool First>
inline void widen(const __m256i (&acc)[QB], int32_t (*d)[kWords]) {
  for (int k = 0; k < QB; ++k) {
    const __m128i a0 = _mm256_castsi256_si128(acc[k]), a1 = _mm256_extracti128_si256(acc[k], 1);
    const __m256i w[4] = {_mm256_cvtepi8_epi32(a0), _mm256_cvtepi8_epi32(_mm_srli_si128(a0, 8)),
                          _mm256_cvtepi8_epi32(a1), _mm256_cvtepi8_epi32(_mm_srli_si128(a1, 8))};
    auto* o = reinterpret_cast<__m256i*>(d[k]);
    for (int j = 0; j < 4; ++j) _mm256_store_si256(o + j, First ? w[j] : _mm256_add_epi32(_mm256_load_si256(o + j), w[j]));
  }
}

// h[k] = (First ? 0 : h[k]) + acc[k] widened to int16 (lanes in word order).
template <int QB, bool First>
inline void widen16(const __m256i (&acc)[QB], int16_t (*h)[kWords]) {
  for (int k = 0; k < QB; ++k) {
    const __m256i w0 = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(acc[k]));
    const __m256i w1 = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(acc[k], 1));
    auto* o = reinterpret_cast<__m256i*>(h[k]);
    _mm256_store_si256(o, First ? w0 : _mm256_add_epi16(_mm256_load_si256(o), w0));
    _mm256_store_si256(o + 1, First ? w1 : _mm256_add_epi16(_mm256_load_si256(o + 1), w1));
  }
}

// The int16 path's chunks (kChunk < G <= 32767 / 4 quads): every chunk but the last summed into
// h (int16, word order), the last one's int8 sums left in acc for the caller to add.
template <int QB>
inline void chunk_sums16(const uint8_t* blk, uint32_t G, const uint8_t* tab, int16_t (*h)[kWords],
                         __m256i (&acc)[QB]) {
  chunk_sums<QB>(blk, tab, 0, kChunk, acc);
  widen16<QB, true>(acc, h);
  uint32_t g0 = kChunk;
  for (; g0 + kChunk < G; g0 += kChunk) {
    chunk_sums<QB>(blk, tab, g0, g0 + kChunk, acc);
    widen16<QB, false>(acc, h);
  }
  chunk_sums<QB>(blk, tab, g0, G, acc);
}

// The dots of QB queries with one block of 32 words: d[k][lane], int32. Dims past one chunk
// (124) sum their chunks in int16 (|dot| <= dims) where dims fit, which halves the widening;
// int32 beyond.
template <int QB>
inline void block_dots(const uint8_t* blk, uint32_t W, const uint8_t* tab, int32_t (*d)[kWords]) {
  const uint32_t G = 4 * W;
  // The tables are the same for every block; the empty asm hides that, so GCC cannot hoist
  // (and spill) them.
  asm("" : "+r"(tab));
  __m256i acc[QB];
  if (G <= kChunk || G > 32767 / 4) {
    chunk_sums<QB>(blk, tab, 0, std::min(G, kChunk), acc);
    widen<QB, true>(acc, d);
    for (uint32_t g0 = kChunk; g0 < G; g0 += kChunk) {
      chunk_sums<QB>(blk, tab, g0, std::min(G, g0 + kChunk), acc);
      widen<QB, false>(acc, d);
    }
    return;
  }
  alignas(32) int16_t h[QB][kWords];
  chunk_sums16<QB>(blk, G, tab, h, acc);
  for (int k = 0; k < QB; ++k) {
    const __m256i* hk = reinterpret_cast<const __m256i*>(h[k]);
    const __m256i s0 = _mm256_add_epi16(_mm256_load_si256(hk), _mm256_cvtepi8_epi16(_mm256_castsi256_si128(acc[k])));
    const __m256i s1 =
        _mm256_add_epi16(_mm256_load_si256(hk + 1), _mm256_cvtepi8_epi16(_mm256_extracti128_si256(acc[k], 1)));
    auto* o = reinterpret_cast<__m256i*>(d[k]);
    _mm256_store_si256(o, _mm256_cvtepi16_epi32(_mm256_castsi256_si128(s0)));
    _mm256_store_si256(o + 1, _mm256_cvtepi16_epi32(_mm256_extracti128_si256(s0, 1)));
    _mm256_store_si256(o + 2, _mm256_cvtepi16_epi32(_mm256_castsi256_si128(s1)));
    _mm256_store_si256(o + 3, _mm256_cvtepi16_epi32(_mm256_extracti128_si256(s1, 1)));
  }
}

// The integer pre-filter of scan_topk and scan_cosine, for the int16 path (kChunk < 4 W <=
// 32767 / 4 quads): per block and query, an int16 bound B such that every word of the block
// whose dot d <= B scores (w * float(d)) * inv <= thr, so its float test is skipped. With m the
// block's largest inv and T = thr / (w m): w d inv <= w B m < thr (1 - 2^-21) for
// B <= T (1 - 2^-20) (T is computed in float: two roundings, < 2^-23), and the score's own two
// float roundings (< 2^-23 together; no denormal products: thr, w in [2^-60, 2^60], w m >=
// 2^-100) keep it below thr. Only where thr > 0 and w > 0 (the kernel contract's weights);
// otherwise, or with a NaN anywhere, B = -32768, which every dot (|d| <= 32764) exceeds: no
// filtering. A word with d <= 0 scores <= 0 < thr, which B >= 0 respects.
template <int QB>
struct Int16Bounds {
  alignas(32) float thr[8] = {};  // per query, 0 where not filtered (and in padding lanes)
  alignas(32) float w[8] = {};
  Int16Bounds(const float* wq, const float* t) {
    for (int k = 0; k < QB; ++k) set(k, wq[k], t[k]);
  }
  void set(int k, float wk, float tk) {
    w[k] = wk;
    const bool normal = wk >= 0x1p-60f && wk <= 0x1p60f && tk >= 0x1p-60f;  // no denormal products below
    thr[k] = normal ? tk : 0.0f;
  }
  // B of each query for the block whose inv_norm lanes start at iv (32 lanes).
  void block(const float* iv, int16_t (&b)[16]) const {
    __m256 m = _mm256_loadu_ps(iv);
    for (int j = 1; j < 4; ++j) m = _mm256_max_ps(_mm256_loadu_ps(iv + 8 * j), m);  // a NaN lane is dropped
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    const __m256 t = _mm256_load_ps(thr);
    const __m256 den = _mm256_mul_ps(_mm256_load_ps(w), _mm256_broadcastss_ps(h));
    __m256 T = _mm256_div_ps(t, den);
    T = _mm256_mul_ps(T, _mm256_set1_ps(1.0f - 0x1p-20f));
    T = _mm256_min_ps(_mm256_set1_ps(32767.0f), T);  // inf -> 32767; NaN stays NaN (min returns its 2nd operand)
    const __m256 ok = _mm256_and_ps(_mm256_cmp_ps(t, _mm256_setzero_ps(), _CMP_GT_OQ),
                                    _mm256_cmp_ps(den, _mm256_set1_ps(0x1p-100f), _CMP_GE_OQ));
    __m256i bi = _mm256_cvttps_epi32(T);  // NaN -> INT32_MIN
    bi = _mm256_blendv_epi8(_mm256_set1_epi32(-32768), bi, _mm256_castps_si256(ok));
    const __m128i p = _mm_packs_epi32(_mm256_castsi256_si128(bi), _mm256_extracti128_si256(bi, 1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(b), p);
  }
};

// block_dots' int16 path for scan_topk (kChunk < 4 W <= 32767 / 4): the int16 dots of QB queries
// into h (word order), and whether any word of any query is above its Int16Bounds bound bnd[k].
template <int QB>
inline bool block_sums16_any(const uint8_t* blk, uint32_t W, const uint8_t* tab, int16_t (*h)[kWords],
                             const int16_t (&bnd)[16]) {
  const uint32_t G = 4 * W;
  asm("" : "+r"(tab));
  __m256i acc[QB];
  chunk_sums16<QB>(blk, G, tab, h, acc);
  __m256i any = _mm256_setzero_si256();
  for (int k = 0; k < QB; ++k) {
    __m256i* hk = reinterpret_cast<__m256i*>(h[k]);
    const __m256i s0 = _mm256_add_epi16(_mm256_load_si256(hk), _mm256_cvtepi8_epi16(_mm256_castsi256_si128(acc[k])));
    const __m256i s1 =
        _mm256_add_epi16(_mm256_load_si256(hk + 1), _mm256_cvtepi8_epi16(_mm256_extracti128_si256(acc[k], 1)));
    _mm256_store_si256(hk, s0);
    _mm256_store_si256(hk + 1, s1);
    const __m256i b = _mm256_set1_epi16(bnd[k]);
    any = _mm256_or_si256(any, _mm256_or_si256(_mm256_cmpgt_epi16(s0, b), _mm256_cmpgt_epi16(s1, b)));
  }
  return !_mm256_testz_si256(any, any);
}

// d[k] = h[k] widened to int32.
template <int QB>
inline void widen_h(const int16_t (*h)[kWords], int32_t (*d)[kWords]) {
  for (int k = 0; k < QB; ++k)
    for (int j = 0; j < 4; ++j)
      _mm256_store_si256(reinterpret_cast<__m256i*>(d[k] + 8 * j),
                         _mm256_cvtepi16_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(h[k] + 8 * j))));
}

inline const uint8_t* block_at(const uint64_t* blocks, size_t b, uint32_t W) {
  return reinterpret_cast<const uint8_t*>(blocks + b * W * 16);  // 128 bytes per block and plane word
}

// Runs f(std::integral_constant<int, QB>{}, q) over passes of QB = 8 queries, then 4, 2, 1.
template <class F>
void by_passes(size_t nq, F&& f) {
  size_t q = 0;
  for (; q + 8 <= nq; q += 8) f(std::integral_constant<int, 8>{}, q);
  if (nq - q >= 4) f(std::integral_constant<int, 4>{}, q), q += 4;
  if (nq - q >= 2) f(std::integral_constant<int, 2>{}, q), q += 2;
  if (nq - q >= 1) f(std::integral_constant<int, 1>{}, q);
}

// Bit `lane` set where (w * float(d[lane])) * inv[lane] > thr: the score of combine_score for one
// term (its 0 + w d is w d), compared exactly.
inline uint32_t above(const int32_t* d, const float* inv, float w, float thr) {
  const __m256 ws = _mm256_set1_ps(w), t = _mm256_set1_ps(thr);
  uint32_t m = 0;
  for (int j = 0; j < 4; ++j) {
    const __m256 dj = _mm256_cvtepi32_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(d + 8 * j)));
    const __m256 s = _mm256_mul_ps(_mm256_mul_ps(ws, dj), _mm256_loadu_ps(inv + 8 * j));
    m |= static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(s, t, _CMP_GT_OQ))) << (8 * j);
  }
  return m;
}

// Any word of the block above its query's threshold, for QB queries (one branch per block).
template <int QB>
inline bool any_above(const int32_t (*d)[kWords], const float* inv, const float* w, const float* thr) {
  __m256 iv[4];
  for (int j = 0; j < 4; ++j) iv[j] = _mm256_loadu_ps(inv + 8 * j);
  __m256 any = _mm256_setzero_ps();
  for (int k = 0; k < QB; ++k) {
    const __m256 ws = _mm256_set1_ps(w[k]), t = _mm256_set1_ps(thr[k]);
    for (int j = 0; j < 4; ++j) {
      const __m256 dj = _mm256_cvtepi32_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(d[k] + 8 * j)));
      any = _mm256_or_ps(any, _mm256_cmp_ps(_mm256_mul_ps(_mm256_mul_ps(ws, dj), iv[j]), t, _CMP_GT_OQ));
    }
  }
  return _mm256_movemask_ps(any) != 0;
}

void dots(const uint64_t* blocks, size_t nblocks, uint32_t W, const uint64_t* queries, size_t nq, int32_t* out,
          size_t stride) {
  const size_t row = 2 * ((W + 3) / 4);  // uint64 per query row
  by_passes(nq, [&](auto qb, size_t q0) {
    constexpr int QB = decltype(qb)::value;
    const PassTables<QB> pt(queries + q0 * row, W);
    alignas(32) int32_t d[QB][kWords];
    for (size_t b = 0; b < nblocks; ++b) {
      block_dots<QB>(block_at(blocks, b, W), W, pt.tables(), d);
      for (int k = 0; k < QB; ++k) std::memcpy(out + (q0 + k) * stride + b * kWords, d[k], sizeof d[k]);
    }
  });
}

// The blocks of a pass where some query k may have a word above thr[k], with their exact int32
// dots in d, handed to on_block(b). Where the dims fit int16 (kChunk < 4 W <= 32767 / 4), an
// integer bound per block and query (Int16Bounds) is tested before any float work; otherwise the
// int32 dots get the float test. on_block may raise thr[k] (scan_topk's lists): the bounds are
// re-read from thr after each call.
template <int QB, class OnBlock>
inline void for_passing_blocks(const uint64_t* blocks, size_t nb, uint32_t W, const PassTables<QB>& pt,
                               const float* w, const float* thr, const float* inv, int32_t (*d)[kWords],
                               OnBlock&& on_block) {
  if (const uint32_t G = 4 * W; G > kChunk && G <= 32767 / 4) {
    Int16Bounds<QB> bounds(w, thr);
    alignas(32) int16_t h[QB][kWords];
    int16_t bnd[16];
    for (size_t b = 0; b < nb; ++b) {
      bounds.block(inv + b * kWords, bnd);
      if (__builtin_expect(!block_sums16_any<QB>(block_at(blocks, b, W), W, pt.tables(), h, bnd), 1)) continue;
      widen_h<QB>(h, d);
      on_block(b);
      for (int k = 0; k < QB; ++k) bounds.set(k, w[k], thr[k]);
    }
    return;
  }
  for (size_t b = 0; b < nb; ++b) {
    block_dots<QB>(block_at(blocks, b, W), W, pt.tables(), d);
    if (__builtin_expect(!any_above<QB>(d, inv + b * kWords, w, thr), 1)) continue;
    on_block(b);
  }
}

size_t scan_cosine(const uint64_t* blocks, size_t nblocks, uint32_t W, const uint64_t* queries, size_t nq,
                   const float* w, const float* thr, const float* inv, size_t nw, Candidate* out, int32_t*) {
  const size_t row = 2 * ((W + 3) / 4), nb = std::min(nblocks, (nw + kWords - 1) / kWords);
  size_t m = 0;
  by_passes(nq, [&](auto qb, size_t q0) {
    constexpr int QB = decltype(qb)::value;
    const PassTables<QB> pt(queries + q0 * row, W);
    alignas(32) int32_t d[QB][kWords];
    const auto emit = [&](size_t b) {
      const float* iv = inv + b * kWords;
      for (int k = 0; k < QB; ++k)
        for (uint32_t h = above(d[k], iv, w[q0 + k], thr[q0 + k]); h; h &= h - 1) {
          const unsigned lane = static_cast<unsigned>(__builtin_ctz(h));
          const size_t word = b * kWords + lane;
          if (word < nw)
            out[m++] = {static_cast<uint32_t>(q0 + k), static_cast<uint32_t>(word),
                        igla::combine_score(igla::Combine::Sum, &d[k][lane], w + q0 + k, 1, inv[word])};
        }
    };
    for_passing_blocks<QB>(blocks, nb, W, pt, w + q0, thr + q0, inv, d, emit);
  });
  return m;
}

// A word into a kernel-held list at its rank (how many kept words score at least as much: they
// all have lower ids, as words come in ascending id order). Rare once the list is full.
inline bool insert(FusedTopK& l, float s, uint32_t id) {
  uint32_t rank = 0;
  for (uint32_t i = 0; i < l.k; ++i) rank += l.score[i] >= s;  // slots past n hold -inf
  if (rank >= l.k) return false;
  const uint32_t move = l.k - 1 - rank;
  std::memmove(l.score + rank + 1, l.score + rank, move * sizeof(float));
  std::memmove(l.id + rank + 1, l.id + rank, move * sizeof(uint32_t));
  l.score[rank] = s;
  l.id[rank] = id;
  l.n += l.n < l.k;
  return true;
}

// Rare path of scan_topk: some query has a word of block b above its list's threshold.
template <int QB>
[[gnu::noinline]] void insert_block(const int32_t (*d)[kWords], float* thr, size_t b, const float* w,
                                    const float* inv, size_t nw, uint32_t id0, FusedTopK* lists) {
  for (int k = 0; k < QB; ++k)
    for (uint32_t h = above(d[k], inv + b * kWords, w[k], thr[k]); h; h &= h - 1) {
      const unsigned lane = static_cast<unsigned>(__builtin_ctz(h));
      const size_t word = b * kWords + lane;
      if (word >= nw) break;
      const float s = igla::combine_score(igla::Combine::Sum, &d[k][lane], w + k, 1, inv[word]);
      if (s > thr[k] && insert(lists[k], s, id0 + static_cast<uint32_t>(word))) thr[k] = lists[k].threshold();
    }
}

void scan_topk(const uint64_t* blocks, size_t nblocks, uint32_t W, const uint64_t* queries, size_t nq, const float* w,
               const float* inv, size_t nw, uint32_t id0, FusedTopK* lists) {
  const size_t row = 2 * ((W + 3) / 4), nb = std::min(nblocks, (nw + kWords - 1) / kWords);
  by_passes(nq, [&](auto qb, size_t q0) {
    constexpr int QB = decltype(qb)::value;
    const PassTables<QB> pt(queries + q0 * row, W);
    float thr[QB];
    for (int k = 0; k < QB; ++k) thr[k] = lists[q0 + k].threshold();
    alignas(32) int32_t d[QB][kWords];
    for_passing_blocks<QB>(blocks, nb, W, pt, w + q0, thr, inv, d,
                           [&](size_t b) { insert_block<QB>(d, thr, b, w + q0, inv, nw, id0, lists + q0); });
  });
}

// Multi-term Sum queries (3CosAdd, most_similar): a query's T terms are one pass; each block gets
// the exact score of combine_score, ((0 + w0 d0) + w1 d1 + ...) * inv, the same float operations
// in the same order, so a word that passes enters the list without a second look.
template <int T>
void scan_sum_query(const uint64_t* blocks, size_t nb, uint32_t W, const uint64_t* rows, const float* w,
                    const float* inv, size_t nw, uint32_t id0, FusedTopK& list) {
  const PassTables<T> pt(rows, W);
  float thr = list.threshold();
  alignas(32) int32_t d[T][kWords];
  alignas(32) float sc[kWords];
  for (size_t b = 0; b < nb; ++b) {
    block_dots<T>(block_at(blocks, b, W), W, pt.tables(), d);
    uint32_t hit = 0;
    for (int j = 0; j < 4; ++j) {
      __m256 s = _mm256_setzero_ps();
      for (int t = 0; t < T; ++t)
        s = _mm256_add_ps(s, _mm256_mul_ps(_mm256_set1_ps(w[t]), _mm256_cvtepi32_ps(_mm256_load_si256(
                                                                      reinterpret_cast<const __m256i*>(d[t] + 8 * j)))));
      s = _mm256_mul_ps(s, _mm256_loadu_ps(inv + b * kWords + 8 * j));
      _mm256_store_ps(sc + 8 * j, s);
      hit |= static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(s, _mm256_set1_ps(thr), _CMP_GT_OQ))) << (8 * j);
    }
    for (; hit; hit &= hit - 1) {
      const unsigned lane = static_cast<unsigned>(__builtin_ctz(hit));
      const size_t word = b * kWords + lane;
      if (word >= nw) break;
      if (sc[lane] > thr && insert(list, sc[lane], id0 + static_cast<uint32_t>(word))) thr = list.threshold();
    }
  }
}

void scan_sum_topk(const uint64_t* blocks, size_t nblocks, uint32_t W, const uint64_t* queries,
                   const uint32_t* term_offsets, size_t nq, const float* w, const float* inv, size_t nw, uint32_t id0,
                   FusedTopK* lists) {
  const size_t row = 2 * ((W + 3) / 4), nb = std::min(nblocks, (nw + kWords - 1) / kWords);
  for (size_t q = 0; q < nq; ++q) {
    const uint32_t t0 = term_offsets[q], nt = term_offsets[q + 1] - t0;
    const uint64_t* r = queries + t0 * row;
    switch (nt) {
      case 1: scan_sum_query<1>(blocks, nb, W, r, w + t0, inv, nw, id0, lists[q]); break;
      case 2: scan_sum_query<2>(blocks, nb, W, r, w + t0, inv, nw, id0, lists[q]); break;
      case 3: scan_sum_query<3>(blocks, nb, W, r, w + t0, inv, nw, id0, lists[q]); break;
      case 4: scan_sum_query<4>(blocks, nb, W, r, w + t0, inv, nw, id0, lists[q]); break;
      default: throw std::logic_error("scan_sum_topk: queries of 1 to 4 terms");
    }
  }
}

bool supported() { return __builtin_cpu_supports("avx2"); }
}  // namespace avx2

const Kernel& avx2_kernel() {
  static const Kernel k{"avx2",
                        "AVX2, byte-transposed codes (32 words per register), VPSHUFB product tables, 8 queries "
                        "per pass",
                        avx2::kWords,
                        true,
                        avx2::supported,
                        avx2::dots,
                        avx2::scores_impl,
                        avx2::select_impl,
                        avx2::scan_cosine,
                        avx2::scan_topk,
                        avx2::scan_sum_topk};
  return k;
}

}  // namespace igla::kernels
