// libFuzzer target: raw bytes -> the server's request path, without sockets: Beast's HTTP parser
// with the server's limits (what each connection runs), then Service::handle (routes, auth,
// JSON fields, word lookup, the batcher, the Engine, the JSON answer).
//
// Checks: no crash / sanitizer report, exactly one reply per request, a status in 200-599, and a
// body that is valid JSON wherever the response says application/json.
// Build: cmake -DIGLA_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ (tests/fuzz/server.cmake); run:
//   build/fuzz_server_request tests/fuzz/corpus/server_request -max_total_time=60
#include <boost/beast/http.hpp>
#include <cstdint>
#include <cstdlib>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>

#include "igla/engine.hpp"
#include "igla/index.hpp"
#include "service.hpp"

namespace {

namespace http = boost::beast::http;
namespace net = boost::asio;
using igla::server::Response;
using igla::server::Service;

// Words "w0".."w499", 16 dims, int8 rerank rows: small enough to search per input.
std::shared_ptr<const igla::Index> fuzz_index() {
  igla::FloatVectors v;
  v.dims = 16;
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (int i = 0; i < 500; ++i) v.words.push_back("w" + std::to_string(i));
  for (size_t i = 0; i < 500 * 16; ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    v.data.push_back(static_cast<float>(static_cast<int64_t>(x % 2001) - 1000) / 1000.0f);
  }
  igla::QuantParams q;
  q.rerank = igla::Rerank::Int8;
  return std::make_shared<const igla::Index>(igla::Index::build(v, q, true));
}

Service& service() {
  static Service* s = [] {
    igla::server::ServerOptions o;
    o.max_wait_us = 0;
    o.max_body = 64 * 1024;
    o.max_queue = 4096;
    auto ix = fuzz_index();
    return new Service(o, [ix] { return std::make_shared<const igla::Engine>(ix); });
  }();
  return *s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Service& svc = service();
  http::request_parser<http::string_body> parser;
  parser.body_limit(svc.options().max_body);
  parser.header_limit(static_cast<uint32_t>(svc.options().max_header));
  parser.eager(true);
  boost::beast::error_code ec;
  net::const_buffer in(data, size);
  while (in.size() > 0 && !parser.is_done()) {
    const size_t used = parser.put(in, ec);
    if (ec == http::error::need_more) {
      ec = {};
      break;
    }
    if (ec || used == 0) break;
    in += used;
  }
  if (!ec && !parser.is_done()) {
    if (!parser.got_some()) return 0;  // nothing read: the connection just closes
    parser.put_eof(ec);                // the client closed: the message must be complete
  }
  Response r;
  if (ec) {
    if (ec == http::error::partial_message) return 0;  // the connection just closes
    r = svc.malformed(ec);
  } else {
    std::promise<Response> got;  // a second reply throws future_error: a crash the fuzzer reports
    svc.handle(parser.release(), igla::server::Peer{.loopback = (size & 1) == 0},
               [&got](Service::ResponseMaker make) { got.set_value(make()); });
    r = got.get_future().get();
  }
  const int status = r.result_int();
  if (status < 200 || status > 599) std::abort();
  if (r[http::field::content_type] == "application/json" && !nlohmann::json::accept(r.body())) std::abort();
  return 0;
}
