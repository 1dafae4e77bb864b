#include "server.hpp"

#include <pthread.h>
#include <fmt/format.h>

#include <array>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <csignal>
#include <iterator>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "igla/error.hpp"
#include "json_write.hpp"

namespace igla::server {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

namespace {
bool is_loopback_address(const net::ip::address& a) {
  return a.is_loopback() || (a.is_v6() && a.to_v6().is_v4_mapped() &&
                             net::ip::make_address_v4(net::ip::v4_mapped, a.to_v6()).is_loopback());
}
}  // namespace

bool is_loopback_host(const std::string& host) {
  if (host == "localhost") return true;
  boost::system::error_code ec;
  const auto a = net::ip::make_address(host, ec);
  return !ec && is_loopback_address(a);
}

namespace {
constexpr auto kWriteTimeout = std::chrono::seconds(30);
constexpr auto kBodyTimeout = std::chrono::seconds(30);
constexpr auto kLingerTimeout = std::chrono::seconds(2);
// How often the connections' deadlines are checked (their resolution).
constexpr auto kSweepPeriod = std::chrono::milliseconds(250);
constexpr size_t kReadChunk = 16 * 1024;  // bytes asked of one read
// A run of completions that answers at least this many connections starts their next reads at the
// next run (when the batcher has more to answer), not at its own end (run_completions says why).
constexpr size_t kDeferReadsFrom = 16;
const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

int64_t ticks(Clock::time_point t) { return t.time_since_epoch().count(); }
constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
}  // namespace

namespace {
// The status line and header block of `r` (its fields, then Content-Length and the Connection
// header that `keep_alive` needs at this version), appended to `out`. The body is written after
// it as it is.
void append_response_head(std::string& out, const Response& r, unsigned version, bool keep_alive) {
  out += version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  append_decimal(out, r.result_int());
  out += ' ';
  out += r.reason();
  out += "\r\n";
  for (const auto& f : r) {
    if (f.name() == http::field::content_length || f.name() == http::field::connection ||
        f.name() == http::field::transfer_encoding)
      continue;
    out += f.name_string();
    out += ": ";
    out += f.value();
    out += "\r\n";
  }
  out += "Content-Length: ";
  append_decimal(out, r.body().size());
  out += "\r\n";
  if (version == 10 && keep_alive) out += "Connection: keep-alive\r\n";
  if (version != 10 && !keep_alive) out += "Connection: close\r\n";
  out += "\r\n";
}
}  // namespace

class Session;

struct Server::Impl {
  ServerOptions opts;
  Service service;
  std::mutex sessions_mu;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;
  std::atomic<bool> draining{false}, forced{false}, finished{false};
  std::vector<std::thread> threads;
  // Answers made by other threads (the batcher's), waiting for an I/O thread: one wake-up of the
  // I/O loop carries every answer that arrived since the last (a batch of 300 requests costs one
  // wake-up, not 300).
  struct Completion {
    std::shared_ptr<Session> session;
    Service::ResponseMaker make;
  };
  std::mutex completions_mu;
  std::vector<Completion> completions, completions_running;
  // One I/O thread: the connections whose answer a run of completions wrote at once, whose next
  // read starts after every answer of that run is written (see run_completions).
  std::vector<std::shared_ptr<Session>> reads_after_completions;
  bool deferring_reads = false;
  // One I/O thread under load: the connections answered by the last run of completions, whose
  // next read starts at the next run (see run_completions).
  std::vector<std::shared_ptr<Session>> reads_at_next_run;
  std::atomic<uint64_t> deferred_runs{0};  // runs whose reads waited for the next (tests read it)
  // Declared after what sessions touch: destroying the io_context destroys pending handlers
  // (and with them sessions), which deregister themselves.
  net::io_context ioc;
  tcp::acceptor acceptor{ioc};
  net::signal_set signals{ioc};
  net::steady_timer drain_timer{ioc}, accept_retry{ioc}, sweep_timer{ioc};
  Clock::time_point drain_deadline;
  uint16_t port = 0;  // bound (kept: the acceptor closes when draining)

  Impl(ServerOptions o, Service::Loader load)
      : opts(std::move(o)), service(opts, std::move(load)), ioc(std::max(1, opts.io_threads)) {}

  // With one I/O thread every handler runs on it: connections need no strand.
  net::any_io_executor connection_executor() {
    if (opts.io_threads == 1) return ioc.get_executor();
    return net::make_strand(ioc);
  }
  void log(const std::string& line) {
    if (opts.log) opts.log(line);
  }
  void listen();
  void accept();
  void wait_signal();
  void drain();
  void check_drained();
  void finish();
  void sweep();
  void complete(std::shared_ptr<Session> s, Service::ResponseMaker make);
  void run_completions();
};

// One client connection. Every handler runs on its executor (a strand when there are several I/O
// threads). Requests are parsed by Beast's parser from one read buffer kept for the connection's
// life; a response is serialized into a kept header buffer and written with its body in one
// gather write, tried at once without blocking (on loopback it completes), asynchronously
// otherwise. Timeouts are deadlines checked by the server's sweep (every 250 ms), not a timer
// armed per read and write.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& s, Server::Impl& srv)
      : sock_(std::move(s)), buffer_(srv.opts.max_header + kReadChunk), srv_(srv) {
    beast::error_code ec;
    const auto ep = sock_.remote_endpoint(ec);
    peer_.loopback = !ec && is_loopback_address(ep.address());
    sock_.set_option(tcp::no_delay(true), ec);
    sock_.non_blocking(true, ec);
    srv_.service.metrics().connection_opened();
  }
  ~Session() {
    srv_.service.metrics().connection_closed();
    std::lock_guard lk(srv_.sessions_mu);
    srv_.sessions.erase(this);
  }

  void start() {
    {
      std::lock_guard lk(srv_.sessions_mu);
      srv_.sessions.emplace(this, weak_from_this());
    }
    net::dispatch(sock_.get_executor(), [self = shared_from_this()] { self->read_next(); });
  }

  // Draining: a connection waiting for its next request is closed (nothing of a request read).
  void close_if_idle() {
    if (waiting_ && buffer_.size() == 0) cancel();
  }
  // The sweep: whether this connection's deadline has passed (any thread).
  bool expired(int64_t now) const { return deadline_.load(std::memory_order_relaxed) < now; }
  // On the connection's executor: past the deadline, the pending operation is cancelled (its
  // handler then closes the connection).
  void on_expired() {
    if (expired(ticks(Clock::now()))) cancel();
  }
  net::any_io_executor executor() { return sock_.get_executor(); }

  // Starts reading the next request after a start deferred by run_completions.
  void resume_reading() { read_next(); }

  // The answer to the request in service (on the connection's executor).
  void send(Response&& r) {
    const bool keep = keep_alive_ && !srv_.draining.load();
    keep_alive_ = keep;
    head_.clear();
    append_response_head(head_, r, version_ == 10 ? 10 : 11, keep);
    body_ = std::move(r.body());
    std::array<net::const_buffer, 2> bufs{net::buffer(head_), net::buffer(body_)};
    // Most answers fit the socket's send buffer: written now, no round trip through the loop.
    beast::error_code ec;
    const size_t n = sock_.write_some(bufs, ec);
    if (!ec && n == head_.size() + body_.size()) return after_write();
    if (ec && ec != net::error::would_block && ec != net::error::try_again) return close();
    const size_t done = ec ? 0 : n;
    set_deadline(kWriteTimeout);
    beast::buffers_suffix<std::array<net::const_buffer, 2>> rest(bufs);
    rest.consume(done);
    net::async_write(sock_, rest,
                     [self = shared_from_this()](beast::error_code e, size_t) {
                       if (e) return self->close();
                       self->after_write();
                     });
  }

 private:
  tcp::socket sock_;
  beast::flat_buffer buffer_;  // bytes read and not yet parsed; kept across requests
  std::optional<http::request_parser<http::string_body>> parser_;
  Server::Impl& srv_;
  Peer peer_;
  std::atomic<int64_t> deadline_{kNever};
  bool waiting_ = false, keep_alive_ = true, header_seen_ = false, closed_ = false;
  bool linger_ = false;  // after an error answer: read and drop what the client still sends, then close
  std::array<char, 4096> scratch_{};
  unsigned version_ = 11;
  std::string head_, body_;  // the response being written (head_ keeps its capacity)

  void set_deadline(Clock::duration d) { deadline_.store(ticks(Clock::now() + d), std::memory_order_relaxed); }
  void no_deadline() { deadline_.store(kNever, std::memory_order_relaxed); }
  void cancel() {
    beast::error_code ec;
    sock_.cancel(ec);
  }

  void read_next() {
    if (srv_.draining.load() && buffer_.size() == 0) return close();
    parser_.emplace();
    parser_->body_limit(srv_.opts.max_body);
    parser_->header_limit(static_cast<uint32_t>(srv_.opts.max_header));
    header_seen_ = false;
    parse();
  }

  // Feeds the parser what the buffer holds; reads more when it needs more.
  void parse() {
    while (buffer_.size() > 0) {
      beast::error_code ec;
      const size_t used = parser_->put(buffer_.data(), ec);
      buffer_.consume(used);
      if (ec == http::error::need_more) break;
      if (ec) return on_error(ec);
      if (!header_seen_ && parser_->is_header_done()) {
        header_seen_ = true;
        if (on_header()) return;  // writing "100 Continue"; parsing resumes after it
      }
      if (parser_->is_done()) return on_request();
      if (used == 0) break;
    }
    // The request's first byte not yet read: waiting (idle); else in the middle of a request.
    waiting_ = !parser_->got_some() && buffer_.size() == 0;
    set_deadline(waiting_ ? std::chrono::seconds(srv_.opts.idle_timeout_s) : kBodyTimeout);
    if (waiting_ && srv_.draining.load()) return close();
    if (buffer_.size() >= buffer_.max_size()) return on_error(http::error::buffer_overflow);
    const size_t room = std::min(kReadChunk, buffer_.max_size() - buffer_.size());
    sock_.async_read_some(buffer_.prepare(room), [self = shared_from_this()](beast::error_code ec, size_t n) {
      self->waiting_ = false;
      if (ec) return self->on_error(ec);
      self->buffer_.commit(n);
      self->parse();
    });
  }

  // The header is in: answers "Expect: 100-continue" (returns true while that write is pending).
  bool on_header() {
    const auto& req = parser_->get();
    version_ = req.version();
    if (!(beast::iequals(req[http::field::expect], "100-continue") && version_ >= 11)) return false;
    set_deadline(kWriteTimeout);
    net::async_write(sock_, net::buffer(kContinue), [self = shared_from_this()](beast::error_code e, size_t) {
      if (e) return self->close();
      self->parse();
    });
    return true;
  }

  void on_request() {
    Request req = parser_->release();
    version_ = req.version();
    keep_alive_ = req.keep_alive();
    no_deadline();  // the batcher answers within the request's deadline
    srv_.service.handle(std::move(req), peer_, [self = shared_from_this()](Service::ResponseMaker make) {
      self->srv_.complete(std::move(self), std::move(make));
    });
  }

  void after_write() {
    body_.clear();
    body_.shrink_to_fit();  // a 64-word answer is ~40 KB: not kept per idle connection
    if (!keep_alive_) return linger_ ? linger_close() : close();
    // Inside a run of completions the next read starts after the run (run_completions says why).
    if (srv_.deferring_reads) return srv_.reads_after_completions.push_back(shared_from_this());
    read_next();
  }

  void on_error(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == net::error::operation_aborted || ec == net::error::eof ||
        ec == net::error::connection_reset || ec == http::error::partial_message || ec == net::error::broken_pipe)
      return close();
    // Not HTTP, or over a limit: answer why and close (the stream cannot be resynchronized).
    keep_alive_ = false;
    linger_ = true;
    Response r = srv_.service.malformed(ec);
    srv_.service.metrics().request("malformed", r.result_int(), 0);
    send(std::move(r));
  }

  // Closing a socket with unread bytes sends a reset, which can destroy the error answer before
  // the client reads it: shut our side, drop what arrives until the client closes (2 s at most).
  void linger_close() {
    beast::error_code ec;
    sock_.shutdown(tcp::socket::shutdown_send, ec);
    set_deadline(kLingerTimeout);  // for the whole loop
    drop_until_closed();
  }
  void drop_until_closed() {
    sock_.async_read_some(net::buffer(scratch_), [self = shared_from_this()](beast::error_code e, size_t) {
      if (e) return self->close();
      self->drop_until_closed();
    });
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    no_deadline();
    beast::error_code ec;
    sock_.shutdown(tcp::socket::shutdown_send, ec);
    sock_.close(ec);
  }
};

void Server::Impl::complete(std::shared_ptr<Session> s, Service::ResponseMaker make) {
  bool first;
  {
    std::lock_guard lk(completions_mu);
    first = completions.empty();
    completions.push_back({std::move(s), std::move(make)});
  }
  if (first) net::post(ioc, [this] { run_completions(); });
}

void Server::Impl::run_completions() {
  // completions_running is only touched here; with several I/O threads two runs can overlap, so
  // each takes its own list then.
  std::vector<Completion> mine;
  std::vector<Completion>& run = opts.io_threads == 1 ? completions_running : mine;
  {
    std::lock_guard lk(completions_mu);
    run.swap(completions);
  }
  // With one I/O thread the answers of a batch are all written before any of their connections
  // reads again. A read started at once after its write finds nothing (the client has not had the
  // answer yet) and costs a failed recv() before Asio waits for the socket; started after the
  // whole run, many clients' next requests are already there and are read at the first try
  // (perf stat, one-word load, 1,000 connections: 1.95-1.99 recv() per answer before, 1.25 after;
  // all system calls 3.03-3.05 -> 2.28-2.34 per answer).
  const bool one_thread = opts.io_threads == 1;
  if (one_thread) deferring_reads = true;  // only ever set with one I/O thread (no data race)
  for (auto& c : run) {
    if (opts.io_threads == 1) {
      c.session->send(c.make());
    } else {
      auto ex = c.session->executor();  // before the handler takes the session
      net::post(ex, [s = std::move(c.session), make = std::move(c.make)] { s->send(make()); });
    }
  }
  run.clear();
  if (!one_thread) return;
  deferring_reads = false;
  // The next reads of the connections answered now. A read started right after its answer mostly
  // finds nothing yet (the client has not had the answer): Asio's first recv() fails and the read
  // waits for epoll, one system call lost per request (0.3-0.46 of them at 1,000 connections,
  // each ~1.5 us here: system calls are costly in this VM). Under load, when this run answered
  // many connections and the batcher still holds requests (so another run is sure to come, within
  // one batch search), their reads start at that next run instead, when the clients' next
  // requests are there; the reads deferred by the previous run start now. At light load (a short
  // run, or nothing left in the batcher) they start at once, as before.
  std::vector<std::shared_ptr<Session>> readers, previous;
  readers.swap(reads_after_completions);
  previous.swap(reads_at_next_run);
  for (auto& s : previous) s->resume_reading();
  previous.clear();
  if (readers.size() >= kDeferReadsFrom && service.batch_pending() > 0 && !draining.load()) {
    reads_at_next_run.swap(readers);
    deferred_runs.fetch_add(1, std::memory_order_relaxed);
  } else {
    for (auto& s : readers) s->resume_reading();
    readers.clear();
  }
  // Keep the vectors' capacity (a run of hundreds of answers each time).
  if (reads_after_completions.empty()) reads_after_completions.swap(readers);
  if (reads_at_next_run.empty()) reads_at_next_run.swap(previous);
}

void Server::Impl::sweep() {
  const int64_t now = ticks(Clock::now());
  std::vector<std::shared_ptr<Session>> late;
  {
    std::lock_guard lk(sessions_mu);
    for (auto& [p, w] : sessions)
      if (p->expired(now))
        if (auto s = w.lock()) late.push_back(std::move(s));
  }
  for (auto& s : late) net::post(s->executor(), [s] { s->on_expired(); });
  sweep_timer.expires_after(kSweepPeriod);
  sweep_timer.async_wait([this](beast::error_code ec) {
    if (!ec) sweep();
  });
}

void Server::Impl::listen() {
  beast::error_code ec;
  tcp::endpoint ep;
  const auto addr = net::ip::make_address(opts.host == "localhost" ? "127.0.0.1" : opts.host, ec);
  if (ec) {
    tcp::resolver r(ioc);
    auto res = r.resolve(opts.host, std::to_string(opts.port), ec);
    if (ec || res.empty()) throw Error("cannot listen on " + opts.host + ": not an address or a known host name");
    ep = res.begin()->endpoint();
  } else {
    ep = tcp::endpoint(addr, opts.port);
  }
  const std::string where = fmt::format("{}:{}", opts.host, opts.port);
  if (acceptor.open(ep.protocol(), ec); ec) throw Error("cannot listen on " + where + ": " + ec.message());
  acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (acceptor.bind(ep, ec); ec) throw Error("cannot listen on " + where + ": " + ec.message());
  if (acceptor.listen(net::socket_base::max_listen_connections, ec); ec)
    throw Error("cannot listen on " + where + ": " + ec.message());
  port = acceptor.local_endpoint(ec).port();
}

void Server::Impl::accept() {
  acceptor.async_accept(connection_executor(), [this](beast::error_code ec, tcp::socket s) {
    if (!acceptor.is_open() || draining.load()) return;
    if (ec) {
      // Out of file descriptors and the like: pause, then accept again (never spin, never stop).
      log("accept failed: " + ec.message() + " (retrying in 50 ms)");
      accept_retry.expires_after(std::chrono::milliseconds(50));
      accept_retry.async_wait([this](beast::error_code e) {
        if (!e) accept();
      });
      return;
    }
    std::make_shared<Session>(std::move(s), *this)->start();
    accept();
  });
}

void Server::Impl::wait_signal() {
  signals.async_wait([this](beast::error_code ec, int sig) {
    if (ec) return;
    if (sig == SIGHUP) {
      log("SIGHUP: reloading the index");
      service.reload_async([this](const std::string& err) {
        if (err.empty())
          log(fmt::format("reloaded: generation {}, {} words", service.loaded()->generation,
                          service.loaded()->engine->index().size()));
        else
          log("reload failed, the previous index stays in service: " + err);
      });
    } else if (draining.load()) {
      log("second stop signal: stopping now");
      forced = true;
      finish();
      return;
    } else {
      log(fmt::format("{}: draining (no new connections; answering the {} requests in flight)",
                      sig == SIGTERM ? "SIGTERM" : "SIGINT", service.in_flight()));
      drain();
    }
    wait_signal();
  });
}

void Server::Impl::drain() {
  if (draining.exchange(true)) return;
  drain_deadline = Clock::now() + std::chrono::seconds(opts.drain_timeout_s);
  net::post(ioc, [this] {
    beast::error_code ec;
    acceptor.close(ec);
    accept_retry.cancel();
    service.start_draining();
    std::vector<std::shared_ptr<Session>> live;
    {
      std::lock_guard lk(sessions_mu);
      for (auto& [p, w] : sessions)
        if (auto s = w.lock()) live.push_back(std::move(s));
    }
    for (auto& s : live) net::post(s->executor(), [s] { s->close_if_idle(); });
    check_drained();
  });
}

void Server::Impl::check_drained() {
  bool empty;
  {
    std::lock_guard lk(sessions_mu);
    empty = sessions.empty();
  }
  if (empty && service.in_flight() == 0) {
    log("drained: every request answered");
    return finish();
  }
  if (Clock::now() > drain_deadline) {
    log(fmt::format("drain timeout ({} s): stopping with {} requests unanswered", opts.drain_timeout_s,
                    service.in_flight()));
    forced = true;
    return finish();
  }
  drain_timer.expires_after(std::chrono::milliseconds(5));
  drain_timer.async_wait([this](beast::error_code ec) {
    if (!ec) check_drained();
  });
}

void Server::Impl::finish() {
  if (finished.exchange(true)) return;
  beast::error_code ec;
  signals.cancel(ec);
  drain_timer.cancel();
  accept_retry.cancel();
  sweep_timer.cancel();
  acceptor.close(ec);
  ioc.stop();
}

// ---------------------------------------------------------------------------------------------

Server::Server(ServerOptions opts, Service::Loader load) {
  if (!is_loopback_host(opts.host) && opts.token.empty() && !opts.no_auth)
    throw Error("--host " + opts.host +
                " is not a loopback address: give --token-file PATH (clients send 'Authorization: Bearer "
                "TOKEN') or --no-auth to serve without one");
  if (opts.io_threads < 1) throw Error("--io-threads must be at least 1");
  impl_ = std::make_unique<Impl>(std::move(opts), std::move(load));
  impl_->listen();
  if (impl_->opts.handle_signals) {
    impl_->signals.add(SIGTERM);
    impl_->signals.add(SIGINT);
    impl_->signals.add(SIGHUP);
    impl_->wait_signal();
  }
  impl_->accept();
  impl_->sweep();
}

Server::~Server() {
  if (!impl_) return;
  if (!impl_->threads.empty()) {
    drain();
    wait();
  }
  impl_->service.stop();
}

uint16_t Server::port() const { return impl_->port; }

std::string Server::url() const {
  const std::string& h = impl_->opts.host;
  return fmt::format("http://{}:{}", h.find(':') != std::string::npos ? "[" + h + "]" : h, port());
}

void Server::start() {
  const int n = impl_->opts.io_threads;
  for (int i = 0; i < n; ++i) {
    impl_->threads.emplace_back([this] { impl_->ioc.run(); });
    pthread_setname_np(impl_->threads.back().native_handle(), "igla-io");  // as top -H and perf show it
  }
}

bool Server::wait() {
  for (auto& t : impl_->threads)
    if (t.joinable()) t.join();
  impl_->threads.clear();
  impl_->service.stop();  // answers whatever is still queued (after a forced stop nobody reads it)
  return !impl_->forced.load();
}

void Server::drain() { impl_->drain(); }

Service& Server::service() { return impl_->service; }

uint64_t Server::deferred_read_runs() const { return impl_->deferred_runs.load(std::memory_order_relaxed); }

}  // namespace igla::server
