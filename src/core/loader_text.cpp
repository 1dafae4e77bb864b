// igla: GloVe text ("word x1 ... xd", no header) and word2vec / fastText text ("count dims"
// header line, then the same rows). One pass over the memory-mapped file, from_chars per value.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/loaders_internal.hpp"

namespace igla::loaders {

namespace {

inline bool is_blank(char c) { return c == ' ' || c == '\t'; }

}  // namespace

FloatVectors load_text(const MappedFile& f, bool has_header, const LoadOptions& opts) {
  const std::string& path = f.path();
  const char* const begin = f.data();
  const char* const end = begin + f.size();
  const char* p = f.view().starts_with("\xEF\xBB\xBF") ? begin + 3 : begin;  // UTF-8 BOM
  uint64_t line = 0;

  // The next line without its '\n' and trailing blanks / '\r'; false at the end of the file.
  auto next_line = [&](std::string_view& ln) {
    if (p >= end) return false;
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', end - p));
    const char* le = nl ? nl : end;
    ++line;
    while (le > p && (is_blank(le[-1]) || le[-1] == '\r')) --le;
    ln = {p, static_cast<size_t>(le - p)};
    p = nl ? nl + 1 : end;
    return true;
  };

  FloatVectors out;
  const size_t limit = opts.limit;
  uint64_t declared = 0;  // rows the header promises (word2vec text only)
  uint32_t dims = 0;      // 0 until known: from the header, or from GloVe's first row
  WordRows seen;
  std::vector<uint64_t> row_line;  // line of each row, for duplicate messages
  auto reserve = [&](uint64_t rows) {
    if (limit) rows = std::min<uint64_t>(rows, limit);
    out.words.reserve(rows);
    out.data.reserve(rows * dims);
    prefault(out.data.data(), rows * dims * sizeof(float));
    seen.reserve(rows);
    row_line.reserve(rows);
  };
  std::string_view ln;
  if (has_header) {
    while (next_line(ln) && ln.empty()) {
    }
    if (ln.empty()) fail(path, "", "empty file: no 'count dims' header line");
    parse_header(ln, path, at_line(line), declared, dims);
    // Never trust the header for memory: a text value takes at least 2 bytes.
    reserve(std::min<uint64_t>(declared, f.size() / (2ull * dims) + 1));
  }

  Ticker tick(opts.progress, f.size());

  while (next_line(ln)) {
    if (ln.empty()) continue;  // blank lines carry nothing
    if (limit && out.words.size() == limit) break;
    if (has_header && out.words.size() == declared)
      fail(path, at_line(line),
           "more rows than the header's count of " + std::to_string(declared) +
               " (the header is wrong, or the file is not word2vec text)");

    // The word is everything before the first space: GloVe words hold odd bytes but no spaces.
    std::string_view word = ln.substr(0, ln.find(' '));
    if (word.empty()) fail(path, at_line(line), "the line starts with a space: the word is empty");

    const char* q = word.data() + word.size();
    const char* le = ln.data() + ln.size();
    size_t base = out.data.size();
    if (dims) out.data.resize(base + dims);
    uint32_t n = 0;
    for (;;) {
      while (q < le && is_blank(*q)) ++q;
      if (q == le) break;
      float v;
      auto [ptr, ec] = std::from_chars(q, le, v);
      if (ec == std::errc() && (ptr == le || is_blank(*ptr)) && std::isfinite(v)) {
        q = ptr;  // fast path: a plain finite number
      } else {
        const char* te = q;
        while (te < le && !is_blank(*te)) ++te;
        std::string_view tok(q, te - q);
        if (const char* problem = parse_float(tok, v))
          fail(path, at_line(line),
               "value " + std::to_string(n + 1) + " of word " + quote(word) + " " +
                   bad_value(tok, problem));
        q = te;
      }
      if (!dims) {
        out.data.push_back(v);  // GloVe's first row sets the dimension
      } else if (n < dims) {
        out.data[base + n] = v;
      }
      ++n;
    }

    if (!dims) {
      if (n == 0) fail(path, at_line(line), "no values after the word " + quote(word));
      if (n > kMaxDims)
        fail(path, at_line(line),
             "the first row has " + std::to_string(n) + " values: at most " +
                 std::to_string(kMaxDims) + " dims are supported");
      dims = n;
      // Reserve from the first row's length so growth does not copy 100s of MB repeatedly.
      reserve(f.size() / (ln.size() + 1) + 16);
    } else if (n != dims) {
      fail(path, at_line(line),
           "expected " + std::to_string(dims) + " values after the word " + quote(word) +
               ", found " + std::to_string(n) + " (inconsistent dimension: " +
               (has_header ? std::string("the header says ") + std::to_string(dims)
                           : "line " + std::to_string(row_line.at(0)) + " has " +
                                 std::to_string(dims)) +
               ")");
    }

    auto [it, fresh] = seen.try_emplace(word, static_cast<uint32_t>(out.words.size()));
    if (!fresh)
      fail(path, at_line(line),
           "duplicate word " + quote(word) + " (first seen on line " +
               std::to_string(row_line[it->second]) + ")");
    out.words.emplace_back(word);
    row_line.push_back(line);
    tick(static_cast<uint64_t>(p - begin));
  }

  if (out.words.empty()) fail(path, at_line(line), "no vectors: the file has no rows");
  if (has_header && out.words.size() < declared && !(limit && out.words.size() == limit))
    fail(path, at_line(line),
         "the file ends with fewer rows (" + std::to_string(out.words.size()) +
             ") than the header declares (" + std::to_string(declared) +
             "): truncated file or wrong header");
  out.dims = dims;
  tick.finish();
  return out;
}

}  // namespace igla::loaders
