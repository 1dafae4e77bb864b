// igla: word2vec binary -- "count dims\n", then per word "word<space>" + dims little-endian
// float32, each row optionally followed by '\n' (the original word2vec tool writes one).
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/loaders_internal.hpp"

namespace igla::loaders {

// The float bytes are copied as they are; igla targets x86-64 only.
static_assert(std::endian::native == std::endian::little, "word2vec binary is little-endian");

FloatVectors load_word2vec_bin(const MappedFile& f, const LoadOptions& opts) {
  const std::string& path = f.path();
  const char* const begin = f.data();
  const char* const end = begin + f.size();
  auto offset = [begin](const char* at) { return at_byte(static_cast<uint64_t>(at - begin)); };

  // A UTF-8 BOM before the header is skipped, as the text formats do (offsets stay the file's).
  const char* const head = f.view().starts_with("\xEF\xBB\xBF") ? begin + 3 : begin;
  const char* nl = static_cast<const char*>(std::memchr(head, '\n', std::min<size_t>(end - head, 256)));
  if (!nl) fail(path, at_byte(0), "no 'count dims' header line ending in a newline");
  std::string_view header(head, nl - head);
  while (!header.empty() && (header.back() == '\r' || header.back() == ' ')) header.remove_suffix(1);
  uint64_t declared = 0;
  uint32_t dims = 0;
  parse_header(header, path, at_byte(0), declared, dims);

  const size_t row_bytes = size_t{dims} * sizeof(float);
  // Never trust the header for memory: a row takes at least row_bytes + 2 bytes, so this bounds
  // the rows the loop below can read.
  uint64_t rows = std::min<uint64_t>(declared, f.size() / (row_bytes + 2) + 1);
  if (opts.limit) rows = std::min<uint64_t>(rows, opts.limit);
  FloatVectors out;
  out.dims = dims;
  out.words.reserve(rows);
  out.data.reserve(rows * dims);
  prefault(out.data.data(), rows * dims * sizeof(float));
  out.data.resize(rows * dims);

  WordRows seen;
  seen.reserve(rows);
  std::vector<uint64_t> row_offset;  // where each word starts, for duplicate messages
  row_offset.reserve(rows);
  Ticker tick(opts.progress, f.size());
  const char* p = nl + 1;
  for (uint64_t r = 0; r < declared && !(opts.limit && r == opts.limit); ++r) {
    while (p < end && *p == '\n') ++p;  // the optional newline after the previous row
    const char* w = p;
    const char* sp = static_cast<const char*>(std::memchr(p, ' ', end - p));
    if (!sp)
      fail(path, offset(w),
           "truncated file: it ends inside word " + std::to_string(r + 1) + " of " +
               std::to_string(declared) + " declared in the header");
    std::string_view word(w, sp - w);
    if (word.empty()) fail(path, offset(w), "empty word in row " + std::to_string(r + 1));
    if (word.find('\n') != std::string_view::npos)
      fail(path, offset(w),
           "word " + quote(word) + " of row " + std::to_string(r + 1) +
               " contains a newline: wrong dims in the header, or not a word2vec binary file");
    p = sp + 1;
    if (static_cast<size_t>(end - p) < row_bytes)
      fail(path, offset(p),
           "truncated file: word " + quote(word) + " (row " + std::to_string(r + 1) + ") needs " +
               std::to_string(row_bytes) + " bytes of float32 values, only " +
               std::to_string(end - p) + " remain");
    float* row = out.data.data() + r * dims;
    std::memcpy(row, p, row_bytes);
    for (uint32_t j = 0; j < dims; ++j) {
      if (!std::isfinite(row[j]))
        fail(path, offset(p + j * sizeof(float)),
             "value " + std::to_string(j + 1) + " of word " + quote(word) + " is " +
                 (std::isnan(row[j]) ? "NaN" : "Inf (infinite)") +
                 "; every value must be a finite number");
    }
    auto [it, fresh] = seen.try_emplace(word, static_cast<uint32_t>(r));
    if (!fresh)
      fail(path, offset(w),
           "duplicate word " + quote(word) + " (first seen at byte offset " +
               std::to_string(row_offset[it->second]) + ")");
    out.words.emplace_back(word);
    row_offset.push_back(static_cast<uint64_t>(w - begin));
    p += row_bytes;
    tick(static_cast<uint64_t>(p - begin));
  }

  bool limited = opts.limit && out.words.size() == opts.limit;
  if (!limited) {
    // All declared rows read: only whitespace may follow, else the header count is wrong.
    while (p < end && (*p == '\n' || *p == '\r' || *p == ' ')) ++p;
    if (p != end)
      fail(path, offset(p),
           "data after the " + std::to_string(declared) +
               " words declared in the header (the header count is wrong)");
  }
  out.data.resize(out.words.size() * size_t{dims});
  tick.finish();
  return out;
}

}  // namespace igla::loaders
