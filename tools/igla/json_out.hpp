// igla CLI: how every --json output is written. Words are byte strings (vector files hold words
// that are not valid UTF-8, and `convert` keeps them as they are, byte for byte); JSON text must
// be UTF-8, so each invalid byte sequence in a string becomes U+FFFD (nlohmann's `replace`
// handler: deterministic, never an exception). Text output prints the bytes unchanged.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace igla::cli {

inline std::string json_text(const nlohmann::json& j, int indent = -1) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace igla::cli
