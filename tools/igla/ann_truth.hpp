// bench-ann's saved truth: the vocabulary-word queries of one run and their exact float32 top k,
// written where the float32 vectors are (--save-truth) and read by a run on an index of the same
// words without them (--truth): the default index (no float32 vectors, ~45 MB) fits the GPU
// machine's transfer limit where GloVe's float32 vectors do not.
// Thread-safety: plain functions over their arguments.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "igla/index.hpp"

namespace igla::cli {

struct SavedTruth {
  std::vector<uint32_t> queries;  // word ids (each query excludes its own word)
  std::vector<uint32_t> truth;    // queries.size() x k ids, best first
};

// A digest of the index's words in order: a truth file is only read against the same words.
uint64_t words_digest(const Index& ix);

// Written atomically (no partial file).
void save_truth(const std::string& path, const Index& ix, size_t k, const SavedTruth& t);

// Throws igla::Error naming the file (and line) when it is not a truth file, was saved for other
// words or another k, or holds an id outside the index.
SavedTruth load_truth(const std::string& path, const Index& ix, size_t k);

}  // namespace igla::cli
