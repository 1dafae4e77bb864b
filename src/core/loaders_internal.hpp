// igla internal: pieces shared by the float vector loaders (src/core/loader_*.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "igla/error.hpp"
#include "igla/vectors.hpp"

namespace igla::loaders {

// A read-only memory map of a whole file: the loaders scan it in place, no copies, no iostreams.
// At least kPadding zero bytes follow the file's end, so simdjson can parse it in place too.
// Opening reports a missing file, a directory or an empty file as Error.
class MappedFile {
 public:
  static constexpr size_t kPadding = 64;

  explicit MappedFile(const std::string& path);
  // A copy of `bytes` in memory, padded the same way, named `path` in messages: the fuzz targets
  // (tests/fuzz) feed the loaders this way, without a file per input.
  MappedFile(const std::string& path, std::string_view bytes);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::string& path() const { return path_; }
  const char* data() const { return data_; }
  size_t size() const { return size_; }
  std::string_view view() const { return {data_, size_}; }

 private:
  std::string path_;
  const char* data_ = nullptr;
  size_t size_ = 0;
  size_t mapped_ = 0;  // size_ + padding, rounded up to whole pages
  std::unique_ptr<char[]> owned_;  // the copy, for the in-memory constructor (nothing mapped)
};

// Faults in a large buffer's pages in one call before it is filled: page by page faulting is
// several times slower than parsing on some VMs. A no-op where the kernel lacks it.
void prefault(void* p, size_t bytes);

// The most dims a vector file may declare (every format): 2^20.
constexpr uint32_t kMaxDims = 1u << 20;

// "path: where: what" -- the one shape of every loader message.
[[noreturn]] void fail(const std::string& path, const std::string& where, const std::string& what);
inline std::string at_line(uint64_t line) { return "line " + std::to_string(line); }
inline std::string at_byte(uint64_t offset) { return "byte offset " + std::to_string(offset); }

// A word or token for a message: quoted, cut to a readable length, control bytes escaped.
std::string quote(std::string_view s);

// Parses one whole token as a finite float. Returns nullptr on success, else the problem
// ("is not a number: '...'", "is NaN", ...) to append after "value 3 of word 'x' ".
const char* parse_float(std::string_view tok, float& out);
// The message for parse_float's problem, naming the token.
std::string bad_value(std::string_view tok, const char* problem);

// Calls Progress rarely: about 200 times over `total`, plus once at the end.
class Ticker {
 public:
  Ticker(const Progress& p, uint64_t total)
      : p_(p), total_(total), step_(total / 200 + 1), next_(p ? 0 : UINT64_MAX) {}
  void operator()(uint64_t done) {
    if (done >= next_) {
      p_(done, total_);
      next_ = done + step_;
    }
  }
  void finish() const {
    if (p_) p_(total_, total_);
  }

 private:
  const Progress& p_;
  uint64_t total_, step_, next_;
};

// Word -> first row, for duplicate detection. Keys are views into the mapped file or into
// strings that outlive the map.
using WordRows = std::unordered_map<std::string_view, uint32_t>;

// Format sniffing from the first bytes of a file (no BOM handling needed by callers).
VectorFormat sniff_format(std::string_view head, const std::string& path);

// load_vectors on an open file: sniffs the format when opts.format is Auto, then the loader.
FloatVectors load_mapped(const MappedFile& f, const LoadOptions& opts);

FloatVectors load_text(const MappedFile& f, bool has_header, const LoadOptions& opts);
FloatVectors load_word2vec_bin(const MappedFile& f, const LoadOptions& opts);
FloatVectors load_wink_json(const MappedFile& f, const LoadOptions& opts);

// Parses "count dims" (a word2vec header line, already trimmed); Error names the problem.
void parse_header(std::string_view line, const std::string& path, const std::string& where,
                  uint64_t& count, uint32_t& dims);

}  // namespace igla::loaders
