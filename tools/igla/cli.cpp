#include "cli.hpp"
#include "json_out.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "igla/error.hpp"

namespace igla::cli {

namespace {
std::vector<std::pair<int, Register>>& registry() {
  static std::vector<std::pair<int, Register>> r;
  return r;
}
}  // namespace

Command::Command(int order, Register fn) { registry().push_back({order, fn}); }

void register_all(CLI::App& app) {
  auto& r = registry();
  std::stable_sort(r.begin(), r.end(), [](auto& a, auto& b) { return a.first < b.first; });
  for (auto& [order, fn] : r) fn(app);
}

void SearchOptions::add_to(CLI::App* cmd, bool with_k) {
  cmd->add_option("--index", index, "Index file (default: $IGLA_HOME/glove-100d.igla, made by `igla fetch-glove`)");
  cmd->add_option("--device", device, "Search backend: cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  cmd->add_option("--threads", threads, "CPU threads (default: all cores)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--kernel", kernel, "CPU kernel: auto, avx512, avx2 or scalar (default: best this CPU runs; also IGLA_KERNEL)");
  cmd->add_flag("--json", json, "Print JSON instead of word<TAB>score lines");
  cmd->add_flag("--lower", lower, "Fold input words to lower case");
  if (with_k) cmd->add_option("-k,--top", k, "Number of results")->check(CLI::PositiveNumber);
}

void SearchOptions::add_candidates(CLI::App* cmd) {
  cmd->add_option("--candidates", candidates,
                  "Two-stage search: rescore the top C ternary candidates exactly on the index's rerank rows "
                  "(0: ternary scores only; no effect on an index without rerank rows; default: " +
                      std::to_string(kDefaultCandidates) + ")")
      ->check(CLI::NonNegativeNumber);
}

Engine SearchOptions::engine(const Index& ix) const {
  Engine e(ix, searcher());
  e.lower = lower;
  e.candidates = candidates;
  return e;
}

std::string SearchOptions::index_path() const { return index.empty() ? default_index_path() : index; }

Index SearchOptions::open_index() const {
  const std::string path = index_path();
  if (index.empty() && !std::filesystem::exists(path))
    throw Error("no index at " + path + ": run `igla fetch-glove` first (it downloads GloVe 100d), or pass --index PATH");
  return Index::open(path);
}

void print_hits(const std::vector<WordHit>& hits, bool json) {
  if (json) {
    nlohmann::json a = nlohmann::json::array();
    for (auto& h : hits) a.push_back({{"word", h.word}, {"score", h.score}});
    fmt::print("{}\n", json_text(a));
    return;
  }
  for (auto& h : hits) fmt::print("{}\t{:.6f}\n", h.word, h.score);
}

ProgressBar::ProgressBar(std::string label, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), tty_(isatty(STDERR_FILENO)),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

void ProgressBar::update(uint64_t done, uint64_t total) {
  if (finished_ || total == 0) return;
  last_total_ = total;
  done = std::min(done, total);
  const double frac = double(done) / double(total);
  const auto now = std::chrono::steady_clock::now();
  const double secs = std::chrono::duration<double>(now - start_).count();
  if (tty_) {
    if (done < total && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    const int width = 30, fill = static_cast<int>(frac * width);
    fmt::print(stderr, "\r{} [{}{}] {:3.0f}% {}/{} {} {:.1f}s", label_, std::string(fill, '='),
               std::string(width - fill, ' '), frac * 100, done, total, unit_, secs);
    std::fflush(stderr);
  } else {
    const int decile = static_cast<int>(frac * 10);
    if (decile == last_decile_) return;
    last_decile_ = decile;
    fmt::print(stderr, "{}: {:3.0f}% ({}/{} {}, {:.1f}s)\n", label_, frac * 100, done, total, unit_, secs);
  }
}

void ProgressBar::finish() {
  if (finished_) return;
  finished_ = true;
  if (tty_ && last_total_) fmt::print(stderr, "\n");
}

std::string human_bytes(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = double(n);
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, ++u;
  return u == 0 ? fmt::format("{} B", n) : fmt::format("{:.1f} {}", v, units[u]);
}

}  // namespace igla::cli
