// igla serve: bearer tokens.
#pragma once

#include <string>
#include <string_view>

namespace igla::server {

// a == b in time that depends on b's length only (b: the secret), never on where they differ.
bool constant_time_equal(std::string_view a, std::string_view b);

// Whether an Authorization header value is "Bearer <token>" (scheme case-insensitive).
bool bearer_matches(std::string_view authorization, std::string_view token);

// The token in `path`: its first line, white space trimmed. Throws Error when the file cannot
// be read or holds no token.
std::string read_token_file(const std::string& path);

}  // namespace igla::server
