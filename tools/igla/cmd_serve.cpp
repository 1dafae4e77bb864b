// `igla serve`: semantic search as an HTTP/JSON service with dynamic batching across clients
// (server/, docs/API.md).
#include <fmt/chrono.h>
#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <thread>

#include "auth.hpp"
#include "cli.hpp"
#include "igla/error.hpp"
#include "server.hpp"

namespace igla::cli {
namespace {

// Enough descriptors for thousands of connections: the soft limit raised to the hard one.
void raise_open_files_limit() {
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
  }
}

void log_line(const std::string& line) {
  static std::mutex mu;
  std::lock_guard lk(mu);
  const auto now = std::chrono::system_clock::now();
  fmt::print(stderr, "{:%Y-%m-%dT%H:%M:%S}Z igla serve: {}\n", fmt::gmtime(std::chrono::system_clock::to_time_t(now)),
             line);
  std::fflush(stderr);
}

void add_serve(CLI::App& app) {
  struct Args {
    SearchOptions search;  // --index, --device, --threads, --kernel, --lower (and IGLA_KERNEL / IGLA_CUDA_*)
    std::string token_file;
    server::ServerOptions so;
  };
  auto a = std::make_shared<Args>();
  auto& so = a->so;
  auto* cmd = app.add_subcommand(
      "serve",
      "Serve nearest, analogy, most_similar, similarity and doesnt_match over HTTP/JSON (docs/API.md), "
      "gathering the queries of concurrent requests into batch searches. Prints `listening on URL` when "
      "ready. SIGTERM/SIGINT: stop accepting, answer what is in flight, exit 0. SIGHUP: re-read the index "
      "and swap it in (in-flight requests finish on the old one).");
  cmd->add_option("--index", a->search.index, "Index file (default: $IGLA_HOME/glove-100d.igla, made by `igla fetch-glove`)");
  cmd->add_option("--host", so.host,
                  "Address to listen on (default 127.0.0.1). A non-loopback address needs --token-file or --no-auth");
  cmd->add_option("--port", so.port, "TCP port (default 8080; 0: any free port, printed in the ready line)");
  cmd->add_option("--device", a->search.device,
                  "Search backend: cpu (exact, the default), cuda, or the approximate ivf / ivf-int8 (the IVF lists "
                  "of `igla build-ivf`, built in memory when the index has none; ivf-int8 is ~4x the exact CPU "
                  "rate at recall@10 ~0.95-0.97: BENCHMARKS.md) or graph (the HNSW-style graph of `igla "
                  "build-graph` over the int8 rows, built in memory when the index has none: ~2 min on GloVe)")
      ->check(CLI::IsMember({"cpu", "cuda", "ivf", "ivf-int8", "graph"}));
  cmd->add_option("--nprobe", so.nprobe,
                  "With --device ivf or ivf-int8: lists scanned per query (default 0: the searcher's, L / 32)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--ef", so.ef,
                  "With --device graph: search breadth on the graph's layer 0 (default 0: the searcher's; more: "
                  "higher recall, slower)")
      ->check(CLI::Range(0, 100000));
  cmd->add_option("--threads", a->search.threads, "CPU search threads per batch (default 0: all cores)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--kernel", a->search.kernel,
                  "CPU kernel: auto, avx512, avx2 or scalar (default: the best this CPU runs; also IGLA_KERNEL)");
  // The pool's workers sleep at once between batches: on a machine whose cores the I/O thread and
  // the clients share, a worker spinning for the next batch takes CPU they need (2-core dev VM,
  // 1,000 connections, graph: the worker's CPU per request -1.5-2 us, BENCHMARKS.md "serve6").
  a->search.pool_spin = 0;
  a->search.add_pool_spin(cmd, " here, where the I/O thread and the clients need the cores; " +
                                   std::to_string(kDefaultIdleSpin) + " in the other commands");
  so.io_threads = 0;  // auto, resolved below
  cmd->add_option("--io-threads", so.io_threads,
                  "Threads running the asynchronous HTTP I/O for all connections (default 0: one per 4 cores, "
                  "at least 1)")
      ->check(CLI::Range(0, 1024));
  cmd->add_option("--max-batch", so.max_batch,
                  "Most queries in one batch search; a larger request is split over several (default 4096). With "
                  "--device graph, whose search gains nothing from large batches, 128-256 shortens the tail: a "
                  "request waits about one batch less (BENCHMARKS.md, service)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-wait-us", so.max_wait_us,
                  "Longest a query waits for others to join its batch, in microseconds (default 500; 0: no wait)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--max-queue", so.max_queue,
                  "Most queries waiting for a batch; requests past it get 503 with Retry-After (default 100000)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-body", so.max_body, "Largest request body, e.g. 1MiB, 512KiB, 65536 (default 1MiB; 413 over it)")
      ->transform(CLI::AsSizeValue(false));
  cmd->add_option("--max-k", so.max_k, "Largest k a request may ask for (default 1000; 400 over it)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-candidates", so.max_candidates,
                  "Largest rerank candidates a request may ask for (default 10000; 400 over it)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--candidates", so.default_candidates,
                  "Rerank candidates when a request gives none: the top C ternary candidates rescored on the "
                  "index's rerank rows (0: ternary scores only; default " +
                      std::to_string(kDefaultCandidates) + ")")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--timeout-ms", so.timeout_ms,
                  "A request's deadline: one still queued after it gets 504 (default 10000; a request may ask for "
                  "less with \"timeout_ms\")")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--idle-timeout-s", so.idle_timeout_s,
                  "Close a keep-alive connection that sends no request for this long (default 60)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--drain-timeout-s", so.drain_timeout_s,
                  "On SIGTERM, the longest to wait for in-flight requests before stopping anyway (default 30)")
      ->check(CLI::PositiveNumber);
  auto* tf = cmd->add_option("--token-file", a->token_file,
                             "File whose first line is the API token: clients must send 'Authorization: Bearer "
                             "TOKEN' (401 otherwise; GET /healthz stays open)");
  cmd->add_flag("--no-auth", so.no_auth, "Serve a non-loopback --host without a token (behind your own proxy)")
      ->excludes(tf);
  cmd->add_flag("--lower", a->search.lower, "Fold query words to lower case before lookup");
  cmd->callback([a] {
    auto& so = a->so;
    const std::string path = a->search.index_path();
    if (!a->token_file.empty()) so.token = server::read_token_file(a->token_file);
    // One I/O thread per 4 cores: the searches need the rest. On the 2-core dev VM, 1 I/O thread
    // against 2 gave 1-22% more one-word requests/s and 1-10% less server CPU per request in three
    // alternating pairs (1,000 connections, BENCHMARKS.md "Service").
    if (so.io_threads == 0) so.io_threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency() / 4));
    so.handle_signals = true;
    so.log = log_line;
    raise_open_files_limit();
    // Called at start and on each reload: the file is read again, the searcher made for it.
    auto load = [search = a->search] {
      auto s = search;  // open_index() caps k / candidates at this file's vocabulary
      auto ix = s.open_index();
      return std::make_shared<const Engine>(s.engine(std::move(ix)));
    };
    server::Server srv(so, load);
    auto l = srv.service().loaded();
    log_line(fmt::format("{}: {} words, {} dims; searcher {}; batches of up to {} queries, wait {} us", path,
                         l->engine->index().size(), l->engine->index().dims(), l->engine->searcher().name(),
                         so.max_batch, so.max_wait_us));
    srv.start();
    fmt::print("listening on {}\n", srv.url());
    std::fflush(stdout);
    if (!srv.wait()) throw Error("stopped before every request was answered (second signal or --drain-timeout-s)");
    log_line("stopped");
  });
}

const Command reg(45, add_serve);

}  // namespace
}  // namespace igla::cli
