// igla internal: the kernel interface. One implementation per instruction set lives in
// src/kernels/{scalar,avx2,avx512,neon}/, compiled for its target and picked at run time by
// dispatch.cpp (as simdjson picks an implementation), so the search loop never sees the ISA.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>

#include "igla/search.hpp"

namespace igla::kernels {

// A word that passed a query's threshold in a fused scan; the caller's heap has the last word.
struct Candidate {
  uint32_t query;  // index within the scan's queries
  uint32_t word;   // index within the scan's words
  float score;
};

// A query's best words so far in a top-k scan (scan_topk), best first: score descending, then
// id ascending. Slots past n hold -inf. k <= kMax: up to 4 zmm of scores and 4 of ids (64 covers
// the 50 candidates of the default rerank plus an analogy's 3 exclusions).
struct alignas(64) FusedTopK {
  static constexpr uint32_t kMax = 64;
  float score[kMax];
  uint32_t id[kMax];
  uint32_t k = 0, n = 0;

  void reset(uint32_t k_) {
    k = k_;
    n = 0;
    for (auto& s : score) s = -std::numeric_limits<float>::infinity();
    for (auto& i : id) i = 0;
  }
  // Scores at or below this cannot enter (words arrive in ascending id order, so an equal
  // score would lose the tie).
  float threshold() const { return n < k ? -std::numeric_limits<float>::infinity() : score[k - 1]; }
};

struct Kernel {
  const char* name;         // "scalar", "avx2", "avx512", "neon"
  const char* description;
  // Vocabulary words per block of the kernel's code layout (kernels/layout.hpp): 8 (64-bit
  // plane words, the index's own layout), 16 (32-bit plane words) or 32 (bytes of 4 dims,
  // 16 dims per plane word). Every `blocks` argument
  // below is in this layout, and `W` counts plane words of its width: ceil(dims / (512 / block_words)).
  // Query rows are always the 64-bit rows of pack_row (nz[W64] then sign[W64]).
  uint32_t block_words;
  // scan_cosine scores in registers (true) or in two passes through `scratch` (false); the
  // searcher sizes its tiles by it.
  bool fused_scan;
  bool (*supported)();      // can this CPU run it?

  // Dot products of `nq` query rows with `nblocks` blocks of the code array:
  // out[q * out_stride + w] for w in [0, block_words * nblocks).
  void (*dots)(const uint64_t* blocks, size_t nblocks, uint32_t W, const uint64_t* queries, size_t nq,
               int32_t* out, size_t out_stride);

  // out[i] = combine_score(c, dots of word i, w, n_terms, inv_norm[i]) for i in [0, n); the
  // dots of term t are at dots[t * dot_stride + i]. Same float operations, in the same order,
  // as combine_score, so every kernel scores to the bit alike.
  void (*scores)(Combine c, const int32_t* dots, size_t dot_stride, size_t n_terms, const float* w,
                 const float* inv_norm, size_t n, float* out);

  // Writes the indices i in [0, n) with s[i] > thr to idx (ascending); returns their count.
  size_t (*select)(const float* s, size_t n, float thr, uint32_t* idx);

  // Fused one-term cosine scan (the hot path of nearest and batched search): for each query q
  // (weight w[q] > 0), score = combine_score(Sum, dot, &w[q], 1, inv_norm[i]) of words i in
  // [0, nw) of the blocks; emits (q, i, score) for at least every word with score > thr[q] (a
  // kernel may emit a few more: the caller's heap decides), in ascending i per query.
  // `scratch` holds nq * block_words * nblocks int32 for kernels that score in two passes.
  size_t (*scan_cosine)(const uint64_t* blocks, size_t nblocks, uint32_t W, const uint64_t* queries, size_t nq,
                        const float* w, const float* thr, const float* inv_norm, size_t nw, Candidate* out,
                        int32_t* scratch);

  // Optional (nullptr when the kernel has none): scan_cosine with the top-k kept by the kernel.
  // Each query q's words with a score that beats its list (lists[q], k <= FusedTopK::kMax) go
  // straight into it, with id id0 + i, so the threshold tightens at once instead of per call
  // and no candidate is handed back. Lists persist across calls: the caller cuts a scan into
  // tiles in ascending word order.
  void (*scan_topk)(const uint64_t* blocks, size_t nblocks, uint32_t W, const uint64_t* queries, size_t nq,
                    const float* w, const float* inv_norm, size_t nw, uint32_t id0, FusedTopK* lists);

  // Optional: the same for Sum queries of 1 to kMaxSumTerms terms (3CosAdd, most_similar; any
  // weights): query q's terms are rows [term_offsets[q], term_offsets[q + 1]) of `queries`,
  // their weights w[...] alike; scores are exactly combine_score(Sum, ...).
  static constexpr uint32_t kMaxSumTerms = 4;
  void (*scan_sum_topk)(const uint64_t* blocks, size_t nblocks, uint32_t W, const uint64_t* queries,
                        const uint32_t* term_offsets, size_t nq, const float* w, const float* inv_norm, size_t nw,
                        uint32_t id0, FusedTopK* lists);
};

const Kernel& scalar_kernel();
const Kernel& avx2_kernel();
const Kernel& avx512_kernel();
const Kernel& neon_kernel();          // AArch64 builds only
const Kernel& neon_dotprod_kernel();  // AArch64 builds only

// The kernel to use: `name` if given and not "auto" (error if unknown or unsupported), else the
// best one this CPU supports. (The CLI maps $IGLA_KERNEL onto the name; the library reads no
// environment.)
const Kernel& select_kernel(const std::string& name = "");
std::span<const Kernel* const> all_kernels();

// select_kernel(name) and why, in words: "kernel avx2 (forced by <forced_by>; cpu has avx2
// avx512f ...)" for a name, "kernel avx512 (the best this cpu runs; cpu has ...)" for "" or
// "auto". `forced_by` says where the name came from, e.g. "IGLA_KERNEL=avx2" or "--kernel avx2".
std::string explain_kernel_choice(const std::string& name, const std::string& forced_by);

}  // namespace igla::kernels
