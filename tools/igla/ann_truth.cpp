#include "ann_truth.hpp"

#include <fmt/format.h>

#include <charconv>
#include <fstream>
#include <string_view>

#include "core/atomic_file.hpp"
#include "igla/error.hpp"

namespace igla::cli {

namespace {
constexpr std::string_view kMagic = "igla bench-ann truth v1";
}

uint64_t words_digest(const Index& ix) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a 64 over the words, each ended by a 0 byte
  for (size_t i = 0; i < ix.size(); ++i) {
    for (const char c : ix.word(i)) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    h *= 1099511628211ull;
  }
  return h;
}

void save_truth(const std::string& path, const Index& ix, size_t k, const SavedTruth& t) {
  if (t.truth.size() != t.queries.size() * k) throw Error("save_truth: " + std::to_string(t.truth.size()) +
                                                          " truth ids for " + std::to_string(t.queries.size()) +
                                                          " queries x k = " + std::to_string(k));
  std::string s = fmt::format("{}\nwords {} {:016x}\nk {}\nqueries {}\n", kMagic, ix.size(), words_digest(ix), k,
                              t.queries.size());
  for (size_t q = 0; q < t.queries.size(); ++q) {
    s += std::to_string(t.queries[q]);
    for (size_t j = 0; j < k; ++j) s += ' ' + std::to_string(t.truth[q * k + j]);
    s += '\n';
  }
  AtomicFile f(path);
  f.write(s.data(), s.size());
  f.commit();
}

SavedTruth load_truth(const std::string& path, const Index& ix, size_t k) {
  std::ifstream in(path);
  if (!in) throw Error("cannot open " + path);
  size_t no = 0;
  std::string line;
  auto fail = [&](const std::string& why) -> Error { return Error(fmt::format("{}:{}: {}", path, no, why)); };
  auto next = [&]() -> std::string_view {
    ++no;
    if (!std::getline(in, line)) throw fail("the file ends early");
    return line;
  };
  auto skip_spaces = [](std::string_view& s) {
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  };
  auto number = [&](std::string_view& s) {
    skip_spaces(s);
    if (s.empty()) throw fail("the line ends early");
    uint64_t v = 0;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 10);
    if (ec != std::errc() || p == s.data()) throw fail("expected a number at '" + std::string(s.substr(0, 20)) + "'");
    s.remove_prefix(static_cast<size_t>(p - s.data()));
    return v;
  };
  // A header line "NAME VALUE ...": its first value, the rest left in s.
  std::string_view s;
  auto field = [&](std::string_view name, std::string_view form) {
    s = next();
    if (!s.starts_with(name) || !s.substr(name.size()).starts_with(' '))
      throw fail("expected '" + std::string(form) + "'");
    s.remove_prefix(name.size());
    return number(s);
  };
  if (next() != kMagic) throw fail("not a bench-ann truth file (saved by `igla bench-ann --save-truth`)");
  const uint64_t words = field("words", "words N DIGEST");
  uint64_t digest = 0;
  skip_spaces(s);
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), digest, 16);
  if (ec != std::errc() || p != s.data() + s.size()) throw fail("expected 'words N DIGEST'");
  if (words != ix.size() || digest != words_digest(ix))
    throw fail(fmt::format("saved for other words ({} words, digest {:016x}) than this index's ({}, {:016x})", words,
                           digest, ix.size(), words_digest(ix)));
  if (const uint64_t fk = field("k", "k K"); fk != k)
    throw fail(fmt::format("saved for k = {}, this run has k = {}", fk, k));
  const uint64_t nq = field("queries", "queries Q");
  if (nq == 0 || nq > ix.size()) throw fail(fmt::format("{} queries for {} words", nq, ix.size()));
  SavedTruth t;
  t.queries.reserve(nq);
  t.truth.reserve(nq * k);
  for (uint64_t q = 0; q < nq; ++q) {
    s = next();
    for (size_t j = 0; j <= k; ++j) {
      const uint64_t id = number(s);
      if (id >= ix.size()) throw fail(fmt::format("id {} outside the index's {} words", id, ix.size()));
      (j == 0 ? t.queries : t.truth).push_back(static_cast<uint32_t>(id));
    }
    skip_spaces(s);
    if (!s.empty()) throw fail(fmt::format("more than the query id and {} truth ids", k));
  }
  ++no;
  if (std::getline(in, line) && !line.empty()) throw fail("more lines than the " + std::to_string(nq) + " queries");
  return t;
}

}  // namespace igla::cli
