// igla serve: the request path without sockets — routes, auth, JSON in and out, limits, the
// batcher, the index in service and its atomic reload. The HTTP server (server.hpp) feeds it
// parsed requests; the fuzz target and the tests feed it directly.
//
// Routes (docs/API.md): POST /v1/nearest, /v1/analogy, /v1/most_similar, /v1/similarity,
// /v1/doesnt_match, /v1/admin/reload (loopback peers only); GET /v1/info, /healthz, /metrics.
//
// Thread-safety: handle(), reload*(), start_draining() and the getters may be called from any
// thread at once. A reply is called exactly once per handle(), on any thread (the batcher's, the
// admin thread's or the caller's); it gets a function that makes the response, to be run where
// the caller wants the JSON written (the server runs it on the connection's strand).
#pragma once

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "batcher.hpp"
#include "igla/engine.hpp"
#include "metrics.hpp"
#include "options.hpp"
#include "word_table.hpp"

namespace igla::server {

namespace http = boost::beast::http;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

struct Peer {
  bool loopback = true;  // the client connected from 127.0.0.0/8 or ::1
};

// The index in service.
struct Loaded {
  std::shared_ptr<const Engine> engine;
  WordTable words;          // the engine's words -> ids (what Index::find answers, faster)
  std::string info;         // /v1/info's index part, JSON (computed once per load)
  uint64_t generation = 1;  // 1 at start, +1 per reload
  double loaded_unix = 0;   // when it was loaded, seconds since the epoch
  double load_seconds = 0;  // how long loading took
};

class Service {
 public:
  // Makes the engine to serve (the CLI: open_index + make_searcher); called at construction and
  // on each reload. Throws on failure (the old index stays in service).
  using Loader = std::function<std::shared_ptr<const Engine>()>;
  using ResponseMaker = std::function<Response()>;
  using Reply = std::function<void(ResponseMaker)>;

  Service(ServerOptions opts, Loader load);  // loads the index now; throws what the loader throws
  ~Service();                                // stop()
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  void handle(Request&& req, const Peer& peer, Reply reply);

  // Loads the index again and swaps it in atomically: requests already read finish on the old
  // engine, later ones use the new. Returns "" on success, else why (the old index stays).
  std::string reload();
  // The same on the admin thread (SIGHUP, POST /v1/admin/reload); `done` gets reload()'s answer.
  void reload_async(std::function<void(const std::string&)> done);

  // Draining: batches are cut without waiting, /healthz answers 503, responses close their
  // connection. What is queued is still answered.
  void start_draining();
  bool draining() const { return draining_.load(); }
  // Answers what is queued, then stops the batcher and the admin thread; later requests get 503.
  void stop();

  std::shared_ptr<const Loaded> loaded() const { return state_.load(); }
  Metrics& metrics() { return metrics_; }
  const ServerOptions& options() const { return opts_; }
  size_t in_flight() const { return in_flight_.load(); }  // handled, response not yet made
  // Requests in the batcher (queued or being searched): while above 0, at least one more reply
  // is still to come from the batcher thread.
  size_t batch_pending() const { return batcher_.pending(); }

  // The answer to bytes that are not a request the parser accepts (400, 413 for a body over
  // --max-body, 431 for headers over their limit); the connection is closed after it.
  Response malformed(const boost::beast::error_code& ec) const;
  // A JSON error response: {"error": {"status": S, "message": M}}.
  static Response error_response(int status, std::string_view message);

 private:
  ServerOptions opts_;
  Loader loader_;
  Metrics metrics_;
  Batcher batcher_;
  std::atomic<std::shared_ptr<const Loaded>> state_;
  std::atomic<bool> draining_{false}, stopped_{false};
  std::atomic<size_t> in_flight_{0};
  std::mutex reload_mu_;

  // The admin thread: reloads, so that loading an index never blocks an I/O thread.
  std::mutex admin_mu_;
  std::condition_variable admin_cv_;
  std::deque<std::function<void(const std::string&)>> admin_queue_;
  bool admin_stop_ = false;
  std::thread admin_;

  std::shared_ptr<const Loaded> load(uint64_t generation);
  void route(Request& req, const Peer& peer, std::string_view route_label, Reply& reply);
  void search(Kind kind, const Request& req, Reply& reply);
  // POST /v1/nearest of the common shape, read without a DOM; false: not that shape (or an error
  // to report), nothing answered, the full path takes it.
  bool search_nearest_fast(const Request& req, Reply& reply);
  // Queues `job` with its deadline; `make` writes its answer once it is searched.
  template <class Make>
  void enqueue(std::shared_ptr<Job> job, size_t timeout_ms, Make make, Reply& reply);
  std::string info_json() const;
};

}  // namespace igla::server
