// igla CLI: float vectors -> .igla, shared by `convert` and `fetch-glove`.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "igla/index.hpp"
#include "igla/ivf.hpp"
#include "igla/ivf_residual.hpp"
#include "igla/vectors.hpp"

namespace igla::cli {

struct ConvertOptions {
  VectorFormat format = VectorFormat::Auto;
  size_t limit = 0;
  // The defaults: the best codes that cost no more than the seed's, and int8 rerank rows
  // (float32's analogy accuracy at 35% of its bytes per word; docs/ACCURACY.md).
  std::string quantization = "rotated";  // seed | centered | rotated[:D]
  float threshold_factor = -1;           // < 0: the chosen mode's default (default_threshold_factor)
  std::string rerank = "int8";           // none | int8 | f16
  bool keep_float = false;               // F32V: --keep-float (queries never read it)
  int64_t ivf_lists = -1;  // --ivf L: add IVF lists (0: the default count; -1: none)
  bool ivf_residual = false;  // --ivf-residual: and the residual rows of the IVF-int8 search (IVFR)
};

// --keep-float (and the old --no-float, now the default, accepted and hidden).
void add_keep_float_flags(CLI::App* cmd, bool& keep_float, bool& no_float);

// The IVF lists of `ix` (cmd_ann.cpp), with a progress bar and a report line.
IvfIndex build_ivf_with_progress(const Index& ix, uint32_t lists, int threads);
// The residual rows of `ivf` (cmd_ann.cpp), with a report line.
IvfResidualRows build_residual_with_report(const Index& ix, const IvfIndex& ivf, int threads);

// --quantization, --threshold-factor and --rerank of `convert` and `fetch-glove`.
void add_quantization_options(CLI::App* cmd, ConvertOptions& o);
// The index parameters they name; the threshold defaults per mode (measured, docs/ACCURACY.md).
QuantParams quant_params(const ConvertOptions& o);

// Loads, quantizes and writes atomically, with progress bars and a summary on stderr.
void convert_file(const std::string& input, const std::string& output, const ConvertOptions& opts);

}  // namespace igla::cli
