// igla serve: appending JSON to a string without building a DOM (results are the hot path: a
// 64-word request answers 640 hits).
#pragma once

#include <fmt/format.h>

#include <cmath>
#include <iterator>
#include <string>
#include <string_view>

namespace igla::server {

// `s` as a JSON string literal (quotes, backslash and control characters escaped; other bytes,
// UTF-8 included, as they are).
inline void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(ch);
    } else if (c < 0x20) {
      switch (c) {
        case '\n': out += "\\n"; break;
        case '\t': out += "\\t"; break;
        case '\r': out += "\\r"; break;
        default: fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);
      }
    } else {
      out.push_back(ch);
    }
  }
  out.push_back('"');
}

// The shortest decimal that reads back as the same float ("null" if not finite).
inline void append_json_float(std::string& out, float v) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  fmt::format_to(std::back_inserter(out), "{}", v);
}

}  // namespace igla::server
