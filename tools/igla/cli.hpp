// igla CLI: what every command shares — registration, the index/search options, output, progress.
#pragma once

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "igla/engine.hpp"
#include "igla/index.hpp"

namespace igla::cli {

// Each command file registers itself (order = position in --help), so adding a command touches
// one file.
using Register = void (*)(CLI::App& app);
struct Command {
  Command(int order, Register fn);
};
void register_all(CLI::App& app);

// Validators with readable messages: "must be a whole number from 1 to 1000000000, got 'abc'"
// (CLI11's own range check writes DBL_MAX out in full).
CLI::Validator whole_number(uint64_t min, uint64_t max);
CLI::Validator real_number(double min, double max);

// Bounds of the search options (parsed, then capped: k and candidates at the vocabulary size).
inline constexpr uint64_t kMaxK = 1'000'000'000;
int max_threads();  // 4 x the hardware threads, at most 1024: more only costs memory and time

// Where indexes and downloads live: $IGLA_HOME, else ~/.cache/igla (the CLI reads the
// environment; the library does not).
std::string igla_home();
std::string default_index_path();  // igla_home() + "/" + kDefaultIndexName

// Options of every command that reads an index and searches it.
struct SearchOptions {
  std::string index;          // "" = default_index_path()
  std::string device = "cpu";
  int threads = 0;
  std::string kernel;
  bool json = false;
  bool lower = false;
  size_t k = 10;
  size_t candidates = kDefaultCandidates;
  uint32_t nprobe = 0;         // --nprobe: IVF lists probed (0: the searcher's default)
  uint32_t ef = 0;             // --ef: graph search breadth (0: the searcher's default)
  std::string cuda_path;       // --cuda-path: the GPU batch path ("" chosen per batch)
  int pool_spin = -1;          // --pool-spin: CpuOptions::idle_spin (-1: the pool's default)
  // --pool-spin (add_to adds it); its help shows pool_spin's value as the default (-1: the
  // library's), followed by `why_default`.
  void add_pool_spin(CLI::App* cmd, const std::string& why_default = "");
  void add_to(CLI::App* cmd, bool with_k = true);
  void add_candidates(CLI::App* cmd);  // --candidates, for commands that rerank
  // An engine over `ix` with the searcher these flags name (--lower applied).
  Engine engine(std::shared_ptr<const Index> ix) const;
  std::string index_path() const;
  // Opens the index (clear error when the default one was never fetched), then caps k and
  // candidates at its vocabulary size and threads at max_threads().
  std::shared_ptr<const Index> open_index();
  // --device, --threads, --kernel, --cuda-path, and the IGLA_KERNEL / IGLA_CUDA_* variables.
  SearcherOptions searcher() const;
  SearchParams params() const { return {.k = k, .candidates = candidates, .nprobe = nprobe, .ef = ef}; }
};

// Thrown by a command that has printed its own report and wants this exit code (main returns it).
struct ExitCode {
  int code;
};

// "word<TAB>score" lines, or a JSON array of {"word", "score"} with --json.
void print_hits(const std::vector<WordHit>& hits, bool json);

// The text of a word for JSON output: valid UTF-8 as is, otherwise each invalid byte replaced by
// U+FFFD (nlohmann::json refuses invalid UTF-8).
std::string utf8_text(std::string_view s);

// A progress bar on stderr: redrawn in place on a terminal, a line per 10% otherwise.
class ProgressBar {
 public:
  ProgressBar(std::string label, std::string unit);
  void update(uint64_t done, uint64_t total);
  void finish();
  std::function<void(uint64_t, uint64_t)> callback() {
    return [this](uint64_t d, uint64_t t) { update(d, t); };
  }

 private:
  std::string label_, unit_;
  bool tty_;
  int last_decile_ = -1;
  bool finished_ = false;
  uint64_t last_total_ = 0;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

std::string human_bytes(uint64_t n);

}  // namespace igla::cli
