#include "cli.hpp"
#include "json_out.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cmath>
#include <filesystem>
#include <thread>
#include <nlohmann/json.hpp>

#include "cuda_env.hpp"
#include "igla/error.hpp"
#include "igla/graph.hpp"

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

CLI::Validator whole_number(uint64_t min, uint64_t max) {
  const std::string range = fmt::format("a whole number from {} to {}", min, max);
  return CLI::Validator(
      [min, max, range](std::string& s) -> std::string {
        uint64_t v = 0;
        const char* end = s.data() + s.size();
        const auto [p, ec] = std::from_chars(s.data(), end, v);
        if (s.empty() || ec == std::errc::invalid_argument || (p != end && ec == std::errc()))
          return fmt::format("must be {}, got '{}'", range, s);
        if (ec == std::errc::result_out_of_range || v < min || v > max)
          return fmt::format("must be {}, got {}", range, s);
        return {};
      },
      "INT in [" + std::to_string(min) + ", " + std::to_string(max) + "]", "whole_number");
}

CLI::Validator real_number(double min, double max) {
  const std::string range = fmt::format("a number from {:g} to {:g}", min, max);
  return CLI::Validator(
      [min, max, range](std::string& s) -> std::string {
        double v = 0;
        const char* end = s.data() + s.size();
        const auto [p, ec] = std::from_chars(s.data(), end, v);
        if (s.empty() || ec != std::errc() || p != end || !std::isfinite(v) || v < min || v > max)
          return fmt::format("must be {}, got '{}'", range, s);
        return {};
      },
      fmt::format("FLOAT in [{:g}, {:g}]", min, max), "real_number");
}

std::string igla_home() {
  if (const char* h = std::getenv("IGLA_HOME"); h && *h) return h;
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/tmp") + "/.cache/igla";
}

std::string default_index_path() { return igla_home() + "/" + kDefaultIndexName; }

int max_threads() {
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  return static_cast<int>(std::min(1024u, 4 * hw));
}

void SearchOptions::add_to(CLI::App* cmd, bool with_k) {
  cmd->add_option("--index", index, "Index file (default: $IGLA_HOME/glove-100d.igla, made by `igla fetch-glove`)");
  cmd->add_option("--device", device,
                  "Search backend: cpu, cuda, ivf, ivf-int8 or graph (approximate: the IVF lists of `igla build-ivf`, built in "
                  "memory when the index has none; ivf-int8 scans the int8 rerank rows in the lists, the faster one "
                  "at equal recall: BENCHMARKS.md; graph: the HNSW-style graph of `igla build-graph` over the int8 "
                  "rows, built in memory when the index has none, the fastest one query at a time; cuda-ivf: the "
                  "ivf lists scanned on the GPU's tensor cores, the same answers as ivf)")
      ->check(CLI::IsMember({"cpu", "cuda", "ivf", "ivf-int8", "graph", "cuda-ivf"}));
  cmd->add_option("--nprobe", nprobe,
                  "With --device ivf, ivf-int8 or cuda-ivf: lists scanned per query (default: L / 32; L or more: every list)")
      ->check(whole_number(1, UINT32_MAX));
  cmd->add_option("--ef", ef,
                  fmt::format("With --device graph: search breadth on the graph's layer 0 (default: {} for word "
                              "queries on a graph with kept nearest links, else {}; more: higher recall, slower)",
                              kDefaultGraphEfWords, kDefaultGraphEf))
      ->check(whole_number(1, UINT32_MAX));
  cmd->add_option("--threads", threads,
                  fmt::format("CPU threads (default 0: all cores; more than {} = 4 x the hardware threads are capped)",
                              max_threads()))
      ->check(whole_number(0, 1024));
  cmd->add_option("--kernel", kernel, "CPU kernel: auto, avx512, avx2 or scalar (default: best this CPU runs; also IGLA_KERNEL)");
  cmd->add_option("--cuda-path", cuda_path, "With --device cuda: the batch path, mma, popc, mt or sort (default: chosen per batch)")
      ->check(CLI::IsMember({"", "mma", "popc", "mt", "sort"}));
  add_pool_spin(cmd);
  cmd->add_flag("--json", json, "Print JSON instead of word<TAB>score lines");
  cmd->add_flag("--lower", lower, "Fold input words to lower case");
  if (with_k)
    cmd->add_option("-k,--top", k, "Number of results (capped at the vocabulary size)")->check(whole_number(1, kMaxK));
}

void SearchOptions::add_pool_spin(CLI::App* cmd, const std::string& why_default) {
  cmd->add_option("--pool-spin", pool_spin,
                  fmt::format("CPU search pool: pause instructions an idle worker spins waiting for the next batch "
                              "before it sleeps (default {}{}; 0: sleep at once, leaving the core to other work)",
                              pool_spin >= 0 ? static_cast<uint32_t>(pool_spin) : kDefaultIdleSpin, why_default))
      ->check(whole_number(0, 100'000'000));
}

void SearchOptions::add_candidates(CLI::App* cmd) {
  cmd->add_option("--candidates", candidates,
                  "Two-stage search: rescore the top C ternary candidates exactly on the index's rerank rows "
                  "(0: ternary scores only; no effect on an index without rerank rows; default: " +
                      std::to_string(kDefaultCandidates) + "; capped at the vocabulary size)")
      ->check(whole_number(0, kMaxK));
}

SearcherOptions SearchOptions::searcher() const {
  SearcherOptions o;
  o.backend = device;
  o.cpu.threads = threads;
  o.cpu.kernel = kernel;
  o.cpu.idle_spin = pool_spin;
  if (o.cpu.kernel.empty())
    if (const char* env = std::getenv("IGLA_KERNEL")) o.cpu.kernel = env;
  if (o.cpu.kernel == "auto") o.cpu.kernel.clear();
  o.cuda = cuda_options_from_env();
  o.cuda.path = cuda_path;
  return o;
}

Engine SearchOptions::engine(std::shared_ptr<const Index> ix) const {
  auto s = make_searcher(ix, searcher());
  return Engine(std::move(ix), std::move(s), {.lower = lower});
}

std::string SearchOptions::index_path() const { return index.empty() ? default_index_path() : index; }

std::shared_ptr<const Index> SearchOptions::open_index() {
  const std::string path = index_path();
  if (index.empty() && !std::filesystem::exists(path))
    throw Error("no index at " + path + ": run `igla fetch-glove` first (it downloads GloVe 100d), or pass --index PATH");
  std::shared_ptr<const Index> ix = igla::open_index(path);
  k = std::min(k, ix->size());
  candidates = std::min(candidates, ix->size());
  threads = std::min(threads, max_threads());
  return ix;
}

std::string utf8_text(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool ok = len > 0 && i + len <= s.size();
    for (size_t j = 1; ok && j < len; ++j) ok = (static_cast<unsigned char>(s[i + j]) & 0xC0) == 0x80;
    if (ok && len > 1) {  // no overlong forms, surrogates or code points past U+10FFFF
      uint32_t cp = c & (0x7F >> len);
      for (size_t j = 1; j < len; ++j) cp = (cp << 6) | (static_cast<unsigned char>(s[i + j]) & 0x3F);
      ok = cp >= (len == 2 ? 0x80u : len == 3 ? 0x800u : 0x10000u) && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF);
    }
    if (ok) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
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
