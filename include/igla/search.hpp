// igla: exact batch search over ternary codes.
//
// Batch is the unit (as in FAISS's Index::search): one query is a batch of one. A query is one
// or more ternary "terms" with float weights; a vocabulary word x with inverse norm inv(x) scores
//
//   Combine::Sum     score = (sum over terms t, in order, of w_t * float(dot(x, t))) * inv(x)
//                    one term with w = 1/|q| is cosine similarity; terms b, a, c with weights
//                    1/|b|, -1/|a|, 1/|c| are 3CosAdd (cos(x,b) - cos(x,a) + cos(x,c))
//   Combine::CosMul  3CosMul (Levy & Goldberg 2014) of exactly three terms a, b, c:
//                    cos_t = (w_t * float(dot(x, t))) * inv(x), s_t = (cos_t + 1) / 2,
//                    score = s_b * s_c / (s_a + 0.001)
//
// The dot products are exact integers; the float expression above is evaluated in exactly this
// order by every implementation (scalar reference, SIMD kernels, CUDA), so scores agree to the
// bit. Results are ordered by score descending, ties broken by the lower word id.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "igla/error.hpp"
#include "igla/index.hpp"

namespace igla {

enum class Combine : uint8_t { Sum, CosMul };

inline constexpr float kCosMulEpsilon = 0.001f;

// The score of one word from its term dot products; shared by every implementation.
inline float combine_score(Combine c, const int32_t* dots, const float* w, size_t n_terms, float inv_x) {
  if (c == Combine::Sum) {
    float s = 0.0f;
    for (size_t t = 0; t < n_terms; ++t) s += w[t] * static_cast<float>(dots[t]);
    return s * inv_x;
  }
  const float ca = (w[0] * static_cast<float>(dots[0])) * inv_x;
  const float cb = (w[1] * static_cast<float>(dots[1])) * inv_x;
  const float cc = (w[2] * static_cast<float>(dots[2])) * inv_x;
  const float sa = (ca + 1.0f) * 0.5f, sb = (cb + 1.0f) * 0.5f, sc = (cc + 1.0f) * 0.5f;
  return (sb * sc) / (sa + kCosMulEpsilon);
}

struct QueryBatch {
  uint32_t dims = 0;
  Combine combine = Combine::Sum;
  std::vector<int8_t> trits;                    // n_terms * dims
  std::vector<float> weights;                   // per term
  std::vector<uint32_t> term_offsets{0};        // query i's terms: [term_offsets[i], term_offsets[i+1])
  std::vector<uint32_t> exclude;                // word ids never returned
  std::vector<uint32_t> exclude_offsets{0};     // query i's exclusions, likewise

  explicit QueryBatch(uint32_t d = 0, Combine c = Combine::Sum) : dims(d), combine(c) {}
  size_t size() const { return term_offsets.size() - 1; }
  size_t n_terms() const { return weights.size(); }

  // Cosine nearest neighbours of one ternary vector.
  void add_nearest(std::span<const int8_t> q, std::span<const uint32_t> excl = {});
  // A query of several weighted terms (3CosAdd, most_similar, 3CosMul's a, b, c).
  void add_query(std::span<const std::span<const int8_t>> terms, std::span<const float> w,
                 std::span<const uint32_t> excl = {});
};

struct Hit {
  uint32_t id;
  float score;
  bool operator==(const Hit&) const = default;
};

// Score descending, then id ascending: the one order every path reports.
inline bool better(const Hit& a, const Hit& b) {
  return a.score > b.score || (a.score == b.score && a.id < b.id);
}

struct SearchParams {
  size_t k = 10;
  size_t limit = 0;  // consider only the first `limit` words (0: all); eval's --restrict
};

struct SearchResults {
  size_t k = 0;
  std::vector<Hit> hits;        // n_queries * k, best first
  std::vector<uint32_t> count;  // hits per query (< k when fewer words qualify)
  std::span<const Hit> of(size_t q) const { return {hits.data() + q * k, count[q]}; }
};

// A search backend over one index (the FAISS shape: CPU and CUDA implementations side by side).
class Searcher {
 public:
  virtual ~Searcher() = default;
  virtual std::string name() const = 0;  // e.g. "cpu/avx512 x2 threads", "cuda/H100"
  virtual void search(const QueryBatch& batch, const SearchParams& params, SearchResults& out) = 0;
};

struct SearcherOptions {
  std::string device = "cpu";  // "cpu" or "cuda"
  int threads = 0;             // CPU threads (0: all cores)
  std::string kernel;          // CPU kernel name ("" = best supported, else IGLA_KERNEL or this)
};

std::unique_ptr<Searcher> make_searcher(const CodesView& codes, const SearcherOptions& opts = {});

// The plain reference: one int8 per trit, no bit tricks, no threads. Tests hold every fast path
// to its exact scores and order. `vocab` is n * dims trits.
SearchResults reference_search(std::span<const int8_t> vocab, size_t n, uint32_t dims,
                               const QueryBatch& batch, const SearchParams& params);

}  // namespace igla
