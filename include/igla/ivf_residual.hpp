// igla: residual int8 rows for the IVF-int8 searcher (FAISS IVF-SQ8 "by residual"): each word's
// row is its unit vector minus its IVF list's centroid, quantized to int8, so the rows' error is a
// fraction of the full vectors' (the int8 rows of the index quantize the whole vector on one grid
// per dimension; on data whose neighbours differ by little, e.g. the synthetic mixture of
// bench-ann, that caps recall@10 near 0.92).
//
// Encoding (unit vector x of word i in list l, float centroid c_l, residual r = x - c_l):
//   per-dimension scales s[d] = the root mean square of r[d] over every word (1 where it is 0);
//   per-row step t_i = max_d |r[d] / s[d]| / 127 (0 for r = 0);
//   value[d] = clamp(lround(r[d] / s[d] / t_i), -127, 127);
//   decoded x'[d] = c_l[d] + t_i * (s[d] * value[d])   (float arithmetic, in this order).
// Search (make_ivf8_searcher with these rows): the query's float form q scores a probed list's row
// as q.c_l (float, once per query and list) + qstep * t_i * (int8 dot of the query's int8 form,
// q[d] * s[d] quantized, with the row), qstep = max_d |q[d] s[d]| / 127; the best `candidates`
// rows by that score are rescored exactly, best k returned (ties to the lower id):
//   score = (fdot(q, c_l) + t_i * fdot(s * value, q)) / |x'|
// with q the query's float form (its terms' weighted sum), fdot's order (core/fdot.hpp, the dot of
// src/ann/int8_rescore.hpp) and 1 / |x'| = 1 / sqrt(fdot(x', x')) of the decoded row (computed once
// when the searcher is made): the cosine of q with x', up to rounding.
//
// Storage: the section IVFR (checksummed like every section), written beside IVFM / IVFW by
// `igla build-ivf --residual` or `igla convert --ivf L --ivf-residual`:
//   header (64 bytes: magic "IVR1", version, float dims, lists, positions, words, and a
//   fingerprint of the IVF lists it was built for), float s[dims] (padded to 64 bytes), float
//   t[positions] (0 for padding positions), then the values in the int8 scan layout
//   (src/ann/int8_scan.hpp: blocks of 16 positions, 4 dims x 16 rows per 64 bytes, value + 128),
//   scanned in place. An index without IVFR searches as before.
// Thread-safety: immutable once built or parsed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "igla/index.hpp"
#include "igla/ivf.hpp"

namespace igla {

inline constexpr uint32_t kIvfResidualFormatVersion = 1;

class IvfResidualRows {
 public:
  // The rows of every word of `ix` against the lists of `ivf` (which needs float centroids). The
  // unit vectors are the index's float32 vectors when it keeps them, else its decoded rerank rows.
  // Deterministic: the same bytes for the same index and lists, whatever `threads`.
  static IvfResidualRows build(const Index& ix, const IvfIndex& ivf, int threads = 0);
  // Parses IVFR's bytes (a view that must outlive the object; 64-byte aligned) and checks them
  // against `ix` and `ivf`: throws Error naming what is wrong (version, sizes, another IVF's rows,
  // values not finite, padding not empty).
  static IvfResidualRows parse(const Index& ix, const IvfIndex& ivf, std::span<const std::byte> bytes);
  // The index's IVFR section parsed against `ivf`; throws Error when there is none.
  static IvfResidualRows from_index(const Index& ix, const IvfIndex& ivf);
  ExtraSection section() const;  // {"IVFR", bytes}

  uint32_t dims() const { return dims_; }
  uint32_t groups() const { return (dims_ + 3) / 4; }
  size_t positions() const { return positions_; }
  std::span<const float> scales() const { return {scales_, dims_}; }
  std::span<const float> steps() const { return {steps_, positions_}; }  // t per position
  // The values in the scan layout: positions / 16 blocks of groups() * 64 bytes.
  const uint8_t* blocks() const { return blocks_; }
  // Position p's decoded unit vector (dims() floats) with its list's centroid `c`.
  void decode(size_t p, const float* c, float* out) const;
  void prefetch(size_t p) const;
  // Bytes the search reads per word: the values, the step, the id; plus the centroids over n.
  double bytes_per_word(const IvfIndex& ivf) const;

  IvfResidualRows(IvfResidualRows&&) noexcept;
  IvfResidualRows& operator=(IvfResidualRows&&) noexcept;
  ~IvfResidualRows();

 private:
  IvfResidualRows();
  struct Owned;
  std::unique_ptr<Owned> own_;
  uint32_t dims_ = 0;
  size_t positions_ = 0;
  const float* scales_ = nullptr;
  const float* steps_ = nullptr;
  const uint8_t* blocks_ = nullptr;
};

bool has_ivf_residual_section(const Index& index);
// The index's residual rows (its IVFR section parsed against ivf_of(index)), cached in the index;
// nullptr when it has no IVFR section.
std::shared_ptr<const IvfResidualRows> ivf_residual_of(const Index& index);

// The IVF-int8 searcher over residual rows (see above and make_ivf8_searcher in ivf.hpp: the same
// probes, batching, fallbacks and answer contract; the candidates are rescored on the decoded
// residual rows instead of the index's int8 rows). Needs Rerank::Int8 (the probes are chosen with
// the index's int8 scales, as make_ivf8_searcher's). `ivf` and `rows` nullptr: the index's own.
std::shared_ptr<const Searcher> make_ivf_residual_searcher(std::shared_ptr<const Index> index,
                                                           const SearcherOptions& opts,
                                                           std::shared_ptr<const IvfIndex> ivf = nullptr,
                                                           std::shared_ptr<const IvfResidualRows> rows = nullptr);

}  // namespace igla
