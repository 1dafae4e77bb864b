// A blocking HTTP/1.1 client for the server tests (Boost.Beast): one keep-alive connection.
#pragma once

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace igla::testing_util {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;

struct HttpReply {
  int status = 0;
  std::string body;
  http::fields headers;
  bool keep_alive = true;
  nlohmann::json json() const { return nlohmann::json::parse(body); }
};

class HttpClient {
 public:
  explicit HttpClient(uint16_t port) : stream_(ioc_) {
    stream_.connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  }

  HttpReply request(http::verb verb, const std::string& target, const std::string& body = "",
                    const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, "127.0.0.1");
    if (!body.empty()) req.set(http::field::content_type, "application/json");
    for (auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    req.prepare_payload();
    http::write(stream_, req);
    return read();
  }
  HttpReply post(const std::string& target, const std::string& body,
                 const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    return request(http::verb::post, target, body, headers);
  }
  HttpReply post(const std::string& target, const char* body) { return post(target, std::string(body)); }
  HttpReply post(const std::string& target, const nlohmann::json& body) { return post(target, body.dump()); }
  HttpReply get(const std::string& target, const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    return request(http::verb::get, target, "", headers);
  }

  // Sends bytes as they are and reads one response.
  HttpReply raw(const std::string& bytes) {
    net::write(stream_.socket(), net::buffer(bytes));
    return read();
  }
  void send_raw(const std::string& bytes) { net::write(stream_.socket(), net::buffer(bytes)); }
  // Reads up to and including "\r\n\r\n" (a 100 Continue, say).
  std::string read_head() {
    std::string s;
    net::read_until(stream_.socket(), net::dynamic_buffer(s), "\r\n\r\n");
    return s;
  }

  HttpReply read() {
    http::response<http::string_body> res;
    http::read(stream_, buf_, res);
    HttpReply r;
    r.status = res.result_int();
    r.body = res.body();
    r.keep_alive = res.keep_alive();
    for (auto& f : res) r.headers.set(f.name_string(), f.value());
    return r;
  }
  // Whether the server has closed the connection (a read gets end of stream).
  bool closed_by_peer() {
    beast::error_code ec;
    char c;
    stream_.socket().read_some(net::buffer(&c, 1), ec);
    return ec == net::error::eof || ec == net::error::connection_reset;
  }

 private:
  net::io_context ioc_;
  beast::tcp_stream stream_;
  beast::flat_buffer buf_;
};

}  // namespace igla::testing_util
