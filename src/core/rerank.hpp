// igla internal: the exact second stage of a two-stage search. The ternary scan returns a
// query's top C candidates; here each candidate's rerank row (int8 or float16, see index.hpp) is
// decoded and scored with float math, and the best k are kept.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "igla/index.hpp"
#include "igla/search.hpp"
#include "igla/vectors.hpp"

namespace igla {

// Section bytes of the rerank rows of `v` (unit vectors, then int8 with per-dimension scales, or
// float16); empty for Rerank::None.
std::vector<char> encode_rerank_rows(const FloatVectors& v, Rerank kind);
// The float16 rows of `data` (rows of D floats), exactly as RF16 stores them: each row scaled to
// unit length in double, then rounded to float16 (Rerank::F16's bytes, as uint16 values).
std::vector<uint16_t> encode_f16_rows(std::span<const float> data, uint32_t D);

// The k best of query q's `candidates` by exact float score on the rerank rows (ties to the
// lower id): each candidate's row x is decoded, and with cos_t = fdot(x, term_t) / |x| the score
// is combine_score's formula over the cosines and the batch's float weights. This order of float
// operations is the contract every rerank (CPU, CUDA) reproduces bit for bit.
// The score rerank_query gives a candidate whose decoded row is x (batch.float_dims values):
// the one place of that arithmetic, shared by every CPU path that rescores rows.
float rerank_score(const float* x, const QueryBatch& batch, size_t q);

void rerank_query(const Index& ix, const QueryBatch& batch, size_t q, std::span<const Hit> candidates, size_t k,
                  std::vector<Hit>& out);

// rerank_query's loop over any rows: row(id, buf) gives candidate id's row as D floats (a pointer
// into stored floats, or buf filled), prefetch(id) starts loading it; rows are read at random, so
// loads issued kAhead candidates early overlap their misses (the arithmetic and its order are the
// same as rerank_query's, which is this over the index's rerank rows).
template <class Row, class Prefetch>
void rescore_candidates(const QueryBatch& batch, size_t q, std::span<const Hit> candidates, size_t k, Row&& row,
                        Prefetch&& prefetch, std::vector<Hit>& out) {
  thread_local std::vector<float> buf;
  buf.resize(batch.float_dims);
  out.clear();
  constexpr size_t kAhead = 12;
  for (size_t i = 0; i < std::min(kAhead, candidates.size()); ++i) prefetch(candidates[i].id);
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (i + kAhead < candidates.size()) prefetch(candidates[i + kAhead].id);
    out.push_back({candidates[i].id, rerank_score(row(candidates[i].id, buf.data()), batch, q)});
  }
  const size_t m = std::min(k, out.size());
  std::partial_sort(out.begin(), out.begin() + static_cast<long>(m), out.end(), better);
  out.resize(m);
}

// Query q's final hits: rescore(q, candidates, best) for a query with a float form, else the
// first k candidates as they are; written to out's row q.
using RescoreFn = std::function<void(size_t q, std::span<const Hit> candidates, std::vector<Hit>& best)>;
void rescore_or_keep(const QueryBatch& batch, size_t q, std::span<const Hit> candidates, const RescoreFn& rescore,
                     std::vector<Hit>& best, SearchResults& out);

// The body of a rescoring stage over base (FAISS's IndexRefine): base's top max(candidates, k) of
// every query, then rescore_or_keep for each query on the shared thread pool (threads as
// ThreadPool::run takes them).
void search_then_rescore(const Searcher& base, const QueryBatch& batch, const SearchParams& p, int threads,
                         const RescoreFn& rescore, SearchResults& out);

}  // namespace igla
