// igla CLI: batch mode of the word commands (`--input FILE`, `-` for standard input): one query per
// line, answered through the batch API in large batches, one output line per input line.
#pragma once

#include <string>

#include "cli.hpp"

namespace igla::cli {

enum class BatchKind { Nearest, Analogy, MostSimilar, Similarity };

struct BatchInput {
  BatchKind kind;
  std::string path;          // "-" = standard input
  AnalogyMode mode = AnalogyMode::Add;
  size_t batch = 8192;       // queries per search call
};

// Runs every line; returns the number of lines that failed (each printed as an error object or
// line in order with the answers).
size_t run_batch_input(const Engine& e, const SearchOptions& opt, const BatchInput& in);

}  // namespace igla::cli
