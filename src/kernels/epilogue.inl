// Scoring and selection shared by every kernel. Included by each ISA's .cpp inside its own
// namespace and compiled with that ISA's flags, so the auto-vectorizer uses its registers while
// the float operations stay those of combine_score(), in the same order (no FMA contraction:
// -ffp-contract=off).
//
// Expects: <cstddef>, <cstdint>, <limits>, "kernels/kernel.hpp".

inline void scores_impl(igla::Combine c, const int32_t* dots, size_t ds, size_t n_terms, const float* w,
                        const float* inv, size_t n, float* out) {
  if (c == igla::Combine::Sum) {
    // Term-major so each loop vectorizes; per word this is ((0 + w0*d0) + w1*d1 + ...) * inv.
    for (size_t i = 0; i < n; ++i) out[i] = 0.0f;
    for (size_t t = 0; t < n_terms; ++t) {
      const float wt = w[t];
      const int32_t* d = dots + t * ds;
      for (size_t i = 0; i < n; ++i) out[i] += wt * static_cast<float>(d[i]);
    }
    for (size_t i = 0; i < n; ++i) out[i] *= inv[i];
    return;
  }
  const int32_t *da = dots, *db = dots + ds, *dc = dots + 2 * ds;
  for (size_t i = 0; i < n; ++i) {
    const float ca = (w[0] * static_cast<float>(da[i])) * inv[i];
    const float cb = (w[1] * static_cast<float>(db[i])) * inv[i];
    const float cc = (w[2] * static_cast<float>(dc[i])) * inv[i];
    const float sa = (ca + 1.0f) * 0.5f, sb = (cb + 1.0f) * 0.5f, sc = (cc + 1.0f) * 0.5f;
    out[i] = (sb * sc) / (sa + igla::kCosMulEpsilon);
  }
}

inline size_t select_impl(const float* s, size_t n, float thr, uint32_t* idx) {
  // Almost every word is rejected: test 16 at a time (one vector compare), look closer rarely.
  size_t m = 0, i = 0;
  for (; i + 16 <= n; i += 16) {
    int any = 0;
    for (size_t j = 0; j < 16; ++j) any |= s[i + j] > thr;
    if (!any) continue;
    for (size_t j = 0; j < 16; ++j)
      if (s[i + j] > thr) idx[m++] = static_cast<uint32_t>(i + j);
  }
  for (; i < n; ++i)
    if (s[i] > thr) idx[m++] = static_cast<uint32_t>(i);
  return m;
}

// The fused scan built from the three steps above, for kernels without a register-fused one.
template <class Dots>
size_t scan_cosine_two_pass(Dots dots, const uint64_t* blocks, size_t nblocks, uint32_t W, const uint64_t* queries,
                            size_t nq, const float* w, const float* thr, const float* inv, size_t nw,
                            igla::kernels::Candidate* out, int32_t* scratch) {
  const size_t stride = nblocks * 8;
  dots(blocks, nblocks, W, queries, nq, scratch, stride);
  float scores[512];
  uint32_t idx[512];
  size_t m = 0;
  for (size_t q = 0; q < nq; ++q)
    for (size_t i0 = 0; i0 < nw; i0 += 512) {
      const size_t n = nw - i0 < 512 ? nw - i0 : 512;
      scores_impl(igla::Combine::Sum, scratch + q * stride + i0, stride, 1, w + q, inv + i0, n, scores);
      const size_t c = select_impl(scores, n, thr[q], idx);
      for (size_t j = 0; j < c; ++j)
        out[m++] = {static_cast<uint32_t>(q), static_cast<uint32_t>(i0 + idx[j]), scores[idx[j]]};
    }
  return m;
}
