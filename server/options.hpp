// igla serve: the server's settings (what `igla serve` flags set). Defaults are the issue's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "igla/search.hpp"

namespace igla::server {

struct ServerOptions {
  // ---- listening
  std::string host = "127.0.0.1";  // a non-loopback host needs a token or no_auth
  uint16_t port = 8080;            // 0: an ephemeral port (Server::port() says which)
  int io_threads = 2;              // threads running the asynchronous I/O (not one per connection)

  // ---- dynamic batching
  size_t max_batch = 4096;     // queries in one search call at most
  uint32_t max_wait_us = 500;  // the longest a query waits for others to join its batch
  size_t max_queue = 100000;   // queries waiting at most; more -> 503 with Retry-After

  // ---- limits
  size_t max_body = size_t{1} << 20;  // request body bytes (413 over it)
  size_t max_header = 16 * 1024;      // request line + headers bytes (431 over it)
  size_t max_k = 1000;                // k per query (400 over it)
  size_t max_candidates = 10000;      // rerank candidates per query (400 over it)
  size_t default_candidates = kDefaultCandidates;
  uint32_t nprobe = 0;                // approximate backends: IVF lists probed per query (0: the searcher's default)
  uint32_t ef = 0;                    // graph backend: search breadth on layer 0 (0: the searcher's default)
  uint32_t timeout_ms = 10000;        // a request's deadline in the queue (504 past it); a
                                      // request may ask for less with "timeout_ms"
  uint32_t idle_timeout_s = 60;       // a keep-alive connection with no request is closed after it
  uint32_t drain_timeout_s = 30;      // SIGTERM: the longest the server waits for in-flight work

  // ---- auth: clients send "Authorization: Bearer <token>" (compared in constant time)
  std::string token;     // empty: no auth
  bool no_auth = false;  // explicitly allow a non-loopback host without a token

  // ---- process
  bool handle_signals = false;  // SIGTERM/SIGINT drain and exit, SIGHUP reloads (the CLI sets it)
  std::function<void(const std::string&)> log;  // one line per event (ready, reload, drain); may be empty
};

}  // namespace igla::server
