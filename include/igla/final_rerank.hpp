// igla: a final exact rescoring stage on float16 or float32 rows, after an approximate searcher.
//
// Why: the approximate searchers (graph, ivf-int8) walk or scan the index's int8 rerank rows and
// rescore their candidates on the same int8 rows, so their recall@10 against float truth stops at
// the int8 rows' own limit (GloVe-100d ~0.98; the synthetic Gaussian mixture of `igla bench-ann
// --synthetic` ~0.917: its within-cluster differences are small beside the per-dimension int8
// step). This stage keeps the walk/scan on int8 and rescores its candidates on finer rows:
//   base searcher, called with k = max(candidates, k) -> those candidates rescored with the rerank
//   stage's arithmetic (rerank_score: cosine of the decoded row against each float term, combined
//   as the batch says) on the final rows -> the best k (ties to the lower id).
// Rows:
//   FinalRows::F16: the index's own RF16 rows when rerank() is F16, else float16 rows made here
//     from its float32 vectors (F32V), byte for byte what RF16 would store (unit rows rounded to
//     float16): 2 bytes per dim per word held in memory beside the int8 rows the walk needs.
//   FinalRows::F32: the index's float32 vectors (F32V) in place (4 bytes per dim per word).
// Queries without a float form, and calls with k = 0, pass through to the base unchanged.
// Thread-safety: search() is const and reentrant (rows are immutable once made).
#pragma once

#include <memory>
#include <string_view>

#include "igla/index.hpp"
#include "igla/search.hpp"

namespace igla {

enum class FinalRows : uint8_t { None = 0, F16 = 1, F32 = 2 };
FinalRows parse_final_rows(std::string_view name);  // "none" | "f16" | "f32"; throws Error
const char* final_rows_name(FinalRows r);
// Bytes per word of the rows the stage reads (2 or 4 x float dims; 0 for None).
double final_rows_bytes_per_word(const Index& index, FinalRows r);

// The stage over `base` (any searcher of `index`). Throws Error naming the index when the rows
// cannot be had: F32, or F16 on an index without RF16, need its float32 vectors (F32V); or for
// FinalRows::None (nothing to wrap: use base). Rescoring runs on the shared thread pool with at
// most `threads` threads (0: all).
std::shared_ptr<const Searcher> make_final_rerank_stage(std::shared_ptr<const Searcher> base,
                                                        std::shared_ptr<const Index> index, FinalRows rows,
                                                        int threads = 0);

}  // namespace igla
