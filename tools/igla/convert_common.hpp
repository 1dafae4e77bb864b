// igla CLI: float vectors -> .igla, shared by `convert` and `fetch-glove`.
#pragma once

#include <string>

#include "igla/index.hpp"
#include "igla/vectors.hpp"

namespace igla::cli {

struct ConvertOptions {
  VectorFormat format = VectorFormat::Auto;
  size_t limit = 0;
  float threshold_factor = kDefaultThresholdFactor;
  bool keep_float = true;
};

// Loads, quantizes and writes atomically, with progress bars and a summary on stderr.
void convert_file(const std::string& input, const std::string& output, const ConvertOptions& opts);

}  // namespace igla::cli
