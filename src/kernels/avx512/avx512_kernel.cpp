// AVX-512 kernel (needs VPOPCNTDQ): one zmm lane per vocabulary word, so a block of 8 words is
// scored against a query with no horizontal reduction. Per 64 dims and 8 words: one AND, one
// ternary-logic op, two VPOPCNTQ and two adds. QB queries share each loaded block (register
// blocking), so a pass over the vocabulary serves QB queries at once.
// GCC 12 warns inside its own avx512fintrin.h (the undefined source of vpmovqd); not our code.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cmath>
#include <type_traits>
#include <limits>

#include "kernels/kernel.hpp"

namespace igla::kernels {
namespace avx512 {
#include "kernels/epilogue.inl"

// The dot products of QB queries with one 8-word block, one zmm of 8 int64 per query. WT > 0:
// plane words known at compile time (unrolled); WT == 0: run-time W.
template <int QB, int WT>
inline void block_dots(const uint64_t* blk, uint32_t Wrt, const uint64_t* q, __m512i (&d)[QB]) {
  const uint32_t W = WT > 0 ? WT : Wrt;
  __m512i au[QB];
  for (uint32_t j = 0; j < W; ++j) {
    const __m512i nz = _mm512_loadu_si512(blk + j * 16);
    const __m512i sg = _mm512_loadu_si512(blk + j * 16 + 8);
    for (int k = 0; k < QB; ++k) {
      const __m512i t = _mm512_and_si512(nz, _mm512_set1_epi64(static_cast<long long>(q[k * 2 * W + j])));
      // 0x48 = B & (A ^ C) with A = query signs, B = t, C = word signs: the dims where both are
      // non-zero and the signs differ. A is a fresh broadcast, so the result overwrites it, not t.
      const __m512i u =
          _mm512_ternarylogic_epi64(_mm512_set1_epi64(static_cast<long long>(q[k * 2 * W + W + j])), t, sg, 0x48);
      // The first plane word starts the sums: no zeroing of registers per block.
      d[k] = j == 0 ? _mm512_popcnt_epi64(t) : _mm512_add_epi64(d[k], _mm512_popcnt_epi64(t));
      au[k] = j == 0 ? _mm512_popcnt_epi64(u) : _mm512_add_epi64(au[k], _mm512_popcnt_epi64(u));
    }
  }
  for (int k = 0; k < QB; ++k) d[k] = _mm512_sub_epi64(d[k], _mm512_slli_epi64(au[k], 1));
}

// Calls f(std::integral_constant<int, WT>) with WT = W for the common widths, else 0 (run time).
template <class F>
auto with_plane_words(uint32_t W, F&& f) {
  switch (W) {
    case 1: return f(std::integral_constant<int, 1>{});
    case 2: return f(std::integral_constant<int, 2>{});
    case 3: return f(std::integral_constant<int, 3>{});
    case 4: return f(std::integral_constant<int, 4>{});
    case 5: return f(std::integral_constant<int, 5>{});
    case 6: return f(std::integral_constant<int, 6>{});
    case 8: return f(std::integral_constant<int, 8>{});
    case 16: return f(std::integral_constant<int, 16>{});
    default: return f(std::integral_constant<int, 0>{});
  }
}

template <int QB, int WT>
void dots_block(const uint64_t* blocks, size_t nblocks, uint32_t W, const uint64_t* q, int32_t* out, size_t stride) {
  for (size_t b = 0; b < nblocks; ++b) {
    __m512i d[QB];
    block_dots<QB, WT>(blocks + b * W * 16, W, q, d);
    for (int k = 0; k < QB; ++k)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + k * stride + b * 8), _mm512_cvtepi64_epi32(d[k]));
  }
}

void dots(const uint64_t* blocks, size_t nblocks, uint32_t W, const uint64_t* queries, size_t nq, int32_t* out,
          size_t stride) {
  with_plane_words(W, [&](auto wt) {
    constexpr int WT = decltype(wt)::value, QB = 6;  // 12 accumulators + block + temporaries
    size_t q = 0;
    for (; q + QB <= nq; q += QB)
      dots_block<QB, WT>(blocks, nblocks, W, queries + q * 2 * W, out + q * stride, stride);
    for (; q < nq; ++q) dots_block<1, WT>(blocks, nblocks, W, queries + q * 2 * W, out + q * stride, stride);
  });
}

// The fused scan: dots stay in registers; each block of 8 words is scored (convert, one multiply)
// and compared with the query's threshold right there, so almost every word costs one compare and
// nothing is written to memory. Candidates are rare once the heaps are full.
//
// The compare uses dot * inv against thr / w lowered by a relative 2^-20: a necessary condition
// for (w * dot) * inv > thr whatever the rounding (w > 0), so the filter never drops a word that
// belongs in the top k; emitted scores are recomputed with combine_score's exact operations and
// the caller's heap makes the final, exact decision.
inline float lowered_threshold(float thr, float w) {
  const float t = thr / w;
  return t - std::fabs(t) * 0x1p-20f;
}

template <int QB, int WT>
size_t scan_block(const uint64_t* blocks, size_t nblocks, uint32_t W, const uint64_t* q, const float* w,
                  const float* thr, const float* inv, size_t nw, uint32_t q0, Candidate* out) {
  size_t m = 0;
  __m256 tk[QB];
  for (int k = 0; k < QB; ++k) tk[k] = _mm256_set1_ps(lowered_threshold(thr[k], w[k]));
  for (size_t b = 0; b < nblocks; ++b) {
    __m512i d[QB];
    block_dots<QB, WT>(blocks + b * W * 16, W, q, d);
    const __m256 iv = _mm256_loadu_ps(inv + b * 8);
    __mmask8 hit[QB], any = 0;
    for (int k = 0; k < QB; ++k) {
      hit[k] = _mm256_cmp_ps_mask(_mm256_mul_ps(_mm512_cvtepi64_ps(d[k]), iv), tk[k], _CMP_GT_OQ);
      any |= hit[k];
    }
    if (__builtin_expect(any == 0, 1)) continue;  // one branch per block for all its queries
    for (int k = 0; k < QB; ++k) {
      if (!hit[k]) continue;
      alignas(64) int64_t dots[8];
      _mm512_store_si512(dots, d[k]);
      for (__mmask8 h = hit[k]; h; h &= static_cast<__mmask8>(h - 1)) {
        const unsigned lane = static_cast<unsigned>(__builtin_ctz(h));
        const size_t word = b * 8 + lane;
        const int32_t dot = static_cast<int32_t>(dots[lane]);
        if (word < nw)
          out[m++] = {q0 + static_cast<uint32_t>(k), static_cast<uint32_t>(word),
                      igla::combine_score(igla::Combine::Sum, &dot, w + k, 1, inv[word])};
      }
    }
  }
  return m;
}

size_t scan_cosine(const uint64_t* blocks, size_t nblocks, uint32_t W, const uint64_t* queries, size_t nq,
                   const float* w, const float* thr, const float* inv, size_t nw, Candidate* out, int32_t*) {
  return with_plane_words(W, [&](auto wt) {
    // 8 queries per pass: 16 accumulators; measured best of 3..8 queries x 1 or 2 blocks per step.
    constexpr int WT = decltype(wt)::value, QB = 8;
    size_t q = 0, m = 0;
    for (; q + QB <= nq; q += QB)
      m += scan_block<QB, WT>(blocks, nblocks, W, queries + q * 2 * W, w + q, thr + q, inv, nw,
                              static_cast<uint32_t>(q), out + m);
    for (; q < nq; ++q)
      m += scan_block<1, WT>(blocks, nblocks, W, queries + q * 2 * W, w + q, thr + q, inv, nw,
                             static_cast<uint32_t>(q), out + m);
    return m;
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
  static const Kernel k{"avx512", "AVX-512 + VPOPCNTDQ, 8 words per register, 6 queries per pass",
                        avx512::supported, avx512::dots, avx512::scores_impl, avx512::select,
                        avx512::scan_cosine};
  return k;
}

}  // namespace igla::kernels
