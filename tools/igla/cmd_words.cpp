// Word commands: similarity, nearest, analogy, most-similar, doesnt-match.
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "batch_input.hpp"
#include "cli.hpp"
#include "json_out.hpp"
#include "igla/error.hpp"

namespace igla::cli {
namespace {

CLI::Option* add_input(CLI::App* cmd, std::string& path, const std::string& what) {
  return cmd->add_option("--input", path,
                         "Batch mode: read queries from FILE (- for standard input), " + what +
                             "; answered in large batches, one output line per query (with --json: JSON lines). "
                             "A bad line gives an error line; the exit code is 1 if any line failed");
}

// Batch mode: a failed line is reported in place; the command then exits 1.
void batch(const Engine& e, const SearchOptions& opt, const BatchInput& in) {
  if (run_batch_input(e, opt, in) > 0) throw ExitCode{1};
}

void add_similarity(CLI::App& app) {
  auto opt = std::make_shared<SearchOptions>();
  auto words = std::make_shared<std::vector<std::string>>();
  auto input = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand(
      "similarity", "Cosine similarity of two words (on their rerank rows when the index has them, else their codes)");
  auto* w = cmd->add_option("words", *words, "Two words")->expected(2);
  add_input(cmd, *input, "'a b' per line")->excludes(w);
  opt->add_to(cmd, false);
  opt->add_candidates(cmd);
  cmd->callback([opt, words, input] {
    const Engine e = opt->engine(opt->open_index());
    if (!input->empty()) return batch(e, *opt, {.kind = BatchKind::Similarity, .path = *input});
    if (words->size() != 2) throw Error("similarity takes two words, or --input FILE");
    const float s = e.similarity((*words)[0], (*words)[1], opt->params());
    if (opt->json)
      fmt::print("{}\n", json_text({{"a", (*words)[0]}, {"b", (*words)[1]}, {"similarity", s}}));
    else
      fmt::print("{:.6f}\n", s);
  });
}

// A query vector from a text file: float values separated by white space.
std::vector<float> read_vector(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw Error(path + ": is a directory (--vector takes a text file of float values)");
  std::ifstream in(path);
  if (!in) throw Error("cannot open " + path + ": " + std::strerror(errno));
  std::vector<float> v;
  std::string tok;
  while (in >> tok) {
    float x = 0;
    const auto [p, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), x);
    if (ec != std::errc() || p != tok.data() + tok.size() || !std::isfinite(x))
      throw Error(fmt::format("{}: value {} ('{}') is not a finite number", path, v.size() + 1, tok));
    v.push_back(x);
  }
  if (v.empty()) throw Error(path + ": no values (expected the float vector, values separated by white space)");
  return v;
}

void add_nearest(CLI::App& app) {
  auto opt = std::make_shared<SearchOptions>();
  auto word = std::make_shared<std::string>();
  auto vec = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand(
      "nearest", "The k words closest to a word (the word itself excluded) or to a float vector (cosine)");
  auto input = std::make_shared<std::string>();
  auto* w = cmd->add_option("word", *word, "Query word");
  auto* v = cmd->add_option("--vector", *vec,
                            "Text file holding a float vector (as many values as the index's float dims), "
                            "quantized as the index was; instead of a word");
  auto* in = add_input(cmd, *input, "one word per line");
  w->excludes(v);
  in->excludes(w);
  in->excludes(v);
  opt->add_to(cmd);
  opt->add_candidates(cmd);
  cmd->callback([opt, word, vec, input] {
    if (int(!word->empty()) + int(!vec->empty()) + int(!input->empty()) != 1)
      throw Error("nearest takes a word, --vector FILE or --input FILE");
    const auto ix = opt->open_index();
    const Engine e = opt->engine(ix);
    if (!input->empty()) return batch(e, *opt, {.kind = BatchKind::Nearest, .path = *input});
    if (word->size()) return print_hits(e.nearest(*word, opt->params()), opt->json);
    const std::vector<float> v = read_vector(*vec);
    if (v.size() != ix->float_dims())
      throw Error(fmt::format("{} has {} values, the index's float vectors have {} dims", *vec, v.size(),
                              ix->float_dims()));
    print_hits(e.nearest_vector(v, opt->params()), opt->json);
  });
}

void add_analogy(CLI::App& app) {
  auto opt = std::make_shared<SearchOptions>();
  auto words = std::make_shared<std::vector<std::string>>();
  auto mode = std::make_shared<std::string>("add");
  auto timed = std::make_shared<bool>(false);
  auto input = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("analogy",
                                 "A is to B as C is to ? (b - a + c): `igla analogy man king woman` gives queen");
  auto* w = cmd->add_option("words", *words, "A B C")->expected(3);
  add_input(cmd, *input, "'a b c' per line")->excludes(w);
  cmd->add_option("--mode", *mode,
                  "clamp: the seed's clamped ternary b-a+c; add: 3CosAdd; mul: 3CosMul (default: add)")
      ->check(CLI::IsMember({"clamp", "add", "mul"}));
  cmd->add_flag("--time", *timed, "Print the query latency (search only) on stderr");
  opt->add_to(cmd);
  opt->add_candidates(cmd);
  cmd->callback([opt, words, mode, timed, input] {
    const auto ix = opt->open_index();
    const Engine e = opt->engine(ix);
    const auto m = parse_analogy_mode(*mode);
    if (!input->empty()) return batch(e, *opt, {.kind = BatchKind::Analogy, .path = *input, .mode = m});
    if (words->size() != 3) throw Error("analogy takes three words (A B C), or --input FILE");
    using clock = std::chrono::steady_clock;
    auto t0 = clock::now();
    const auto hits = e.analogy((*words)[0], (*words)[1], (*words)[2], m, opt->params());
    const double cold_us = std::chrono::duration<double, std::micro>(clock::now() - t0).count();
    print_hits(hits, opt->json);
    if (*timed) {
      // The first query pays for page faults on the mapped index and the thread pool's start;
      // the median of repeats is what a long-running process sees.
      std::vector<double> warm;
      for (int i = 0; i < 21; ++i) {
        t0 = clock::now();
        e.analogy((*words)[0], (*words)[1], (*words)[2], m, opt->params());
        warm.push_back(std::chrono::duration<double, std::micro>(clock::now() - t0).count());
      }
      std::nth_element(warm.begin(), warm.begin() + 10, warm.end());
      fmt::print(stderr, "analogy: {:.1f} us per query warm (median of 21), {:.1f} us cold; {} words, {}, {}\n",
                 warm[10], cold_us, ix->size(), e.searcher().name(), *mode);
    }
  });
}

void add_most_similar(CLI::App& app) {
  auto opt = std::make_shared<SearchOptions>();
  auto pos = std::make_shared<std::vector<std::string>>();
  auto neg = std::make_shared<std::vector<std::string>>();
  auto* cmd = app.add_subcommand("most-similar",
                                 "gensim's most_similar: words closest to sum(positive) - sum(negative), inputs excluded");
  cmd->add_option("-p,--positive", *pos, "Words that count positively");
  cmd->add_option("-n,--negative", *neg, "Words that count negatively");
  auto input = std::make_shared<std::string>();
  add_input(cmd, *input, "words per line, negatives prefixed with '-' (king woman -man)");
  opt->add_to(cmd);
  opt->add_candidates(cmd);
  cmd->callback([opt, pos, neg, input] {
    const Engine e = opt->engine(opt->open_index());
    if (!input->empty()) return batch(e, *opt, {.kind = BatchKind::MostSimilar, .path = *input});
    print_hits(e.most_similar(*pos, *neg, opt->params()), opt->json);
  });
}

void add_doesnt_match(CLI::App& app) {
  auto opt = std::make_shared<SearchOptions>();
  auto words = std::make_shared<std::vector<std::string>>();
  auto* cmd = app.add_subcommand("doesnt-match", "The word that fits least with the others (gensim's doesnt_match)");
  cmd->add_option("words", *words, "Two or more words")->required();
  opt->add_to(cmd, false);
  opt->add_candidates(cmd);
  cmd->callback([opt, words] {
    const Engine e = opt->engine(opt->open_index());
    const std::string w = e.doesnt_match(*words, opt->params());
    if (opt->json)
      fmt::print("{}\n", json_text({{"doesnt_match", w}}));
    else
      fmt::print("{}\n", w);
  });
}

const Command r1(20, add_similarity), r2(21, add_nearest), r3(22, add_analogy), r4(23, add_most_similar),
    r5(24, add_doesnt_match);

}  // namespace
}  // namespace igla::cli
