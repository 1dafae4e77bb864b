// `--input`: lines of words -> one batch search per `batch` lines -> one output line per input line.
//   nearest:      one word per line
//   analogy:      a b c
//   most-similar: words; a word prefixed with '-' counts negatively (king woman -man)
//   similarity:   a b
// Text output: the query, a TAB, then `word score` pairs separated by TABs (similarity: the score);
// an error line is the query, a TAB and `error: ...`. JSON lines: {"query": [...], "hits": [...]}
// ({"query": [...], "similarity": s}; {"query": [...], "error": "..."}).
#include "batch_input.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "igla/error.hpp"

namespace igla::cli {

namespace {

std::vector<std::string> split_words(const std::string& line) {
  std::vector<std::string> w;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
    const size_t j = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') ++i;
    if (i > j) w.push_back(line.substr(j, i - j));
  }
  return w;
}

struct Line {
  std::vector<std::string> words;
  std::string error;  // empty: valid, answered by the batch
};

class Output {
 public:
  explicit Output(bool json) : json_(json) {}
  ~Output() { flush(); }
  void hits(const Line& l, std::span<const WordHit> hs) {
    if (json_) {
      nlohmann::json h = nlohmann::json::array();
      for (const auto& x : hs) h.push_back({{"word", utf8_text(x.word)}, {"score", x.score}});
      line(nlohmann::json{{"query", query(l)}, {"hits", h}}.dump());
      return;
    }
    fmt::format_to(std::back_inserter(buf_), "{}", fmt::join(l.words, " "));
    for (const auto& x : hs) fmt::format_to(std::back_inserter(buf_), "\t{} {:.6f}", x.word, x.score);
    end();
  }
  void score(const Line& l, float s) {
    if (json_) return line(nlohmann::json{{"query", query(l)}, {"similarity", s}}.dump());
    fmt::format_to(std::back_inserter(buf_), "{}\t{:.6f}", fmt::join(l.words, " "), s);
    end();
  }
  void error(const Line& l) {
    if (json_) return line(nlohmann::json{{"query", query(l)}, {"error", utf8_text(l.error)}}.dump());
    fmt::format_to(std::back_inserter(buf_), "{}\terror: {}", fmt::join(l.words, " "), l.error);
    end();
  }
  void flush() {
    if (!buf_.size()) return;
    std::fwrite(buf_.data(), 1, buf_.size(), stdout);
    buf_.clear();
  }

 private:
  bool json_;
  fmt::memory_buffer buf_;
  static nlohmann::json query(const Line& l) {
    nlohmann::json q = nlohmann::json::array();
    for (const auto& w : l.words) q.push_back(utf8_text(w));
    return q;
  }
  void line(const std::string& s) {
    buf_.append(s);
    end();
  }
  void end() {
    buf_.push_back('\n');
    if (buf_.size() > (1 << 20)) flush();
  }
};

size_t expected_words(BatchKind k) {
  switch (k) {
    case BatchKind::Nearest: return 1;
    case BatchKind::Analogy: return 3;
    case BatchKind::Similarity: return 2;
    case BatchKind::MostSimilar: return 0;
  }
  return 0;
}

// Answers lines[0..n) (ids already resolved for the valid ones) with one search call.
void answer(const Engine& e, const SearchOptions& opt, const BatchInput& in, std::vector<Line>& lines,
            std::vector<std::vector<uint32_t>>& ids, Output& out, size_t& failed) {
  std::vector<size_t> ok;
  for (size_t i = 0; i < lines.size(); ++i)
    if (lines[i].error.empty()) ok.push_back(i);
  const SearchParams p = opt.params();
  SearchResults r;
  std::vector<float> sims;
  switch (in.kind) {
    case BatchKind::Nearest: {
      std::vector<uint32_t> q;
      for (size_t i : ok) q.push_back(ids[i][0]);
      r = e.nearest(q, p);
      break;
    }
    case BatchKind::Analogy: {
      std::vector<std::array<uint32_t, 3>> q;
      for (size_t i : ok) q.push_back({ids[i][0], ids[i][1], ids[i][2]});
      r = e.analogies(q, in.mode, p);
      break;
    }
    case BatchKind::MostSimilar: {
      std::vector<PosNeg> q;
      for (size_t i : ok) {
        PosNeg pn;
        for (size_t w = 0; w < ids[i].size(); ++w)
          (lines[i].words[w].size() > 1 && lines[i].words[w][0] == '-' ? pn.negative : pn.positive).push_back(ids[i][w]);
        q.push_back(std::move(pn));
      }
      r = e.most_similar(q, p);
      break;
    }
    case BatchKind::Similarity: {
      std::vector<std::pair<uint32_t, uint32_t>> q;
      for (size_t i : ok) q.push_back({ids[i][0], ids[i][1]});
      sims = e.similarities(q, p);
      break;
    }
  }
  size_t j = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (!lines[i].error.empty()) {
      ++failed;
      out.error(lines[i]);
      continue;
    }
    if (in.kind == BatchKind::Similarity) out.score(lines[i], sims[j++]);
    else out.hits(lines[i], e.to_words(r.of(j++)));
  }
  lines.clear();
  ids.clear();
}

}  // namespace

size_t run_batch_input(const Engine& e, const SearchOptions& opt, const BatchInput& in) {
  std::ifstream file;
  std::istream* src = &std::cin;
  if (in.path != "-") {
    file.open(in.path);
    if (!file) throw Error("cannot open " + in.path);
    src = &file;
  }
  Output out(opt.json);
  std::vector<Line> lines;
  std::vector<std::vector<uint32_t>> ids;
  size_t failed = 0, total = 0;
  std::string text;
  const size_t want = expected_words(in.kind);
  while (std::getline(*src, text)) {
    Line l{split_words(text), {}};
    if (l.words.empty()) continue;  // blank lines are not queries
    ++total;
    std::vector<uint32_t> q;
    if (want && l.words.size() != want) {
      l.error = fmt::format("expected {} word(s), got {}", want, l.words.size());
    } else {
      try {
        for (const auto& w : l.words) {
          const bool neg = in.kind == BatchKind::MostSimilar && w.size() > 1 && w[0] == '-';
          q.push_back(e.id(neg ? std::string_view(w).substr(1) : std::string_view(w)));
        }
      } catch (const Error& err) {
        l.error = err.what();
      }
    }
    lines.push_back(std::move(l));
    ids.push_back(std::move(q));
    if (lines.size() == in.batch) answer(e, opt, in, lines, ids, out, failed);
  }
  if (src->bad()) throw Error("reading " + (in.path == "-" ? std::string("standard input") : in.path) + " failed");
  if (!lines.empty()) answer(e, opt, in, lines, ids, out, failed);
  out.flush();
  std::fflush(stdout);
  if (failed) fmt::print(stderr, "igla: {} of {} line(s) failed\n", failed, total);
  return failed;
}

}  // namespace igla::cli
