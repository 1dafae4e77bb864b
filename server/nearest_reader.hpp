// igla serve: the fast path of the most common request, POST /v1/nearest {"words": [...], "k": K,
// "candidates": C, "timeout_ms": T}, read by nlohmann's SAX parser straight into a list of words:
// no DOM (a map, its nodes and strings, made, walked and freed per request). Anything else (another
// field, a field twice, null, a negative or fractional number, a word that is not a string, bad
// JSON) stops it, and the full path reads the body again and says what is wrong: both paths accept
// and answer the same requests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace igla::server {

class NearestReader {
 public:
  using json = nlohmann::json;

  std::vector<std::string> words;
  std::optional<uint64_t> k, candidates, timeout_ms;

  // Whether `body` is one JSON object of that shape (strict: nothing after it).
  bool read(const std::string& body) {
    return json::sax_parse(body, this, json::input_format_t::json, true) && done_ && words_seen_;
  }

  // The SAX events (nlohmann::json_sax): returning false stops the parse.
  bool null() { return false; }
  bool boolean(bool) { return false; }
  bool number_integer(json::number_integer_t) { return false; }  // only negative values come here
  bool number_float(json::number_float_t, const json::string_t&) { return false; }
  bool binary(json::binary_t&) { return false; }
  bool number_unsigned(json::number_unsigned_t v) {
    if (in_words_ || depth_ != 1) return false;
    std::optional<uint64_t>* to = key_ == Key::K ? &k : key_ == Key::Candidates ? &candidates
                                  : key_ == Key::Timeout ? &timeout_ms : nullptr;
    if (!to) return false;
    *to = v;
    key_ = Key::None;
    return true;
  }
  bool string(json::string_t& s) {
    if (!in_words_) return false;
    words.push_back(std::move(s));
    return true;
  }
  bool start_object(std::size_t) { return depth_++ == 0; }
  bool end_object() { return --depth_ == 0 && key_ == Key::None && (done_ = true); }
  bool start_array(std::size_t) { return key_ == Key::Words && depth_ == 1 && !in_words_ && (in_words_ = true); }
  bool end_array() {
    if (!in_words_) return false;
    in_words_ = false;
    key_ = Key::None;
    return true;
  }
  bool key(json::string_t& name) {
    if (depth_ != 1 || in_words_ || key_ != Key::None) return false;
    const Key which = name == "words" ? Key::Words : name == "k" ? Key::K : name == "candidates" ? Key::Candidates
                      : name == "timeout_ms" ? Key::Timeout : Key::None;
    const unsigned bit = 1u << static_cast<unsigned>(which);
    if (which == Key::None || (seen_ & bit)) return false;
    seen_ |= bit;
    key_ = which;
    words_seen_ = words_seen_ || which == Key::Words;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) { return false; }

 private:
  enum class Key : unsigned { None, Words, K, Candidates, Timeout };
  Key key_ = Key::None;  // the member whose value comes next
  int depth_ = 0;
  unsigned seen_ = 0;
  bool in_words_ = false, done_ = false, words_seen_ = false;
};

}  // namespace igla::server
