// What an index holds, as JSON: the one description behind `igla info --json` and the "index"
// member of the server's GET /v1/info (each adds its own members: the CLI its open time and
// checksum result, the server its searcher and load time).
#pragma once

#include <nlohmann/json.hpp>

#include "core/index_format.hpp"
#include "igla/index.hpp"

namespace igla::server {

// What one query reads per word: the codes, the norm and inverse norm, and the rerank row.
inline double query_bytes_per_word(const Index& ix) {
  return 2.0 * ix.codes().W * 8 + 8 +
         (ix.rerank() == Rerank::Int8  ? double(ix.float_dims())
          : ix.rerank() == Rerank::F16 ? 2.0 * ix.float_dims()
                                       : 0.0);
}

// Path, format version, words, dims, quantization, rerank rows, threshold, non-zero fraction,
// float rows, bytes a query reads per word; for an index read from a file also its size and sections (tag, offset, bytes).
inline nlohmann::json index_info_json(const Index& ix) {
  nlohmann::json j{{"path", ix.path()},
                   {"format_version", format::kVersion},
                   {"words", ix.size()},
                   {"dims", ix.dims()},
                   {"float_dims", ix.float_dims()},
                   {"quantization", quantization_name(ix.quant())},
                   {"rerank", rerank_name(ix.rerank())},
                   {"threshold_factor", ix.quant().threshold_factor},
                   {"nonzero_fraction", ix.nonzero_fraction()},
                   {"has_float", ix.has_float()},
                   {"query_bytes_per_word", query_bytes_per_word(ix)}};
  if (!ix.path().empty()) {
    j["file_bytes"] = ix.file_size();
    j["sections"] = nlohmann::json::array();
    for (auto& s : ix.sections()) j["sections"].push_back({{"tag", s.tag}, {"offset", s.offset}, {"bytes", s.size}});
  }
  return j;
}

}  // namespace igla::server
