// The NEON kernel's body, compiled twice: neon_kernel.cpp (any AArch64: NEON is part of it) and
// neon_dotprod_kernel.cpp (built with +dotprod, picked at run time where the CPU has it). The
// including file opens its own namespace (so nothing here is shared between the two builds) and
// defines kName and kDescription.
//
// Code layout: the 16-word one (kernels/layout.hpp), one 32-bit lane per word, 4 words per q
// register. Per 32 dims, 4 words and one query: t = nz & qnz, u = t & (sg ^ qsg), then
// dot += popcount(t) - 2 popcount(u) with CNT (per-byte popcounts) and
//   - plain NEON: two byte accumulators (ADD), widened with UADDLP / SADALP once per 31 plane
//     words (a byte holds 31 x 8);
//   - dotprod: one int32 accumulator, SDOT with 1s (t) and -2s (u): no widening, half the
//     accumulator registers.
// Seven vector ops per 4 words, query and 32 dims in the loop either way; scripts/mca-model.sh
// gives the model's cycles. QB queries share each loaded code register (register blocking);
// every query word is a plain 128-bit load of a pre-broadcast copy (LD1R costs a vector-pipe
// slot on Neoverse N1).
//
// Scores use combine_score's float operations in its order (FMUL, FADD; no FMA contraction:
// -ffp-contract=off), so they agree with the scalar reference to the bit.
//
// Expects: <arm_neon.h>, <algorithm>, <cmath>, <limits>, <stdexcept>, <type_traits>, <vector>,
// "kernels/kernel.hpp".

#include "kernels/epilogue.inl"

constexpr uint32_t kWords = 16;  // vocabulary words per block of the layout

// The plane words of one pass's QB queries, each repeated in 4 lanes, interleaved so that plane
// word j of query k is at words + ((j * QB + k) * 2 + {0: nz, 1: sign}) * 4. (Rows of pack_row
// are 64-bit words; 32-bit word j is the low or high half of word j / 2.)
template <int QB>
class PassQueries {
 public:
  PassQueries(const uint64_t* rows, uint32_t W) {
    const size_t n = size_t{W} * QB * 8;
    if (W > kInline) big_.resize(n);
    uint32_t* out = W > kInline ? big_.data() : small_;
    const uint32_t w64 = (W + 1) / 2;
    for (int k = 0; k < QB; ++k) {
      const auto* r = reinterpret_cast<const uint32_t*>(rows + k * 2 * w64);
      for (uint32_t j = 0; j < W; ++j)
        for (int l = 0; l < 4; ++l) {
          out[((j * QB + k) * 2) * 4 + l] = r[j];
          out[((j * QB + k) * 2 + 1) * 4 + l] = r[2 * w64 + j];
        }
    }
    words = out;
  }
  PassQueries(const PassQueries&) = delete;  // `words` may point into this object
  PassQueries& operator=(const PassQueries&) = delete;
  const uint32_t* words;

 private:
  static constexpr uint32_t kInline = 32;  // plane words (1024 dims) without a heap allocation
  alignas(64) uint32_t small_[QB * 8 * kInline];
  std::vector<uint32_t> big_;
};

// Per-byte popcounts of the dims where both are non-zero (t) and, of those, where the signs
// differ (u).
inline void plane_counts(uint32x4_t nz, uint32x4_t sg, const uint32_t* q, uint8x16_t& ct, uint8x16_t& cu) {
  const uint32x4_t t = vandq_u32(nz, vld1q_u32(q));
  const uint32x4_t u = vandq_u32(t, veorq_u32(sg, vld1q_u32(q + 4)));
  ct = vcntq_u8(vreinterpretq_u8_u32(t));
  cu = vcntq_u8(vreinterpretq_u8_u32(u));
}

// The dot products of QB queries with R consecutive registers (4 words each) of one block,
// starting at register r0: d[k][r] holds words 4 (r0 + r) .. +3. WT > 0: plane words known at
// compile time; WT == 0: run-time W.
#if defined(__ARM_FEATURE_DOTPROD)
template <int QB, int R, int WT>
inline void group_dots(const uint32_t* blk, uint32_t Wrt, int r0, const uint32_t* qw, int32x4_t (&d)[QB][R]) {
  const uint32_t W = WT > 0 ? WT : Wrt;
  const int8x16_t ones = vdupq_n_s8(1), minus2 = vdupq_n_s8(-2);
  for (int k = 0; k < QB; ++k)
    for (int r = 0; r < R; ++r) d[k][r] = vdupq_n_s32(0);
#pragma GCC unroll 1
  for (uint32_t j = 0; j < W; ++j) {
    const uint32_t* p = blk + j * 2 * kWords + r0 * 4;
    const uint32_t* q = qw + j * QB * 8;
    for (int r = 0; r < R; ++r) {
      const uint32x4_t nz = vld1q_u32(p + r * 4), sg = vld1q_u32(p + kWords + r * 4);
      for (int k = 0; k < QB; ++k) {
        uint8x16_t ct, cu;
        plane_counts(nz, sg, q + k * 8, ct, cu);
        d[k][r] = vdotq_s32(vdotq_s32(d[k][r], vreinterpretq_s8_u8(ct), ones), vreinterpretq_s8_u8(cu), minus2);
      }
    }
  }
}
#else
template <int QB, int R, int WT>
inline void group_dots(const uint32_t* blk, uint32_t Wrt, int r0, const uint32_t* qw, int32x4_t (&d)[QB][R]) {
  const uint32_t W = WT > 0 ? WT : Wrt;
  constexpr uint32_t kChunk = 31;  // plane words whose per-byte counts (<= 8 each) fit a byte
  for (int k = 0; k < QB; ++k)
    for (int r = 0; r < R; ++r) d[k][r] = vdupq_n_s32(0);
  for (uint32_t j0 = 0; j0 < W; j0 += kChunk) {
    const uint32_t j1 = std::min(W, j0 + kChunk);
    uint8x16_t at[QB][R], au[QB][R];
    for (int k = 0; k < QB; ++k)
      for (int r = 0; r < R; ++r) at[k][r] = au[k][r] = vdupq_n_u8(0);
#pragma GCC unroll 1
    for (uint32_t j = j0; j < j1; ++j) {
      const uint32_t* p = blk + j * 2 * kWords + r0 * 4;
      const uint32_t* q = qw + j * QB * 8;
      for (int r = 0; r < R; ++r) {
        const uint32x4_t nz = vld1q_u32(p + r * 4), sg = vld1q_u32(p + kWords + r * 4);
        // Query words reloaded per register (the empty asm hides that they are the same), so
        // they need no registers beside the 2 QB R byte accumulators: kept, GCC spills one.
        const uint32_t* qr = q;
        asm volatile("" : "+r"(qr));
        for (int k = 0; k < QB; ++k) {
          uint8x16_t ct, cu;
          plane_counts(nz, sg, qr + k * 8, ct, cu);
          at[k][r] = vaddq_u8(at[k][r], ct);
          au[k][r] = vaddq_u8(au[k][r], cu);
        }
      }
    }
    // Bytes to 16-bit pairs (<= 496), t - 2u in [-992, 496], pairs to the word's int32.
    for (int k = 0; k < QB; ++k)
      for (int r = 0; r < R; ++r) {
        const int16x8_t t16 = vreinterpretq_s16_u16(vpaddlq_u8(at[k][r]));
        const int16x8_t u16 = vreinterpretq_s16_u16(vpaddlq_u8(au[k][r]));
        d[k][r] = vpadalq_s16(d[k][r], vsubq_s16(t16, vshlq_n_s16(u16, 1)));
      }
  }
}
#endif

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

// Registers (of 4 words) per group: 2 * QB * R byte accumulators must fit the 32 registers
// beside the query words and temporaries.
template <int QB>
constexpr int regs_per_group() {
  return QB <= 2 ? 4 : 2;
}

// Each group's dots of QB queries: f(d, w0) with d[k][r] the dots of words w0 + 4 r .. + 3.
// Groups of 4 R words, in ascending word order, up to the one holding word nw - 1.
template <int QB, int WT, class F>
inline void for_each_group(const uint32_t* blocks, size_t nblocks, uint32_t W, const uint32_t* qw, size_t nw, F&& f) {
  constexpr int R = regs_per_group<QB>();
  for (size_t b = 0; b < nblocks; ++b) {
    const uint32_t* blk = blocks + b * W * 2 * kWords;
    for (int r0 = 0; r0 < 4 && b * kWords + static_cast<size_t>(r0) * 4 < nw; r0 += R) {
      int32x4_t d[QB][R];
      group_dots<QB, R, WT>(blk, W, r0, qw, d);
      f(d, b * kWords + static_cast<size_t>(r0) * 4);
    }
  }
}

template <int QB, int WT>
void dots_pass(const uint32_t* blocks, size_t nblocks, uint32_t W, const uint64_t* rows, int32_t* out, size_t stride) {
  constexpr int R = regs_per_group<QB>();
  const PassQueries<QB> pq(rows, W);
  for_each_group<QB, WT>(blocks, nblocks, W, pq.words, nblocks * kWords, [&](const int32x4_t(&d)[QB][R], size_t w0) {
    for (int k = 0; k < QB; ++k)
      for (int r = 0; r < R; ++r) vst1q_s32(out + k * stride + w0 + r * 4, d[k][r]);
  });
}

void dots(const uint64_t* blocks, size_t nblocks, uint32_t W, const uint64_t* queries, size_t nq, int32_t* out,
          size_t stride) {
  const auto* blk = reinterpret_cast<const uint32_t*>(blocks);
  const size_t row = 2 * ((W + 1) / 2);  // uint64 per query row
  with_plane_words(W, [&](auto wt) {
    constexpr int WT = decltype(wt)::value, QB = 4;
    size_t q = 0;
    for (; q + QB <= nq; q += QB) dots_pass<QB, WT>(blk, nblocks, W, queries + q * row, out + q * stride, stride);
    for (; q < nq; ++q) dots_pass<1, WT>(blk, nblocks, W, queries + q * row, out + q * stride, stride);
  });
}

// The fused scans compare dot * inv with thr / w lowered by a relative 2^-20: a necessary
// condition for (w * dot) * inv > thr whatever the rounding (w > 0), so the filter never drops a
// word that belongs in the top k; a word that passes is scored with combine_score's exact
// operations, and the caller's heap (or the kernel's list) makes the exact decision. (As in the
// AVX-512 kernel.)
inline float lowered_threshold(float thr, float w) {
  const float t = thr / w;
  return t - std::fabs(t) * 0x1p-20f;
}

// The hot loop of scan_cosine and scan_topk: each group's dots of QB queries, scaled and compared
// with the queries' thresholds tk; a group where some word passes goes through memory to
// rare(dots, w0, n) (dots[k][i]: word w0 + i, i < n), which may change tk. Words from nw on are
// not reported.
template <int QB, int WT, class Rare>
inline void scan_groups(const uint32_t* blocks, size_t nblocks, uint32_t W, const PassQueries<QB>& pq,
                        const float* inv, size_t nw, const float* tk, Rare&& rare) {
  constexpr int R = regs_per_group<QB>();
  const size_t nb = std::min(nblocks, (nw + kWords - 1) / kWords);
  for_each_group<QB, WT>(blocks, nb, W, pq.words, nw, [&](const int32x4_t(&d)[QB][R], size_t w0) {
    uint32x4_t any = vdupq_n_u32(0);
    for (int r = 0; r < R; ++r) {
      const float32x4_t iv = vld1q_f32(inv + w0 + r * 4);
      for (int k = 0; k < QB; ++k)
        any = vorrq_u32(any, vcgtq_f32(vmulq_f32(vcvtq_f32_s32(d[k][r]), iv), vdupq_n_f32(tk[k])));
    }
    if (__builtin_expect(vmaxvq_u32(any) == 0, 1)) return;
    alignas(16) int32_t dots[QB][4 * R];
    for (int k = 0; k < QB; ++k)
      for (int r = 0; r < R; ++r) vst1q_s32(dots[k] + r * 4, d[k][r]);
    rare(dots, w0, std::min<size_t>(4 * R, nw - w0));
  });
}

// Words i < n of a group (word w0 + i) whose dot passes query k's lowered threshold tk.
template <class F>
inline void for_each_pass(const int32_t* dots, size_t w0, size_t n, float tk, const float* inv, F&& f) {
  for (size_t i = 0; i < n; ++i)
    if (static_cast<float>(dots[i]) * inv[w0 + i] > tk) f(i);
}

template <int QB, int WT>
size_t scan_pass(const uint32_t* blocks, size_t nblocks, uint32_t W, const uint64_t* rows, const float* w,
                 const float* thr, const float* inv, size_t nw, uint32_t q0, Candidate* out) {
  float tk[QB];
  for (int k = 0; k < QB; ++k) tk[k] = lowered_threshold(thr[k], w[k]);
  size_t m = 0;
  scan_groups<QB, WT>(blocks, nblocks, W, PassQueries<QB>(rows, W), inv, nw, tk,
                      [&](const auto& dots, size_t w0, size_t n) {
                        for (int k = 0; k < QB; ++k)
                          for_each_pass(dots[k], w0, n, tk[k], inv, [&](size_t i) {
                            out[m++] = {q0 + static_cast<uint32_t>(k), static_cast<uint32_t>(w0 + i),
                                        igla::combine_score(igla::Combine::Sum, &dots[k][i], w + k, 1, inv[w0 + i])};
                          });
                      });
  return m;
}

size_t scan_cosine(const uint64_t* blocks, size_t nblocks, uint32_t W, const uint64_t* queries, size_t nq,
                   const float* w, const float* thr, const float* inv, size_t nw, Candidate* out, int32_t*) {
  const auto* blk = reinterpret_cast<const uint32_t*>(blocks);
  const size_t row = 2 * ((W + 1) / 2);  // uint64 per query row
  return with_plane_words(W, [&](auto wt) {
    constexpr int WT = decltype(wt)::value, QB = 4;
    size_t q = 0, m = 0;
    for (; q + QB <= nq; q += QB)
      m += scan_pass<QB, WT>(blk, nblocks, W, queries + q * row, w + q, thr + q, inv, nw, static_cast<uint32_t>(q),
                             out + m);
    for (; q < nq; ++q)
      m += scan_pass<1, WT>(blk, nblocks, W, queries + q * row, w + q, thr + q, inv, nw, static_cast<uint32_t>(q),
                            out + m);
    return m;
  });
}

// A query's list (FusedTopK: best first, score descending then id ascending). Words come in
// ascending id order, so a new word goes after every kept word of an equal score: the kept words
// scoring below it move down one slot. Insertions are rare once the list is full.
inline bool insert(FusedTopK& l, float s, uint32_t id) {
  if (l.n == l.k && !(s > l.score[l.k - 1])) return false;
  uint32_t pos = l.n < l.k ? l.n : l.k - 1;
  for (; pos > 0 && l.score[pos - 1] < s; --pos) {
    l.score[pos] = l.score[pos - 1];
    l.id[pos] = l.id[pos - 1];
  }
  l.score[pos] = s;
  l.id[pos] = id;
  l.n += l.n < l.k;
  return true;
}

inline float list_threshold(const FusedTopK& l, float w) {
  const float t = l.threshold();
  return t == -std::numeric_limits<float>::infinity() ? t : lowered_threshold(t, w);
}

template <int QB, int WT>
void scan_topk_pass(const uint32_t* blocks, size_t nblocks, uint32_t W, const uint64_t* rows, const float* w,
                    const float* inv, size_t nw, uint32_t id0, FusedTopK* lists) {
  float tk[QB];
  for (int k = 0; k < QB; ++k) tk[k] = list_threshold(lists[k], w[k]);
  scan_groups<QB, WT>(blocks, nblocks, W, PassQueries<QB>(rows, W), inv, nw, tk,
                      [&](const auto& dots, size_t w0, size_t n) {
                        for (int k = 0; k < QB; ++k) {
                          bool changed = false;
                          for_each_pass(dots[k], w0, n, tk[k], inv, [&](size_t i) {
                            const float s = igla::combine_score(igla::Combine::Sum, &dots[k][i], w + k, 1, inv[w0 + i]);
                            changed |= insert(lists[k], s, id0 + static_cast<uint32_t>(w0 + i));
                          });
                          if (changed) tk[k] = list_threshold(lists[k], w[k]);
                        }
                      });
}

void scan_topk(const uint64_t* blocks, size_t nblocks, uint32_t W, const uint64_t* queries, size_t nq, const float* w,
               const float* inv, size_t nw, uint32_t id0, FusedTopK* lists) {
  const auto* blk = reinterpret_cast<const uint32_t*>(blocks);
  const size_t row = 2 * ((W + 1) / 2);  // uint64 per query row
  with_plane_words(W, [&](auto wt) {
    constexpr int WT = decltype(wt)::value, QB = 4;
    size_t q = 0;
    for (; q + QB <= nq; q += QB)
      scan_topk_pass<QB, WT>(blk, nblocks, W, queries + q * row, w + q, inv, nw, id0, lists + q);
    for (; q < nq; ++q) scan_topk_pass<1, WT>(blk, nblocks, W, queries + q * row, w + q, inv, nw, id0, lists + q);
  });
}

// Multi-term Sum queries (3CosAdd, most_similar): the T term dots of a group stay in registers
// and each word gets combine_score's exact score, ((0 + w0 d0) + w1 d1 + ...) * inv, compared
// with the list's k-th score, so a word that passes enters the list without a second look.
template <int T, int WT>
void scan_sum_query(const uint32_t* blocks, size_t nblocks, uint32_t W, const uint64_t* rows, const float* w,
                    const float* inv, size_t nw, uint32_t id0, FusedTopK& list) {
  constexpr int R = regs_per_group<T>();
  const PassQueries<T> pq(rows, W);
  float thr = list.threshold();
  const size_t nb = std::min(nblocks, (nw + kWords - 1) / kWords);
  for_each_group<T, WT>(blocks, nb, W, pq.words, nw, [&](const int32x4_t(&d)[T][R], size_t w0) {
    float32x4_t s[R];
    uint32x4_t any = vdupq_n_u32(0);
    for (int r = 0; r < R; ++r) {
      s[r] = vdupq_n_f32(0.0f);
      for (int t = 0; t < T; ++t) s[r] = vaddq_f32(s[r], vmulq_f32(vdupq_n_f32(w[t]), vcvtq_f32_s32(d[t][r])));
      s[r] = vmulq_f32(s[r], vld1q_f32(inv + w0 + r * 4));
      any = vorrq_u32(any, vcgtq_f32(s[r], vdupq_n_f32(thr)));
    }
    if (__builtin_expect(vmaxvq_u32(any) == 0, 1)) return;
    alignas(16) float sc[4 * R];
    for (int r = 0; r < R; ++r) vst1q_f32(sc + r * 4, s[r]);
    const size_t n = std::min<size_t>(4 * R, nw - w0);
    for (size_t i = 0; i < n; ++i)
      if (sc[i] > thr && insert(list, sc[i], id0 + static_cast<uint32_t>(w0 + i))) thr = list.threshold();
  });
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
