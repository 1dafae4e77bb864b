#include "server.hpp"

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
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "igla/error.hpp"

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
const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
}  // namespace

class Session;

struct Server::Impl {
  ServerOptions opts;
  Service service;
  std::mutex sessions_mu;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;
  std::atomic<bool> draining{false}, forced{false}, finished{false};
  std::vector<std::thread> threads;
  // Declared after what sessions touch: destroying the io_context destroys pending handlers
  // (and with them sessions), which deregister themselves.
  net::io_context ioc;
  tcp::acceptor acceptor{ioc};
  net::signal_set signals{ioc};
  net::steady_timer drain_timer{ioc}, accept_retry{ioc};
  Clock::time_point drain_deadline;
  uint16_t port = 0;  // bound (kept: the acceptor closes when draining)

  Impl(ServerOptions o, Service::Loader load)
      : opts(std::move(o)), service(opts, std::move(load)), ioc(std::max(1, opts.io_threads)) {}

  void log(const std::string& line) {
    if (opts.log) opts.log(line);
  }
  void listen();
  void accept();
  void wait_signal();
  void drain();
  void check_drained();
  void finish();
};

// One client connection; every handler runs on its strand.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& s, Server::Impl& srv) : stream_(std::move(s)), srv_(srv) {
    beast::error_code ec;
    const auto ep = stream_.socket().remote_endpoint(ec);
    peer_.loopback = !ec && is_loopback_address(ep.address());
    stream_.socket().set_option(tcp::no_delay(true), ec);
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
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read_next(); });
  }

  // Draining: a connection waiting for its next request is closed (nothing of a request read).
  void close_if_idle() {
    if (waiting_ && buffer_.size() == 0) stream_.socket().cancel();
  }
  net::any_io_executor executor() { return stream_.get_executor(); }

 private:
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Server::Impl& srv_;
  Peer peer_;
  bool waiting_ = false, keep_alive_ = true;
  bool linger_ = false;  // after an error answer: read and drop what the client still sends, then close
  std::array<char, 4096> scratch_{};
  unsigned version_ = 11;
  std::shared_ptr<Response> res_;

  void read_next() {
    if (srv_.draining.load() && buffer_.size() == 0) return close();
    parser_.emplace();
    parser_->body_limit(srv_.opts.max_body);
    parser_->header_limit(static_cast<uint32_t>(srv_.opts.max_header));
    waiting_ = true;
    stream_.expires_after(std::chrono::seconds(srv_.opts.idle_timeout_s));
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    waiting_ = false;
    if (ec) return on_error(ec);
    const auto& req = parser_->get();
    version_ = req.version();
    if (beast::iequals(req[http::field::expect], "100-continue") && version_ >= 11) {
      stream_.expires_after(kWriteTimeout);
      net::async_write(stream_, net::buffer(kContinue), [self = shared_from_this()](beast::error_code e, size_t) {
        if (e) return self->close();
        self->read_body();
      });
      return;
    }
    read_body();
  }

  void read_body() {
    stream_.expires_after(kBodyTimeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec) return on_error(ec);
    Request req = parser_->release();
    keep_alive_ = req.keep_alive();
    stream_.expires_never();  // the batcher answers within the request's deadline
    srv_.service.handle(std::move(req), peer_, [self = shared_from_this()](Service::ResponseMaker make) {
      net::post(self->stream_.get_executor(), [self, make = std::move(make)] { self->send(make()); });
    });
  }

  void on_error(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == net::error::operation_aborted || ec == beast::error::timeout ||
        ec == net::error::eof || ec == net::error::connection_reset || ec == http::error::partial_message)
      return close();
    // Not HTTP, or over a limit: answer why and close (the stream cannot be resynchronized).
    keep_alive_ = false;
    linger_ = true;
    Response r = srv_.service.malformed(ec);
    srv_.service.metrics().request("malformed", r.result_int(), 0);
    send(std::move(r));
  }

  void send(Response&& r) {
    r.version(version_ == 10 ? 10 : 11);
    r.keep_alive(keep_alive_ && !srv_.draining.load());
    keep_alive_ = r.keep_alive();
    r.prepare_payload();
    res_ = std::make_shared<Response>(std::move(r));
    stream_.expires_after(kWriteTimeout);
    http::async_write(stream_, *res_, [self = shared_from_this()](beast::error_code ec, size_t) {
      self->res_.reset();
      if (ec) return self->close();
      if (!self->keep_alive_) return self->linger_ ? self->linger_close() : self->close();
      self->read_next();
    });
  }

  // Closing a socket with unread bytes sends a reset, which can destroy the error answer before
  // the client reads it: shut our side, drop what arrives until the client closes (2 s at most).
  void linger_close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.expires_after(std::chrono::seconds(2));  // for the whole loop
    drop_until_closed();
  }
  void drop_until_closed() {
    stream_.async_read_some(net::buffer(scratch_), [self = shared_from_this()](beast::error_code e, size_t) {
      if (e) return self->stream_.close();
      self->drop_until_closed();
    });
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.close();
  }
};

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
  acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket s) {
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
  for (int i = 0; i < n; ++i) impl_->threads.emplace_back([this] { impl_->ioc.run(); });
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

}  // namespace igla::server
