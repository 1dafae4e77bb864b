// igla internal: the lists an IVF search probes (src/ann/ivf_searcher.cpp), shared by the CPU IVF
// searcher and the CUDA one (src/cuda/ivf_searcher.cpp), so both scan the same lists.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "igla/ivf.hpp"
#include "igla/search.hpp"

namespace igla::ann {

// The centroids transposed (dims x L) once per searcher, as choose_ivf_lists reads them.
struct IvfProbeTables {
  std::vector<float> code_ct, float_ct;  // float_ct empty without float centroids
  explicit IvfProbeTables(const IvfIndex& ivf);
};

// A batch an IVF searcher takes: valid (QueryBatch::validate) and of the IVF index's code dims;
// throws Error otherwise.
void check_ivf_batch(const QueryBatch& batch, const IvfIndex& ivf);

// The nprobe best lists of queries [q0, q1) of `batch`, into probes ((q - q0) * nprobe + i; best
// first): a query's float form against the float centroids when both exist, else its ternary
// terms against the code-space centroids (3CosMul: b + c - a). nprobe >= L: every list, in order.
// A query's lists do not depend on the other queries of the call.
void choose_ivf_lists(const IvfIndex& ivf, const IvfProbeTables& t, const QueryBatch& batch, size_t q0, size_t q1,
                      uint32_t nprobe, std::vector<uint32_t>& probes);

}  // namespace igla::ann
