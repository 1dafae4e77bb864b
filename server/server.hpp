// igla serve: the HTTP/1.1 server over the Service — Boost.Beast sessions on a few I/O threads
// (asynchronous: thousands of keep-alive connections, no thread each), SIGTERM drain and SIGHUP
// reload.
//
// Life of a connection: read into the connection's one buffer, feed Beast's request parser from it
// (headers, then the body; "Expect: 100-continue" answered), hand the request to the Service,
// write its answer (status line and headers serialized into a kept buffer, one gather write, tried
// at once), parse the next (keep-alive, pipelining). Handlers run on the connection's strand, or
// with one I/O thread on that thread (no strand). The batcher's answers reach the I/O loop in one
// wake-up per batch. Malformed HTTP is answered 400 / 413 / 431 and the connection closed; an idle
// connection is closed after idle_timeout_s, a stalled body or write after 30 s (deadlines checked
// every 250 ms by one timer, not a timer per operation).
//
// Drain (SIGTERM, SIGINT, drain()): stop accepting, close connections waiting for a request,
// answer every request already read (their responses close the connection), then stop; a
// second SIGTERM / SIGINT stops at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "options.hpp"
#include "service.hpp"

namespace igla::server {

// Whether `host` (an address or "localhost") is a loopback address.
bool is_loopback_host(const std::string& host);

class Server {
 public:
  // Loads the index (through `load`) and binds host:port. Throws Error naming what failed; a
  // non-loopback host without a token or no_auth is refused.
  Server(ServerOptions opts, Service::Loader load);
  ~Server();  // drains if still running, then waits
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  uint16_t port() const;    // the bound port (the ephemeral one when options.port = 0)
  std::string url() const;  // http://HOST:PORT
  void start();             // runs the I/O threads in the background
  // Blocks until the server has stopped (after a drain). Returns false when it was forced to
  // stop with requests unanswered (a second signal, or the drain timeout).
  bool wait();
  bool run() {
    start();
    return wait();
  }
  void drain();  // thread-safe; what SIGTERM does
  Service& service();
  // Runs of completions (one I/O thread) whose connections started their next read at the next
  // run rather than at once (Server::Impl::run_completions); for tests and diagnostics.
  uint64_t deferred_read_runs() const;

  struct Impl;  // server.cpp

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace igla::server
