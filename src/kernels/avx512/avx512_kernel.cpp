// AVX-512 kernel (needs VPOPCNTDQ). Its code layout is the 16-word one (kernels/layout.hpp): one
// 32-bit zmm lane per vocabulary word and 32 dims per plane word, so a block of 16 words is
// scored against a query with no horizontal reduction, and the float epilogue (convert, scale,
// compare) is paid once per 16 words instead of once per 8. Per 32 dims and 16 words: one AND,
// one ternary-logic op, two VPOPCNTD and two adds. QB queries share each loaded block (register
// blocking), so a pass over the vocabulary serves QB queries at once. Nearest-word and short Sum
// queries keep their top-k lists inside the kernel (scan_topk, scan_sum_topk).
//
// Measured on Zen 5 (one core, 100K x 300, 8 queries per pass): the same loop with 64-bit lanes
// and 8-word blocks ran at 0.45 ns per word-query, 0.37 with 32-bit lanes; the dot loop alone is
// 0.31-0.34 either way. VCVTQQ2PS (the 64-bit lanes' convert) issues at ~1.4 per cycle here,
// VPOPCNTD at 2, VPADDD at 4. BENCHMARKS.md has the bound: ~1.1 cycles per word-query against
// an issue bound of 1.0.
// GCC 12 warns inside its own avx512fintrin.h (the undefined pass-through operand of
// _mm512_cvtepi32_ps); not our code.
#if defined(__GNUC__) && !defined(__clang__)  // clang has no -Wmaybe-uninitialized (and warns on it)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "kernels/kernel.hpp"

namespace igla::kernels {
namespace avx512 {
#include "kernels/epilogue.inl"

constexpr uint32_t kWords = 16;  // vocabulary words per block (one per 32-bit lane)

// The plane words of one pass's QB queries, interleaved so that plane word j of query k sits at
// a constant offset from j's group: p[2 k] = nz, p[2 k + 1] = sign, p = words + j * 2 * QB.
// (Rows of pack_row are 64-bit words; 32-bit word j is the low or high half of word j / 2.)
template <int QB>
class PassQueries {
 public:
  PassQueries(const uint64_t* rows, uint32_t W) {
    if (W > kInline) big_.resize(size_t{W} * 2 * QB);
    uint32_t* out = W > kInline ? big_.data() : small_;
    const uint32_t w64 = (W + 1) / 2;
    for (int k = 0; k < QB; ++k) {
      const auto* r = reinterpret_cast<const uint32_t*>(rows + k * 2 * w64);
      for (uint32_t j = 0; j < W; ++j) {
        out[j * 2 * QB + 2 * k] = r[j];
        out[j * 2 * QB + 2 * k + 1] = r[2 * w64 + j];
      }
    }
    words = out;
  }
  PassQueries(const PassQueries&) = delete;  // `words` may point into this object
  PassQueries& operator=(const PassQueries&) = delete;
  const uint32_t* words;

 private:
  static constexpr uint32_t kInline = 64;  // plane words (2048 dims) without a heap allocation
  alignas(64) uint32_t small_[2 * QB * kInline];
  std::vector<uint32_t> big_;
};

// One plane word of a block against QB queries (p: its query words): the dims where both are
// non-zero (t) and where, of those, the signs differ (u); dot = popcount(t) - 2 * popcount(u).
template <int QB>
inline void plane_step(__m512i nz, __m512i sg, const uint32_t* p, __m512i (&d)[QB], __m512i (&au)[QB], bool first) {
#pragma GCC unroll 16
  for (int k = 0; k < QB; ++k) {
    const __m512i t = _mm512_and_si512(nz, _mm512_set1_epi32(static_cast<int>(p[2 * k])));
    // 0x60 = A & (B ^ C) with A = t, B = word signs, C = query signs (a broadcast operand).
    const __m512i u = _mm512_ternarylogic_epi32(t, sg, _mm512_set1_epi32(static_cast<int>(p[2 * k + 1])), 0x60);
    d[k] = first ? _mm512_popcnt_epi32(t) : _mm512_add_epi32(d[k], _mm512_popcnt_epi32(t));
    au[k] = first ? _mm512_popcnt_epi32(u) : _mm512_add_epi32(au[k], _mm512_popcnt_epi32(u));
  }
}

// The dot products of QB queries with one 16-word block, one zmm of 16 int32 per query. WT > 0:
// plane words known at compile time; WT == 0: run-time W.
//
// Code shape matters as much as the op count (measured 0.45 vs 0.32 ns per word-query): the
// loop over plane words stays rolled with the QB queries unrolled inside it, so the 2 x QB
// accumulators stay in registers and every query word is a broadcast load folded into its op.
// Fully unrolled, GCC hoists the QB x 2W broadcasts out of the block loop and spills them.
// The step of plane_step for 8 queries, written out: with intrinsics GCC computes all 8 t and u
// first (8 + 8 live temporaries beside 16 accumulators), runs out of the 32 registers, and
// copies or spills accumulators every step (measured 0.44 vs 0.41 ns per word-query). Here two
// temporaries are reused; the renamer removes the false dependencies. Per query: AND with the
// broadcast nz word, broadcast load of the sign word, ternary-logic 0x48 (t & (qs ^ sg)), two
// VPOPCNTD and two adds.
#define IGLA_AND(K, T) "vpandd " #K "*8(%[p])%{1to16%}, %[nz], %[" #T "]\n\t"
#define IGLA_POP(T, U) "vpopcntd %[" #T "], %[" #U "]\n\t"
#define IGLA_TERN(K, T) "vpternlogd $0x60, " #K "*8+4(%[p])%{1to16%}, %[sg], %[" #T "]\n\t"
#define IGLA_ADD(T, D) "vpaddd %[" #T "], %[" #D "], %[" #D "]\n\t"
// t = nz & qnz; popcount(t); t = t & (sg ^ qs) (0x60 = A & (B ^ C) with A = t, B = sg, C = the
// query's sign word as a broadcast memory operand: a separate broadcast load costs a vector
// ALU slot here, measured 7%); popcount(t). The first plane word writes the sums, the others
// add to them.
#define IGLA_FIRST(K0, K1, K2, K3, D0, D1, D2, D3, A0, A1, A2, A3)                                     \
  IGLA_AND(K0, t0) IGLA_AND(K1, t1) IGLA_AND(K2, t2) IGLA_AND(K3, t3) IGLA_POP(t0, D0) IGLA_POP(t1, D1) \
  IGLA_POP(t2, D2) IGLA_POP(t3, D3) IGLA_TERN(K0, t0) IGLA_TERN(K1, t1) IGLA_TERN(K2, t2)               \
  IGLA_TERN(K3, t3) IGLA_POP(t0, A0) IGLA_POP(t1, A1) IGLA_POP(t2, A2) IGLA_POP(t3, A3)
#define IGLA_NEXT(K0, K1, K2, K3, D0, D1, D2, D3, A0, A1, A2, A3)                                      \
  IGLA_AND(K0, t0) IGLA_AND(K1, t1) IGLA_AND(K2, t2) IGLA_AND(K3, t3) IGLA_POP(t0, u0) IGLA_POP(t1, u1) \
  IGLA_POP(t2, u2) IGLA_POP(t3, u3) IGLA_TERN(K0, t0) IGLA_TERN(K1, t1) IGLA_TERN(K2, t2)               \
  IGLA_TERN(K3, t3) IGLA_ADD(u0, D0) IGLA_ADD(u1, D1) IGLA_ADD(u2, D2) IGLA_ADD(u3, D3)                 \
  IGLA_POP(t0, t0) IGLA_POP(t1, t1) IGLA_POP(t2, t2) IGLA_POP(t3, t3) IGLA_ADD(t0, A0) IGLA_ADD(t1, A1)  \
  IGLA_ADD(t2, A2) IGLA_ADD(t3, A3)
#define IGLA_STEP4(OP, ACC, K0, K1, K2, K3)                                                                        \
  asm(OP(K0, K1, K2, K3, d0, d1, d2, d3, a0, a1, a2, a3)                                                \
      : [d0] ACC(d[K0]), [d1] ACC(d[K1]), [d2] ACC(d[K2]), [d3] ACC(d[K3]), [a0] ACC(au[K0]), [a1] ACC(au[K1]),    \
        [a2] ACC(au[K2]), [a3] ACC(au[K3]), [t0] "=&v"(t0), [t1] "=&v"(t1), [t2] "=&v"(t2), [t3] "=&v"(t3),       \
        [u0] "=&v"(u0), [u1] "=&v"(u1), [u2] "=&v"(u2), [u3] "=&v"(u3)                                             \
      : [nz] "v"(nz), [sg] "v"(sg), [p] "r"(p), "m"(*reinterpret_cast<const uint32_t(*)[16]>(p)))
#define IGLA_ADD_TO(x) "+v"(x)
#define IGLA_WRITE(x) "=&v"(x)

// First = true: the block's first plane word sets the accumulators (no zeroing, no add).
template <bool First>
inline void plane_step8(__m512i nz, __m512i sg, const uint32_t* p, __m512i (&d)[8], __m512i (&au)[8]) {
  __m512i t0, t1, t2, t3, u0, u1, u2, u3;
  // Two statements of 4 queries: GCC allows 30 operands per asm, and "+v" counts twice.
  if constexpr (First) {
    IGLA_STEP4(IGLA_FIRST, IGLA_WRITE, 0, 1, 2, 3);
    IGLA_STEP4(IGLA_FIRST, IGLA_WRITE, 4, 5, 6, 7);
  } else {
    IGLA_STEP4(IGLA_NEXT, IGLA_ADD_TO, 0, 1, 2, 3);
    IGLA_STEP4(IGLA_NEXT, IGLA_ADD_TO, 4, 5, 6, 7);
  }
}
#undef IGLA_AND
#undef IGLA_POP
#undef IGLA_ADD
#undef IGLA_TERN
#undef IGLA_FIRST
#undef IGLA_NEXT
#undef IGLA_STEP4
#undef IGLA_ADD_TO
#undef IGLA_WRITE

template <int QB, int WT>
inline void block_dots(const uint32_t* blk, uint32_t Wrt, const uint32_t* qw, __m512i (&d)[QB]) {
  const uint32_t W = WT > 0 ? WT : Wrt;
  // The query words are the same for every block; the empty asm hides that, so GCC cannot
  // hoist (and spill) them.
  asm("" : "+r"(qw));
  __m512i au[QB];
  if constexpr (QB == 8) {
    plane_step8<true>(_mm512_loadu_si512(blk), _mm512_loadu_si512(blk + kWords), qw, d, au);
#pragma GCC unroll 1
    for (uint32_t j = 1; j < W; ++j)
      plane_step8<false>(_mm512_loadu_si512(blk + j * 2 * kWords), _mm512_loadu_si512(blk + j * 2 * kWords + kWords),
                         qw + j * 2 * QB, d, au);
  } else {
    plane_step<QB>(_mm512_loadu_si512(blk), _mm512_loadu_si512(blk + kWords), qw, d, au, true);
#pragma GCC unroll 1
    for (uint32_t j = 1; j < W; ++j)
      plane_step<QB>(_mm512_loadu_si512(blk + j * 2 * kWords), _mm512_loadu_si512(blk + j * 2 * kWords + kWords),
                     qw + j * 2 * QB, d, au, false);
  }
  for (int k = 0; k < QB; ++k) d[k] = _mm512_sub_epi32(d[k], _mm512_add_epi32(au[k], au[k]));
}

// Calls f(std::integral_constant<int, WT>) with WT = W for the common widths, else 0 (run time).
template <class F>
auto with_plane_words(uint32_t W, F&& f) {
  switch (W) {
    case 1: return f(std::integral_constant<int, 1>{});
    case 2: return f(std::integral_constant<int, 2>{});
    case 3: return f(std::integral_constant<int, 3>{});
    case 4: return f(std::integral_constant<int, 4>{});
    case 8: return f(std::integral_constant<int, 8>{});
    case 10: return f(std::integral_constant<int, 10>{});
    case 16: return f(std::integral_constant<int, 16>{});
    default: return f(std::integral_constant<int, 0>{});
  }
}

template <int QB, int WT>
void dots_block(const uint32_t* blocks, size_t nblocks, uint32_t W, const uint64_t* rows, int32_t* out,
                size_t stride) {
  const PassQueries<QB> pq(rows, W);
  for (size_t b = 0; b < nblocks; ++b) {
    __m512i d[QB];
    block_dots<QB, WT>(blocks + b * W * 2 * kWords, W, pq.words, d);
    for (int k = 0; k < QB; ++k) _mm512_storeu_si512(out + k * stride + b * kWords, d[k]);
  }
}

void dots(const uint64_t* blocks, size_t nblocks, uint32_t W, const uint64_t* queries, size_t nq, int32_t* out,
          size_t stride) {
  const auto* blk = reinterpret_cast<const uint32_t*>(blocks);
  const size_t row = 2 * ((W + 1) / 2);  // uint64 per query row
  with_plane_words(W, [&](auto wt) {
    constexpr int WT = decltype(wt)::value, QB = 8;
    size_t q = 0;
    for (; q + QB <= nq; q += QB) dots_block<QB, WT>(blk, nblocks, W, queries + q * row, out + q * stride, stride);
    for (; q < nq; ++q) dots_block<1, WT>(blk, nblocks, W, queries + q * row, out + q * stride, stride);
  });
}

// The fused scan: dots stay in registers; each block of 16 words is scored (convert, one
// multiply) and compared with the query's threshold right there, so almost every word costs
// one compare and nothing is written to memory. Candidates are rare once the heaps are full.
//
// The compare uses dot * inv against thr / w lowered by a relative 2^-20: a necessary condition
// for (w * dot) * inv > thr whatever the rounding (w > 0), so the filter never drops a word that
// belongs in the top k; emitted scores are recomputed with combine_score's exact operations and
// the caller's heap makes the final, exact decision.
inline float lowered_threshold(float thr, float w) {
  const float t = thr / w;
  return t - std::fabs(t) * 0x1p-20f;
}

inline __mmask16 above(__m512i d, __m512 iv, __m512 t) {
  return _mm512_cmp_ps_mask(_mm512_mul_ps(_mm512_cvtepi32_ps(d), iv), t, _CMP_GT_OQ);
}

// Rare path of scan_block: the block has at least one word above some query's threshold. The
// dots come through memory: passing the registers by reference would make GCC keep a memory
// copy of every accumulator updated in the hot loop.
template <int QB>
[[gnu::noinline]] size_t emit_block(const int32_t (*dots)[kWords], const float* tk, size_t b, const float* w,
                                    const float* inv, size_t nw, uint32_t q0, Candidate* out) {
  size_t m = 0;
  const __m512 iv = _mm512_loadu_ps(inv + b * kWords);
  for (int k = 0; k < QB; ++k) {
    const __mmask16 hit = above(_mm512_load_si512(dots[k]), iv, _mm512_set1_ps(tk[k]));
    for (uint32_t h = hit; h; h &= h - 1) {
      const unsigned lane = static_cast<unsigned>(__builtin_ctz(h));
      const size_t word = b * kWords + lane;
      if (word < nw)
        out[m++] = {q0 + static_cast<uint32_t>(k), static_cast<uint32_t>(word),
                    igla::combine_score(igla::Combine::Sum, &dots[k][lane], w + k, 1, inv[word])};
    }
  }
  return m;
}

// The hot loop of both fused scans: each block's dots of QB queries, scaled and compared with
// the queries' thresholds tk; a block where some word passes goes through memory to
// rare(dots, b), which may raise tk. Blocks past nw (the tail of a --limit) are not scanned; the
// last one may be partly past it.
template <int QB, int WT, class Rare>
inline void scan_blocks(const uint32_t* blocks, size_t nblocks, uint32_t W, const PassQueries<QB>& pq,
                        const float* inv, size_t nw, const float* tk, Rare&& rare) {
  const size_t nb = std::min(nblocks, (nw + kWords - 1) / kWords);
  for (size_t b = 0; b < nb; ++b) {
    __m512i d[QB];
    block_dots<QB, WT>(blocks + b * W * 2 * kWords, W, pq.words, d);
    const __m512 iv = _mm512_loadu_ps(inv + b * kWords);
    // The thresholds are compared from memory (a broadcast folded into the compare; kept in
    // registers they push the accumulators out of them), re-read each block.
    const float* t = tk;
    asm("" : "+r"(t) : : "memory");
    // One OR of mask registers per query and one branch per block for all its queries; the
    // per-query masks are recomputed in the rare path rather than kept (GCC packs kept masks
    // into a scalar with a dozen shifts per block).
    __mmask16 any = 0;
    for (int k = 0; k < QB; ++k) any = _kor_mask16(any, above(d[k], iv, _mm512_set1_ps(t[k])));
    if (__builtin_expect(_kortestz_mask16_u8(any, any), 1)) continue;
    alignas(64) int32_t dots[QB][kWords];
    for (int k = 0; k < QB; ++k) _mm512_store_si512(dots[k], d[k]);
    rare(dots, b);
  }
}

template <int QB, int WT>
size_t scan_block(const uint32_t* blocks, size_t nblocks, uint32_t W, const uint64_t* rows, const float* w,
                  const float* thr, const float* inv, size_t nw, uint32_t q0, Candidate* out) {
  alignas(64) float tk[16];
  if constexpr (QB == 8) {  // one vector division for the pass, not QB scalar ones (~10 cycles each)
    const __m256 t = _mm256_div_ps(_mm256_loadu_ps(thr), _mm256_loadu_ps(w));
    _mm256_store_ps(tk, _mm256_sub_ps(t, _mm256_mul_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), t),
                                                         _mm256_set1_ps(0x1p-20f))));
  } else {
    for (int k = 0; k < QB; ++k) tk[k] = lowered_threshold(thr[k], w[k]);
  }
  size_t m = 0;
  scan_blocks<QB, WT>(blocks, nblocks, W, PassQueries<QB>(rows, W), inv, nw, tk,
                      [&](const int32_t(*dots)[kWords], size_t b) {
                        m += emit_block<QB>(dots, tk, b, w, inv, nw, q0, out + m);
                      });
  return m;
}

size_t scan_cosine(const uint64_t* blocks, size_t nblocks, uint32_t W, const uint64_t* queries, size_t nq,
                   const float* w, const float* thr, const float* inv, size_t nw, Candidate* out, int32_t*) {
  const auto* blk = reinterpret_cast<const uint32_t*>(blocks);
  const size_t row = 2 * ((W + 1) / 2);  // uint64 per query row
  return with_plane_words(W, [&](auto wt) {
    // 8 queries per pass: 16 accumulators.
    constexpr int WT = decltype(wt)::value, QB = 8;
    size_t q = 0, m = 0;
    for (; q + QB <= nq; q += QB)
      m += scan_block<QB, WT>(blk, nblocks, W, queries + q * row, w + q, thr + q, inv, nw, static_cast<uint32_t>(q),
                              out + m);
    for (; q < nq; ++q)
      m += scan_block<1, WT>(blk, nblocks, W, queries + q * row, w + q, thr + q, inv, nw, static_cast<uint32_t>(q),
                             out + m);
    return m;
  });
}

// The kernel-held top-k (scan_topk, scan_sum_topk). A word enters a list at its rank = how many
// kept words score at least as much (they all have lower ids: words come in ascending id order),
// found with one compare per 16 slots in use; the slots after it move down one with a permute
// per register, the last slot of the register before coming in at lane 0. No branch depends on
// where it lands inside a register (the heap in the searcher mispredicted about twice per
// insertion).
inline bool insert(FusedTopK& l, float s, uint32_t id) {
  const __m512 sv = _mm512_set1_ps(s);
  const __m512i down = _mm512_setr_epi32(0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14);  // slot i <- i - 1
  const __m512i idv = _mm512_set1_epi32(static_cast<int>(id));
  if (l.k <= kWords) {  // one register: the common k (10 nearest words)
    const __m512 sc = _mm512_load_ps(l.score);
    const uint32_t rank = static_cast<uint32_t>(__builtin_popcount(_mm512_cmp_ps_mask(sc, sv, _CMP_GE_OQ)));
    if (rank >= l.k) return false;
    const __m512i ids = _mm512_load_si512(l.id);
    const __mmask16 after = static_cast<__mmask16>(0xFFFFu << (rank + 1)), at = static_cast<__mmask16>(1u << rank);
    _mm512_store_ps(l.score, _mm512_mask_mov_ps(_mm512_mask_permutexvar_ps(sc, after, down, sc), at, sv));
    _mm512_store_si512(l.id, _mm512_mask_mov_epi32(_mm512_mask_permutexvar_epi32(ids, after, down, ids), at, idv));
    l.n += l.n < l.k;
    return true;
  }
  const uint32_t regs = (l.k + kWords - 1) / kWords;
  uint32_t rank = 0;
  for (uint32_t r = 0; r < regs; ++r)
    rank += static_cast<uint32_t>(
        __builtin_popcount(_mm512_cmp_ps_mask(_mm512_load_ps(l.score + r * kWords), sv, _CMP_GE_OQ)));
  if (rank >= l.k) return false;
  // From the last register back, so that each reads its predecessor's last slot before it moves.
  for (uint32_t r = regs; r-- > rank / kWords;) {
    float* sp = l.score + r * kWords;
    uint32_t* ip = l.id + r * kWords;
    const __m512 sc = _mm512_load_ps(sp);
    const __m512i ids = _mm512_load_si512(ip);
    if (r > rank / kWords) {  // the whole register moves down; lane 0 from the one before
      _mm512_store_ps(sp, _mm512_mask_mov_ps(_mm512_permutexvar_ps(down, sc), 1, _mm512_set1_ps(sp[-1])));
      _mm512_store_si512(ip, _mm512_mask_mov_epi32(_mm512_permutexvar_epi32(down, ids), 1,
                                                   _mm512_set1_epi32(static_cast<int>(ip[-1]))));
    } else {
      const uint32_t at_lane = rank % kWords;
      const __mmask16 after = static_cast<__mmask16>(0xFFFFu << (at_lane + 1));
      const __mmask16 at = static_cast<__mmask16>(1u << at_lane);
      _mm512_store_ps(sp, _mm512_mask_mov_ps(_mm512_mask_permutexvar_ps(sc, after, down, sc), at, sv));
      _mm512_store_si512(ip, _mm512_mask_mov_epi32(_mm512_mask_permutexvar_epi32(ids, after, down, ids), at, idv));
    }
  }
  l.n += l.n < l.k;
  return true;
}

inline float list_threshold(const FusedTopK& l, float w) {
  const float t = l.threshold();
  return t == -std::numeric_limits<float>::infinity() ? t : lowered_threshold(t, w);
}

// Rare path of scan_block_topk: some query has a word in this block above its threshold.
template <int QB>
[[gnu::noinline]] void insert_block(const int32_t (*dots)[kWords], float* tk, size_t b, const float* w,
                                    const float* inv, size_t nw, uint32_t id0, FusedTopK* lists) {
  const __m512 iv = _mm512_loadu_ps(inv + b * kWords);
  for (int k = 0; k < QB; ++k) {
    const __mmask16 hit = above(_mm512_load_si512(dots[k]), iv, _mm512_set1_ps(tk[k]));
    bool changed = false;
    for (uint32_t h = hit; h; h &= h - 1) {
      const unsigned lane = static_cast<unsigned>(__builtin_ctz(h));
      const size_t word = b * kWords + lane;
      if (word < nw)
        changed |= insert(lists[k], igla::combine_score(igla::Combine::Sum, &dots[k][lane], w + k, 1, inv[word]),
                          id0 + static_cast<uint32_t>(word));
    }
    if (changed) tk[k] = list_threshold(lists[k], w[k]);
  }
}

template <int QB, int WT>
void scan_block_topk(const uint32_t* blocks, size_t nblocks, uint32_t W, const uint64_t* rows, const float* w,
                     const float* inv, size_t nw, uint32_t id0, FusedTopK* lists) {
  alignas(64) float tk[QB];
  for (int k = 0; k < QB; ++k) tk[k] = list_threshold(lists[k], w[k]);
  scan_blocks<QB, WT>(blocks, nblocks, W, PassQueries<QB>(rows, W), inv, nw, tk,
                      [&](const int32_t(*dots)[kWords], size_t b) {
                        insert_block<QB>(dots, tk, b, w, inv, nw, id0, lists);
                      });
}

void scan_topk(const uint64_t* blocks, size_t nblocks, uint32_t W, const uint64_t* queries, size_t nq, const float* w,
               const float* inv, size_t nw, uint32_t id0, FusedTopK* lists) {
  const auto* blk = reinterpret_cast<const uint32_t*>(blocks);
  const size_t row = 2 * ((W + 1) / 2);  // uint64 per query row
  with_plane_words(W, [&](auto wt) {
    constexpr int WT = decltype(wt)::value, QB = 8;
    size_t q = 0;
    for (; q + QB <= nq; q += QB)
      scan_block_topk<QB, WT>(blk, nblocks, W, queries + q * row, w + q, inv, nw, id0, lists + q);
    for (; q < nq; ++q) scan_block_topk<1, WT>(blk, nblocks, W, queries + q * row, w + q, inv, nw, id0, lists + q);
  });
}

// Multi-term Sum queries (3CosAdd, most_similar): a query's T term dots stay in registers and
// each block gets the exact score of combine_score — ((0 + w0 d0) + w1 d1 + ...) * inv, the same
// float operations in the same order (no FMA contraction) — compared with the list's k-th
// score, so a word that passes enters the list without a second look.
[[gnu::noinline]] void insert_scores(__m512 s, __mmask16 hit, size_t b, size_t nw, uint32_t id0, FusedTopK& list,
                                     float& thr) {
  alignas(64) float sc[kWords];
  _mm512_store_ps(sc, s);
  for (uint32_t h = hit; h; h &= h - 1) {
    const unsigned lane = static_cast<unsigned>(__builtin_ctz(h));
    const size_t word = b * kWords + lane;
    if (word < nw && insert(list, sc[lane], id0 + static_cast<uint32_t>(word))) thr = list.threshold();
  }
}

template <int T, int WT>
void scan_sum_query(const uint32_t* blocks, size_t nblocks, uint32_t W, const uint64_t* rows, const float* w,
                    const float* inv, size_t nw, uint32_t id0, FusedTopK& list) {
  const PassQueries<T> pq(rows, W);
  float thr = list.threshold();
  const size_t nb = std::min(nblocks, (nw + kWords - 1) / kWords);
  for (size_t b = 0; b < nb; ++b) {
    __m512i d[T];
    block_dots<T, WT>(blocks + b * W * 2 * kWords, W, pq.words, d);
    __m512 s = _mm512_setzero_ps();
    for (int t = 0; t < T; ++t) s = _mm512_add_ps(s, _mm512_mul_ps(_mm512_set1_ps(w[t]), _mm512_cvtepi32_ps(d[t])));
    s = _mm512_mul_ps(s, _mm512_loadu_ps(inv + b * kWords));
    const __mmask16 hit = _mm512_cmp_ps_mask(s, _mm512_set1_ps(thr), _CMP_GT_OQ);
    if (__builtin_expect(hit == 0, 1)) continue;
    insert_scores(s, hit, b, nw, id0, list, thr);
  }
}

void scan_sum_topk(const uint64_t* blocks, size_t nblocks, uint32_t W, const uint64_t* queries,
                   const uint32_t* term_offsets, size_t nq, const float* w, const float* inv, size_t nw, uint32_t id0,
                   FusedTopK* lists) {
  const auto* blk = reinterpret_cast<const uint32_t*>(blocks);
  const size_t row = 2 * ((W + 1) / 2);  // uint64 per query row
  with_plane_words(W, [&](auto wt) {
    constexpr int WT = decltype(wt)::value;
    for (size_t q = 0; q < nq; ++q) {
      const uint32_t t0 = term_offsets[q], nt = term_offsets[q + 1] - t0;
      const uint64_t* r = queries + t0 * row;
      switch (nt) {
        case 1: scan_sum_query<1, WT>(blk, nblocks, W, r, w + t0, inv, nw, id0, lists[q]); break;
        case 2: scan_sum_query<2, WT>(blk, nblocks, W, r, w + t0, inv, nw, id0, lists[q]); break;
        case 3: scan_sum_query<3, WT>(blk, nblocks, W, r, w + t0, inv, nw, id0, lists[q]); break;
        case 4: scan_sum_query<4, WT>(blk, nblocks, W, r, w + t0, inv, nw, id0, lists[q]); break;
        default: throw std::logic_error("scan_sum_topk: queries of 1 to 4 terms");
      }
    }
  });
}

size_t select(const float* s, size_t n, float thr, uint32_t* idx) {
  size_t m = 0, i = 0;
  const __m512 t = _mm512_set1_ps(thr);
  const __m512i step = _mm512_set1_epi32(16);
  __m512i ids = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  for (; i + 16 <= n; i += 16, ids = _mm512_add_epi32(ids, step)) {
    const __mmask16 gt = _mm512_cmp_ps_mask(_mm512_loadu_ps(s + i), t, _CMP_GT_OQ);
    if (gt) {
      _mm512_mask_compressstoreu_epi32(idx + m, gt, ids);
      m += static_cast<size_t>(__builtin_popcount(gt));
    }
  }
  for (; i < n; ++i)
    if (s[i] > thr) idx[m++] = static_cast<uint32_t>(i);
  return m;
}

bool supported() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vpopcntdq") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl");
}
}  // namespace avx512

const Kernel& avx512_kernel() {
  static const Kernel k{"avx512",
                        "AVX-512 + VPOPCNTDQ, 16 words per register (32-bit lanes), 8 queries per pass",
                        avx512::kWords,
                        true,
                        avx512::supported,
                        avx512::dots,
                        avx512::scores_impl,
                        avx512::select,
                        avx512::scan_cosine,
                        avx512::scan_topk,
                        avx512::scan_sum_topk};
  return k;
}

}  // namespace igla::kernels
