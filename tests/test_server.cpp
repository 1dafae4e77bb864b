// igla serve: a real server on an ephemeral port, real HTTP requests to every route, answers
// compared with the Engine's (and the CLI's), every error case, concurrency, drain and reload.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <cmath>
#include <functional>
#include <limits>
#include <future>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "auth.hpp"
#include "igla/engine.hpp"
#include "igla/index.hpp"
#include "json_write.hpp"
#include "nearest_reader.hpp"
#include "server.hpp"
#include "server_client.hpp"
#include "test_util.hpp"

namespace {

using igla::Engine;
using igla::Index;
using igla::SearchParams;
using igla::WordHit;
using igla::server::Server;
using igla::server::ServerOptions;
using igla::testing_util::HttpClient;
using igla::testing_util::HttpReply;
using igla::testing_util::TempDir;
using json = nlohmann::json;
namespace http = boost::beast::http;

constexpr size_t kWords = 3000;
constexpr uint32_t kDims = 48;

// A small index with int8 rerank rows (so candidates matter), saved for the loader and the CLI.
void save_index(const std::string& path, size_t n, uint64_t seed) {
  igla::QuantParams q;
  q.rerank = igla::Rerank::Int8;
  Index::build(igla::testing_util::random_vectors(n, kDims, seed), q, true).save(path);
}

std::shared_ptr<const Engine> engine_at(const std::string& path) {
  return std::make_shared<const Engine>(igla::open_index(path));
}

// (Appended, not "w" + ...: GCC 12 warns -Wrestrict falsely on that once inlined.)
std::string word(size_t i) {
  std::string w = "w";
  w += std::to_string(i);
  return w;
}

void write_token(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// A gauge or counter's value in /metrics text (-1 when absent).
long metric(const std::string& text, const std::string& name) {
  const auto at = text.find("\n" + name + " ");
  return at == std::string::npos ? -1 : std::stol(text.substr(at + name.size() + 2));
}

// The server's hits equal the engine's: same words, same float scores, same order.
void expect_same_hits(const json& hits, const std::vector<WordHit>& want, const std::string& what) {
  ASSERT_TRUE(hits.is_array()) << what;
  ASSERT_EQ(hits.size(), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(hits[i]["word"].get<std::string>(), want[i].word) << what << " hit " << i;
    EXPECT_EQ(static_cast<float>(hits[i]["score"].get<double>()), want[i].score) << what << " hit " << i;
  }
}

class ServerTest : public ::testing::Test {
 protected:
  TempDir dir;
  std::string path;
  std::shared_ptr<const Engine> engine;  // the reference answers
  std::unique_ptr<Server> srv;

  void SetUp() override {
    path = dir.file("t.igla");
    save_index(path, kWords, 7);
    engine = engine_at(path);
  }
  void TearDown() override { srv.reset(); }

  void start(ServerOptions o = {}) {
    o.port = 0;
    srv = std::make_unique<Server>(o, [p = path] { return engine_at(p); });
    srv->start();
  }
  uint16_t port() const { return srv->port(); }
  SearchParams params(size_t k = 10, size_t candidates = igla::kDefaultCandidates) const {
    SearchParams p;
    p.k = k;
    p.candidates = candidates;
    return p;
  }
};

// ---- every route, answers equal the engine's

TEST_F(ServerTest, NearestWordsAndVectorsEqualTheEngine) {
  start();
  HttpClient c(port());
  HttpReply r = c.post("/v1/nearest", json{{"words", {"w1", "w42", "w2999"}}, {"k", 7}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers[http::field::content_type], "application/json");
  json j = r.json();
  ASSERT_EQ(j["results"].size(), 3u);
  const char* words[] = {"w1", "w42", "w2999"};
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(j["results"][i]["query"], words[i]);
    expect_same_hits(j["results"][i]["hits"], engine->nearest(words[i], params(7)), words[i]);
  }
  // Ternary scores only (candidates 0) differ from the reranked ones and equal the engine's.
  r = c.post("/v1/nearest", json{{"words", {"w5"}}, {"k", 5}, {"candidates", 0}});
  ASSERT_EQ(r.status, 200) << r.body;
  expect_same_hits(r.json()["results"][0]["hits"], engine->nearest("w5", params(5, 0)), "w5 ternary");

  // A float vector: the 10th word's own vector.
  const auto v = igla::testing_util::random_vectors(kWords, kDims, 7);
  std::vector<float> x(v.data.begin() + 10 * kDims, v.data.begin() + 11 * kDims);
  r = c.post("/v1/nearest", json{{"vectors", {x}}, {"k", 4}});
  ASSERT_EQ(r.status, 200) << r.body;
  j = r.json();
  EXPECT_EQ(j["results"][0]["query"], 0);
  expect_same_hits(j["results"][0]["hits"], engine->nearest_vector(x, params(4)), "vector");
  EXPECT_EQ(j["results"][0]["hits"][0]["word"], "w10");
}

TEST_F(ServerTest, AnalogyMostSimilarSimilarityDoesntMatchEqualTheEngine) {
  start();
  HttpClient c(port());
  for (const char* mode : {"add", "mul", "clamp"}) {
    HttpReply r = c.post("/v1/analogy", json{{"queries", {{"w1", "w2", "w3"}, {"w10", "w20", "w30"}}},
                                             {"k", 5}, {"mode", mode}});
    ASSERT_EQ(r.status, 200) << r.body;
    const json j = r.json();
    const auto m = igla::parse_analogy_mode(mode);
    EXPECT_EQ(j["results"][0]["query"], json({"w1", "w2", "w3"}));
    expect_same_hits(j["results"][0]["hits"], engine->analogy("w1", "w2", "w3", m, params(5)), mode);
    expect_same_hits(j["results"][1]["hits"], engine->analogy("w10", "w20", "w30", m, params(5)), mode);
  }
  HttpReply r = c.post("/v1/most_similar", json{{"positive", {"w4", "w5"}}, {"negative", {"w6"}}, {"k", 6}});
  ASSERT_EQ(r.status, 200) << r.body;
  const std::vector<std::string> pos{"w4", "w5"}, neg{"w6"};
  expect_same_hits(r.json()["results"][0]["hits"], engine->most_similar(pos, neg, params(6)), "most_similar");
  EXPECT_EQ(r.json()["results"][0]["query"]["negative"], json({"w6"}));

  r = c.post("/v1/similarity", json{{"pairs", json::array({json::array({"w1", "w2"}), json::array({"w3", "w3"})})}});
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(r.json()["scores"].size(), 2u);
  EXPECT_EQ(static_cast<float>(r.json()["scores"][0].get<double>()), engine->similarity("w1", "w2", params()));
  EXPECT_NEAR(r.json()["scores"][1].get<double>(), 1.0, 1e-3);

  const std::vector<std::string> group{"w1", "w2", "w3", "w4"};
  r = c.post("/v1/doesnt_match", json{{"words", group}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["doesnt_match"], engine->doesnt_match(group, params()));
  EXPECT_EQ(group.at(r.json()["index"].get<size_t>()), r.json()["doesnt_match"]);
}

TEST_F(ServerTest, InfoHealthzMetrics) {
  start();
  HttpClient c(port());
  HttpReply r = c.get("/v1/info");
  ASSERT_EQ(r.status, 200) << r.body;
  json j = r.json();
  EXPECT_EQ(j["index"]["words"], kWords);
  EXPECT_EQ(j["index"]["dims"], kDims);
  EXPECT_EQ(j["index"]["path"], path);
  EXPECT_EQ(j["index"]["rerank"], "int8");
  EXPECT_EQ(j["generation"], 1);
  EXPECT_EQ(j["server"]["max_batch"], 4096);

  // The index part is the description `igla info --json` prints (one function builds both): the
  // same members with the same values, less each side's own (CLI: open time, checksums, what was
  // verified; server: searcher, load time, --lower).
  auto [rc, out] = igla::testing_util::run_shell(std::string(IGLA_CLI_PATH) + " info --json " + path);
  ASSERT_EQ(rc, 0) << out;
  json cli = json::parse(out);
  json served = j["index"];
  for (const char* k : {"checksums_ok", "verified", "open_ms"}) EXPECT_EQ(cli.erase(k), 1u) << k;
  for (const char* k : {"searcher", "load_seconds", "lower"}) EXPECT_EQ(served.erase(k), 1u) << k;
  EXPECT_EQ(served, cli);
  EXPECT_EQ(served["sections"].size(), 0u + cli["sections"].size());
  EXPECT_GT(served["sections"].size(), 0u);

  r = c.get("/healthz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.json()["status"], "ok");

  ASSERT_EQ(c.post("/v1/nearest", json{{"words", {"w1", "w2"}}}).status, 200);
  ASSERT_EQ(c.post("/v1/nearest", json{{"words", {"nope"}}}).status, 404);
  r = c.get("/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.headers[http::field::content_type].find("text/plain"), std::string::npos);
  for (const char* want : {"igla_http_requests_total{route=\"/v1/nearest\",status=\"200\"} 1",
                           "igla_http_requests_total{route=\"/v1/nearest\",status=\"404\"} 1",
                           "igla_http_errors_total{route=\"/v1/nearest\",status=\"404\"} 1",
                           "igla_http_request_duration_seconds_bucket{route=\"/v1/nearest\",le=\"+Inf\"} 2",
                           "igla_batch_size_queries_bucket{kind=\"nearest\",le=\"2\"} 1",
                           "igla_batch_size_queries_sum{kind=\"nearest\"} 2", "igla_queue_depth_queries 0",
                           "igla_connections 1", "igla_index_generation 1", "igla_index_words 3000"})
    EXPECT_NE(r.body.find(want), std::string::npos) << want << "\n" << r.body;
}

// ---- errors

// The common /v1/nearest shape is read without a DOM (the fast path); any other shape goes through
// the full JSON path. Both must answer the same requests with the same bytes.
TEST_F(ServerTest, NearestFastAndFullPathsAnswerAlike) {
  start();
  HttpClient c(port());
  struct Pair {
    std::string fast, full;  // the same request: the first in the fast shape, the second not
  } pairs[] = {
      {R"({"words":["w1","w42"],"k":7})", R"({"k":7,"words":["w1","w42"],"candidates":null})"},
      {R"({"words":["w3"],"k":3,"candidates":0,"timeout_ms":5000})",
       R"({"timeout_ms":5000,"candidates":0,"k":3,"words":["w3"],"timeout_ms":4000})"},
      {R"( { "words" : [ "w\u0031" ] } )", R"({"words":["w1"],"timeout_ms":null})"},
      {R"({"words":["w7"]})", R"({"words":["w2999"],"words":["w7"]})"},  // a repeated field: the last counts
  };
  for (auto& p : pairs) {
    const HttpReply a = c.post("/v1/nearest", p.fast), b = c.post("/v1/nearest", p.full);
    ASSERT_EQ(a.status, 200) << p.fast << " -> " << a.body;
    ASSERT_EQ(b.status, 200) << p.full << " -> " << b.body;
    EXPECT_EQ(a.body, b.body) << p.fast << " vs " << p.full;
  }
  // The fast shape's answers are the engine's.
  const HttpReply r = c.post("/v1/nearest", std::string(R"({"words":["w5","w6"],"k":4,"candidates":20})"));
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = r.json();
  EXPECT_EQ(j["results"][1]["query"], "w6");
  expect_same_hits(j["results"][0]["hits"], engine->nearest("w5", params(4, 20)), "w5");
  expect_same_hits(j["results"][1]["hits"], engine->nearest("w6", params(4, 20)), "w6");
  // Errors in the fast shape are the full path's: unknown word, k over the limit, trailing bytes.
  EXPECT_EQ(c.post("/v1/nearest", std::string(R"({"words":["w1","nosuchword"]})")).status, 404);
  EXPECT_EQ(c.post("/v1/nearest", std::string(R"({"words":["w1"],"k":100000})")).status, 400);
  EXPECT_EQ(c.post("/v1/nearest", std::string(R"({"words":["w1"]} x)")).status, 400);
  EXPECT_EQ(c.post("/v1/nearest", std::string(R"({"words":[]})")).status, 200);
}

TEST_F(ServerTest, BadRequestsNameTheField) {
  ServerOptions o;
  o.max_k = 50;
  o.max_body = 4096;
  start(o);
  HttpClient c(port());
  struct Case {
    const char* route;
    std::string body;
    int status;
    const char* field;  // "" when none
    const char* says;
  } cases[] = {
      {"/v1/nearest", "{\"words\": [\"w1\"", 400, "", "not valid JSON"},
      {"/v1/nearest", "", 400, "", "no body"},
      {"/v1/nearest", "[1, 2]", 400, "", "JSON object"},
      {"/v1/nearest", R"({"words": ["w1"], "k": "ten"})", 400, "k", "'k' must be an integer"},
      {"/v1/nearest", R"({"words": ["w1"], "k": 2.5})", 400, "k", "'k' must be an integer"},
      {"/v1/nearest", R"({"words": ["w1"], "k": 0})", 400, "k", "at least 1"},
      {"/v1/nearest", R"({"words": ["w1"], "k": -3})", 400, "k", "at least 1"},
      {"/v1/nearest", R"({"words": ["w1"], "k": 51})", 400, "k", "over the limit 50 (--max-k)"},
      {"/v1/nearest", R"({"words": ["w1"], "candidates": -1})", 400, "candidates", "at least 0"},
      {"/v1/nearest", R"({"words": ["w1"], "topk": 3})", 400, "topk", "unknown field 'topk'"},
      {"/v1/nearest", R"({"k": 3})", 400, "words", "either 'words' or 'vectors'"},
      {"/v1/nearest", R"({"words": "w1"})", 400, "words", "'words' must be an array"},
      {"/v1/nearest", R"({"words": ["w1", 7]})", 400, "words[1]", "'words[1]' must be a string"},
      {"/v1/nearest", R"({"vectors": [[1, 2]]})", 400, "vectors[0]", "48 numbers"},
      {"/v1/nearest", R"({"words": ["w1"], "timeout_ms": 0})", 400, "timeout_ms", "at least 1"},
      {"/v1/analogy", R"({"queries": [["w1", "w2"]]})", 400, "queries[0]", "3 words"},
      {"/v1/analogy", R"({"queries": [["w1", "w2", "w3"]], "mode": "sub"})", 400, "mode", "'mode' must be"},
      {"/v1/most_similar", R"({"positive": []})", 400, "positive", "at least one word"},
      {"/v1/similarity", R"({"pairs": [["w1"]]})", 400, "pairs[0]", "2 words"},
      {"/v1/doesnt_match", R"({"words": ["w1"]})", 400, "words", "at least 2 words"},
  };
  for (auto& t : cases) {
    const HttpReply r = c.post(t.route, t.body);
    EXPECT_EQ(r.status, t.status) << t.route << " " << t.body << " -> " << r.body;
    const json j = json::parse(r.body);
    EXPECT_EQ(j["error"]["status"], t.status) << r.body;
    EXPECT_NE(j["error"]["message"].get<std::string>().find(t.says), std::string::npos) << t.body << " -> " << r.body;
    if (*t.field) {
      EXPECT_EQ(j["error"].value("field", ""), t.field) << t.body << " -> " << r.body;
    }
  }
  // The connection survived every 400: one more good request on it.
  EXPECT_EQ(c.post("/v1/nearest", json{{"words", {"w1"}}}).status, 200);
}

TEST_F(ServerTest, UnknownWordIs404WithClosestWords) {
  start();
  HttpClient c(port());
  HttpReply r = c.post("/v1/nearest", json{{"words", {"w1", "w12x"}}});
  ASSERT_EQ(r.status, 404) << r.body;
  json e = r.json()["error"];
  EXPECT_EQ(e["word"], "w12x");
  EXPECT_EQ(e["field"], "words[1]");
  ASSERT_FALSE(e["closest"].empty()) << r.body;
  EXPECT_EQ(e["closest"][0].get<std::string>().substr(0, 3), "w12") << r.body;
  r = c.post("/v1/analogy", json{{"queries", {{"w1", "w2", "zzz"}}}});
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.json()["error"]["field"], "queries[0][2]");
  // A very long unknown word: 404 without the (linear in its length) suggestion search.
  r = c.post("/v1/similarity", json{{"pairs", json::array({json::array({"w1", std::string(5000, 'x')})})}});
  EXPECT_EQ(r.status, 404);
  EXPECT_TRUE(r.json()["error"]["closest"].empty());
}

TEST_F(ServerTest, MethodRouteBodyAndHeaderLimits) {
  ServerOptions o;
  o.max_body = 1000;
  start(o);
  {
    HttpClient c(port());
    EXPECT_EQ(c.get("/v1/nearest").status, 405);
    EXPECT_EQ(c.post("/v1/info", "{}").status, 405);
    HttpReply r = c.get("/v2/nearest");
    EXPECT_EQ(r.status, 404);
    EXPECT_NE(r.json()["error"]["message"].get<std::string>().find("no route"), std::string::npos);
    EXPECT_EQ(c.get("/healthz?probe=1").status, 200);  // a query string is not part of the route
  }
  {
    HttpClient c(port());
    json words = json::array();
    for (int i = 0; i < 200; ++i) words.push_back("w1");
    HttpReply r = c.post("/v1/nearest", json{{"words", words}});
    EXPECT_EQ(r.status, 413) << r.body;
    EXPECT_NE(r.body.find("--max-body"), std::string::npos);
    EXPECT_FALSE(r.keep_alive);
  }
  {
    HttpClient c(port());
    HttpReply r = c.get("/healthz", {{"X-Big", std::string(20000, 'a')}});
    EXPECT_EQ(r.status, 431) << r.body;
  }
  for (const char* junk : {"GARBAGE\r\n\r\n", "GET / HTTP/9.9\r\n\r\n", "\x01\x02\x03\r\n\r\n",
                           "POST /v1/nearest HTTP/1.1\r\nContent-Length: abc\r\n\r\n"}) {
    HttpClient c(port());
    HttpReply r = c.raw(junk);
    EXPECT_EQ(r.status, 400) << junk;
    EXPECT_TRUE(c.closed_by_peer());
  }
  HttpClient c(port());
  EXPECT_EQ(c.get("/healthz").status, 200) << "the server survives malformed HTTP";
}

TEST_F(ServerTest, PipeliningAndExpectContinue) {
  start();
  HttpClient c(port());
  const std::string body = R"({"words": ["w3"], "k": 2})";
  const std::string req = "POST /v1/nearest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\n\r\n" + body;
  c.send_raw(req + req + "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(c.read().status, 200);
  EXPECT_EQ(c.read().status, 200);
  EXPECT_EQ(c.read().status, 200);
  c.send_raw("POST /v1/nearest HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: " +
             std::to_string(body.size()) + "\r\n\r\n");
  EXPECT_EQ(c.read_head().substr(0, 25), "HTTP/1.1 100 Continue\r\n\r\n");
  c.send_raw(body);
  const HttpReply r = c.read();
  EXPECT_EQ(r.status, 200) << r.body;
  expect_same_hits(r.json()["results"][0]["hits"], engine->nearest("w3", params(2)), "after 100-continue");
}

// One I/O thread (the CLI's default on small machines: connections without strands, answers
// written at once when the socket takes them): an answer larger than the socket's send buffer
// (written in parts), pipelining after it, HTTP/1.0 with and without keep-alive, "Connection:
// close", and an idle connection closed after --idle-timeout-s.
TEST_F(ServerTest, OneIoThreadLargeAnswersHttp10AndIdleTimeout) {
  ServerOptions o;
  o.io_threads = 1;
  o.idle_timeout_s = 1;
  start(o);
  HttpClient c(port());
  std::vector<std::string> words;
  for (size_t i = 0; i < 64; ++i) words.push_back(word(i * 7));
  const HttpReply big = c.post("/v1/nearest", json{{"words", words}, {"k", 1000}});
  ASSERT_EQ(big.status, 200) << big.body.substr(0, 200);
  EXPECT_GT(big.body.size(), size_t{1} << 20) << "the answer should exceed a socket's send buffer";
  const json j = big.json();
  ASSERT_EQ(j["results"].size(), 64u);
  for (size_t q : {size_t{0}, size_t{63}})
    expect_same_hits(j["results"][q]["hits"], engine->nearest(words[q], params(1000)), "large answer " + words[q]);
  const std::string body = R"({"words": ["w5"], "k": 3})";
  const std::string req = "POST /v1/nearest HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) +
                          "\r\n\r\n" + body;
  c.send_raw(req + req);
  for (int i = 0; i < 2; ++i) {
    const HttpReply r = c.read();
    EXPECT_EQ(r.status, 200);
    EXPECT_TRUE(r.keep_alive);
    expect_same_hits(r.json()["results"][0]["hits"], engine->nearest("w5", params(3)), "pipelined");
  }

  HttpClient c10(port());  // HTTP/1.0 closes after one answer unless it asks to keep alive
  c10.send_raw("GET /healthz HTTP/1.0\r\n\r\n");
  HttpReply r = c10.read();
  EXPECT_EQ(r.status, 200);
  EXPECT_FALSE(r.keep_alive);
  EXPECT_TRUE(c10.closed_by_peer());
  HttpClient k10(port());
  for (int i = 0; i < 2; ++i) {
    k10.send_raw("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    r = k10.read();
    EXPECT_EQ(r.status, 200);
    EXPECT_TRUE(r.keep_alive);
    EXPECT_EQ(r.headers[http::field::connection], "keep-alive");
    EXPECT_EQ(r.headers[http::field::content_length], std::to_string(r.body.size()));
  }
  HttpClient close11(port());
  r = close11.get("/healthz", {{"Connection", "close"}});
  EXPECT_EQ(r.status, 200);
  EXPECT_FALSE(r.keep_alive);
  EXPECT_TRUE(close11.closed_by_peer());

  // Idle: closed after 1 s (the deadlines are swept every 250 ms), not before ~1 s.
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(c.closed_by_peer());
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_GT(waited, 0.5);
  EXPECT_LT(waited, 5.0);
  HttpClient after(port());
  EXPECT_EQ(after.get("/healthz").status, 200);
}

TEST_F(ServerTest, FullQueueIs503WithRetryAfterAndTooManyQueriesIs413) {
  ServerOptions o;
  o.max_queue = 4;
  o.max_wait_us = 300000;  // the first request waits 0.3 s for company: the queue stays occupied
  start(o);
  auto first = std::async(std::launch::async, [&] {
    HttpClient c(port());
    return c.post("/v1/nearest", json{{"words", {"w1", "w2", "w3"}}});
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  HttpClient c(port());
  HttpReply r = c.post("/v1/nearest", json{{"words", {"w4", "w5"}}});
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(r.headers[http::field::retry_after], "1");
  r = c.post("/v1/nearest", json{{"words", {"w1", "w2", "w3", "w4", "w5"}}});
  EXPECT_EQ(r.status, 413) << r.body;
  EXPECT_NE(r.body.find("--max-queue"), std::string::npos);
  EXPECT_EQ(first.get().status, 200);
}

TEST_F(ServerTest, PastItsDeadlineIs504) {
  ServerOptions o;
  o.max_wait_us = 200000;  // 0.2 s in the batching window, past the request's 5 ms
  start(o);
  HttpClient c(port());
  HttpReply r = c.post("/v1/nearest", json{{"words", {"w1"}}, {"timeout_ms", 5}});
  EXPECT_EQ(r.status, 504) << r.body;
  EXPECT_NE(r.body.find("deadline"), std::string::npos);
  r = c.post("/v1/nearest", json{{"words", {"w1"}}, {"timeout_ms", 999999}});
  EXPECT_EQ(r.status, 400) << "over --timeout-ms";
}

TEST_F(ServerTest, TokenAuth) {
  ServerOptions o;
  o.token = "s3cret-token-0123456789";
  start(o);
  HttpClient c(port());
  HttpReply r = c.post("/v1/nearest", json{{"words", {"w1"}}}.dump());
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.headers[http::field::www_authenticate], "Bearer");
  EXPECT_EQ(c.post("/v1/nearest", json{{"words", {"w1"}}}.dump(), {{"Authorization", "Bearer wrong"}}).status, 401);
  EXPECT_EQ(c.post("/v1/nearest", json{{"words", {"w1"}}}.dump(), {{"Authorization", "Bearer s3cret-token-012345678"}})
                .status,
            401);
  EXPECT_EQ(c.post("/v1/nearest", json{{"words", {"w1"}}}.dump(), {{"Authorization", "bearer " + o.token}}).status,
            200);
  EXPECT_EQ(c.get("/metrics").status, 401);
  EXPECT_EQ(c.get("/metrics", {{"Authorization", "Bearer " + o.token}}).status, 200);
  EXPECT_EQ(c.get("/healthz").status, 200) << "probes need no token";

  EXPECT_TRUE(igla::server::constant_time_equal("abc", "abc"));
  EXPECT_FALSE(igla::server::constant_time_equal("abd", "abc"));
  EXPECT_FALSE(igla::server::constant_time_equal("ab", "abc"));
  EXPECT_FALSE(igla::server::constant_time_equal("abcd", "abc"));
  EXPECT_FALSE(igla::server::constant_time_equal("", "abc"));
}

TEST_F(ServerTest, NonLoopbackHostNeedsTokenOrNoAuth) {
  ServerOptions o;
  o.host = "0.0.0.0";
  o.port = 0;
  const std::string err = igla::testing_util::error_of([&] { Server s(o, [p = path] { return engine_at(p); }); });
  EXPECT_NE(err.find("--token-file"), std::string::npos) << err;
  o.no_auth = true;
  EXPECT_NO_THROW({ Server s(o, [p = path] { return engine_at(p); }); });
  EXPECT_TRUE(igla::server::is_loopback_host("127.0.0.1"));
  EXPECT_TRUE(igla::server::is_loopback_host("::1"));
  EXPECT_TRUE(igla::server::is_loopback_host("localhost"));
  EXPECT_FALSE(igla::server::is_loopback_host("0.0.0.0"));
  EXPECT_FALSE(igla::server::is_loopback_host("10.1.2.3"));

  write_token(dir.file("tok"), "  abc123  \nsecond line\n");
  EXPECT_EQ(igla::server::read_token_file(dir.file("tok")), "abc123");
  write_token(dir.file("empty"), "\n");
  EXPECT_NE(igla::testing_util::error_of([&] { igla::server::read_token_file(dir.file("empty")); }).find("empty"),
            std::string::npos);
  EXPECT_NE(igla::testing_util::error_of([&] { igla::server::read_token_file(dir.file("none")); }).find("cannot read"),
            std::string::npos);
}

TEST_F(ServerTest, ReloadIsLoopbackOnly) {
  start();
  igla::server::Service& s = srv->service();
  std::promise<igla::server::Response> got;
  igla::server::Request req{http::verb::post, "/v1/admin/reload", 11};
  s.handle(std::move(req), igla::server::Peer{.loopback = false},
           [&](igla::server::Service::ResponseMaker make) { got.set_value(make()); });
  EXPECT_EQ(got.get_future().get().result_int(), 403);
}

// The server's word table answers every lookup as Index::find does (known words, near misses,
// the empty string), from a table at most half full.
TEST(ServerWordTable, FindsWhatIndexFindFinds) {
  igla::QuantParams q;
  q.rerank = igla::Rerank::Int8;
  const Index ix = Index::build(igla::testing_util::random_vectors(kWords, kDims, 11), q, true);
  const igla::server::WordTable t(ix);
  EXPECT_GE(t.slots(), 2 * ix.size());
  for (size_t id = 0; id < ix.size(); ++id) {
    const std::string_view w = ix.word(id);
    ASSERT_EQ(t.find(w), ix.find(w)) << w;
    ASSERT_TRUE(t.find(w).has_value()) << w;
  }
  for (std::string w : {"", "w", "W1", "w1 ", " w1", "w3000", "w-1", "w01", "\xff"}) EXPECT_EQ(t.find(w), ix.find(w)) << w;
  EXPECT_FALSE(igla::server::WordTable().find("w1").has_value()) << "an empty table finds nothing";
}

// The fast path's reader takes exactly the common /v1/nearest shape and refuses everything else.
TEST(ServerNearestReader, TakesTheCommonShapeOnly) {
  igla::server::NearestReader a;
  ASSERT_TRUE(a.read(R"( {"k": 7, "words": ["w1", "caf\u00e9", ""], "candidates": 0, "timeout_ms": 25} )"));
  EXPECT_EQ(a.words, (std::vector<std::string>{"w1", "caf\xc3\xa9", ""}));
  EXPECT_EQ(a.k, 7u);
  EXPECT_EQ(a.candidates, 0u);
  EXPECT_EQ(a.timeout_ms, 25u);
  igla::server::NearestReader b;
  ASSERT_TRUE(b.read(R"({"words":[]})"));
  EXPECT_TRUE(b.words.empty());
  EXPECT_FALSE(b.k.has_value());
  for (const char* no : {R"({"k":7})", R"({"words":["a"],"topk":3})", R"({"words":["a"],"k":null})",
                         R"({"words":["a"],"k":-1})", R"({"words":["a"],"k":2.0})", R"({"words":["a"],"k":"3"})",
                         R"({"words":["a",7]})", R"({"words":["a",["b"]]})", R"({"words":"a"})",
                         R"({"words":["a"],"words":["b"]})", R"({"words":["a"]} {})", R"([{"words":["a"]}])",
                         R"({"words":["a"],"x":{"words":["b"]}})", R"({"words":["a"])", "", "null",
                         R"({"vectors":[[1,2]]})", "{\"words\":[\"\xff\"]}"}) {
    igla::server::NearestReader r;
    EXPECT_FALSE(r.read(no)) << no;
  }
}

TEST(ServerJson, StringsAreValidJsonWhateverTheBytes) {
  const std::pair<std::string, std::string> cases[] = {
      {"plain", "plain"},
      {"q\"b\\n\nt\tc\x01", "q\"b\\n\nt\tc\x01"},
      {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xb8", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xb8"},
      {"a\xff" "b", "a\xef\xbf\xbd" "b"},                      // a stray byte
      {"x\xc3", "x\xef\xbf\xbd"},                           // a cut sequence
      {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},  // a surrogate, byte by byte
      {"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"},                // overlong
  };
  for (auto& [in, want] : cases) {
    std::string out;
    igla::server::append_json_string(out, in);
    ASSERT_TRUE(json::accept(out)) << out;
    EXPECT_EQ(json::parse(out).get<std::string>(), want) << out;
  }
  std::string f;
  igla::server::append_json_float(f, 0.1f);
  EXPECT_EQ(f, "0.1");
  EXPECT_EQ(static_cast<float>(json::parse(f).get<double>()), 0.1f);
}

// Runs of plain bytes go out together; every escape between them lands in place.
TEST(ServerJson, EscapesBetweenPlainRuns) {
  const std::pair<std::string, std::string> cases[] = {
      {"", "\"\""},
      {"\"", "\"\\\"\""},
      {"ab\"cd\\ef", "\"ab\\\"cd\\\\ef\""},
      {"\n\nx\t", "\"\\n\\nx\\t\""},
      {"\x1f" "z\x7f", "\"\\u001fz\x7f\""},
      {"a\xc3\xa9" "b\xff", "\"a\xc3\xa9" "b\xef\xbf\xbd\""},
  };
  for (auto& [in, want] : cases) {
    std::string out = "prefix:";
    igla::server::append_json_string(out, in);
    EXPECT_EQ(out, "prefix:" + want);
  }
}

// Scores are written by std::to_chars: the shortest text that reads back as the same float, and
// the same text fmt's "{}" (what the server wrote before) gives for every float under 1e7.
TEST(ServerJson, FloatsAreShortestAndReadBackExactly) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> unit(-1.0f, 1.0f), mant(1.0f, 10.0f);
  std::vector<float> values = {0.0f, -0.0f, 1.0f, -1.0f, 0.5f, 1e-7f, 1.17549435e-38f, 3.4e38f, 9999999.0f};
  for (int i = 0; i < 20000; ++i) values.push_back(unit(rng));
  for (int e = -40; e <= 6; ++e)
    for (int i = 0; i < 50; ++i) values.push_back((i % 2 ? -1 : 1) * mant(rng) * std::pow(10.0f, static_cast<float>(e)));
  for (float v : values) {
    std::string out;
    igla::server::append_json_float(out, v);
    ASSERT_TRUE(json::accept(out)) << out;
    EXPECT_EQ(static_cast<float>(json::parse(out).get<double>()), v) << out;
    if (std::fabs(v) < 1e7f) {
      EXPECT_EQ(out, fmt::format("{}", v));
    }
  }
  std::string out;
  igla::server::append_json_float(out, std::numeric_limits<float>::infinity());
  igla::server::append_json_float(out, std::nanf(""));
  EXPECT_EQ(out, "nullnull");
  out.clear();
  igla::server::append_decimal(out, 0);
  out += ',';
  igla::server::append_decimal(out, 18446744073709551615ull);
  EXPECT_EQ(out, "0,18446744073709551615");
}

// ---- batching and concurrency

TEST_F(ServerTest, RequestsLargerThanMaxBatchAreSplitAndAnswered) {
  ServerOptions o;
  o.max_batch = 3;
  start(o);
  HttpClient c(port());
  json words = json::array();
  for (int i = 0; i < 10; ++i) words.push_back(word(i * 17));
  HttpReply r = c.post("/v1/nearest", json{{"words", words}, {"k", 3}});
  ASSERT_EQ(r.status, 200) << r.body;
  for (int i = 0; i < 10; ++i)
    expect_same_hits(r.json()["results"][i]["hits"], engine->nearest(word(i * 17), params(3)), word(i * 17));
  const std::string m = c.get("/metrics").body;
  EXPECT_NE(m.find("igla_batch_size_queries_count{kind=\"nearest\"} 4"), std::string::npos) << m;
}

// 200 keep-alive clients x 5 requests at once: every answer equals the engine's, and the queries
// of different clients shared search calls.
void expect_concurrent_clients_get_the_engines_answers(const Engine& engine_ref, uint16_t port,
                                                       const std::function<SearchParams(size_t)>& params) {
  const Engine* engine = &engine_ref;
  // Expected answers first (the engine, one query at a time).
  constexpr int kClients = 200, kRequests = 5;
  std::vector<std::vector<WordHit>> want(kWords);
  for (int cl = 0; cl < kClients; ++cl)
    for (int q = 0; q < kRequests; ++q) {
      const size_t w = (cl * 131 + q * 7) % kWords;
      if (want[w].empty()) want[w] = engine->nearest(word(w), params(5));
    }
  std::atomic<int> ok{0}, wrong{0}, failed{0};
  std::vector<std::thread> clients;
  for (int cl = 0; cl < kClients; ++cl)
    clients.emplace_back([&, cl] {
      try {
        HttpClient c(port);
        for (int q = 0; q < kRequests; ++q) {
          const size_t w = (cl * 131 + q * 7) % kWords;
          // Every other request carries two queries (the word twice): queries inside a request batch too.
          const json words = q % 2 ? json{word(w), word(w)} : json{word(w)};
          const HttpReply r = c.post("/v1/nearest", json{{"words", words}, {"k", 5}});
          if (r.status != 200) {
            ++failed;
            continue;
          }
          bool same = true;
          const json body = r.json();  // kept: a range-for over r.json()["results"] read a destroyed temporary (ASan)
          for (auto& res : body["results"]) {
            const json& hits = res["hits"];
            same = same && hits.size() == want[w].size();
            for (size_t i = 0; same && i < hits.size(); ++i)
              same = hits[i]["word"] == want[w][i].word &&
                     static_cast<float>(hits[i]["score"].get<double>()) == want[w][i].score;
          }
          ++(same ? ok : wrong);
        }
      } catch (const std::exception&) {
        ++failed;
      }
    });
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), kClients * kRequests);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(failed.load(), 0);
  // Queries of different clients shared search calls.
  const std::string m = HttpClient(port).get("/metrics").body;
  const long batches = metric(m, "igla_batch_size_queries_count{kind=\"nearest\"}");
  EXPECT_GT(batches, 0) << m;
  EXPECT_LT(batches, kClients * kRequests) << m;
}

TEST_F(ServerTest, TwoHundredConcurrentClientsGetTheEnginesAnswers) {
  ServerOptions o;
  o.max_wait_us = 2000;
  start(o);
  expect_concurrent_clients_get_the_engines_answers(*engine, port(), [this](size_t k) { return params(k); });
}

// One I/O thread (the CLI's default on up to 7 cores): the answers of a batch are written before
// their connections read again (Server::Impl::run_completions); no request may be lost or stall.
TEST_F(ServerTest, TwoHundredConcurrentClientsOneIoThread) {
  ServerOptions o;
  o.max_wait_us = 2000;
  o.io_threads = 1;
  start(o);
  expect_concurrent_clients_get_the_engines_answers(*engine, port(), [this](size_t k) { return params(k); });
}

// One I/O thread under load: runs of completions that answer many connections start their next
// reads at the next run (Server::Impl::run_completions). Batches of 24 among 200 clients make such
// runs while the batcher still holds requests; every answer must still be right, and afterwards a
// lone client (nothing left in the batcher) must be answered at once, request after request.
TEST_F(ServerTest, OneIoThreadDefersReadsUnderLoadAndNeverStalls) {
  ServerOptions o;
  o.max_wait_us = 2000;
  o.max_batch = 24;
  o.io_threads = 1;
  start(o);
  expect_concurrent_clients_get_the_engines_answers(*engine, port(), [this](size_t k) { return params(k); });
  EXPECT_GT(srv->deferred_read_runs(), 0u);
  HttpClient c(port());
  for (int i = 0; i < 20; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    const HttpReply r = c.post("/v1/nearest", json{{"words", {word(i)}}, {"k", 3}});
    ASSERT_EQ(r.status, 200) << r.body;
    expect_same_hits(r.json()["results"][0]["hits"], engine->nearest(word(i), params(3)), word(i));
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2)) << "request " << i;
  }
}

// A request the queue does not take (full, or the server stopping) is answered 503 with
// Retry-After through the same reply as a searched one (the reply moves into the job).
TEST_F(ServerTest, RequestsNotQueuedAre503WithRetryAfter) {
  ServerOptions o;
  start(o);
  srv->service().stop();  // the batcher refuses new jobs from now on
  HttpClient c(port());
  const HttpReply r = c.post("/v1/nearest", json{{"words", {word(1)}}, {"k", 3}});
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(r.headers["Retry-After"], "1");
  EXPECT_NE(r.body.find("shutting down"), std::string::npos) << r.body;
  const HttpReply full = c.post("/v1/most_similar", json{{"positive", {word(1)}}, {"k", 3}});
  EXPECT_EQ(full.status, 503) << full.body;
  EXPECT_EQ(full.headers["Retry-After"], "1");
}

// ---- drain and reload

TEST_F(ServerTest, DrainAnswersEveryRequestInFlight) {
  ServerOptions o;
  o.max_wait_us = 2000000;  // requests sit in the batching window when the drain starts (it cuts it short)
  start(o);
  HttpClient idle(port());
  ASSERT_EQ(idle.get("/healthz").status, 200);
  constexpr int kClients = 40;
  std::vector<std::future<HttpReply>> replies;
  for (int i = 0; i < kClients; ++i)
    replies.push_back(std::async(std::launch::async, [this, i] {
      HttpClient c(port());
      return c.post("/v1/nearest", json{{"words", {word(i)}}, {"k", 3}});
    }));
  // Wait until every request is read and queued, then drain.
  for (int t = 0; t < 200 && srv->service().in_flight() < kClients; ++t)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(srv->service().in_flight(), size_t{kClients});
  srv->drain();
  for (int i = 0; i < kClients; ++i) {
    const HttpReply r = replies[i].get();
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_FALSE(r.keep_alive) << "responses while draining close their connection";
    if (r.status == 200) expect_same_hits(r.json()["results"][0]["hits"], engine->nearest(word(i), params(3)), word(i));
  }
  EXPECT_TRUE(idle.closed_by_peer()) << "an idle keep-alive connection is closed";
  EXPECT_TRUE(srv->wait()) << "drained, nothing forced";
  EXPECT_THROW(HttpClient{port()}, boost::system::system_error) << "no longer accepting";
}

TEST_F(ServerTest, ReloadUnderLoadFailsNoRequest) {
  start();
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> load;
  for (int t = 0; t < 8; ++t)
    load.emplace_back([&, t] {
      HttpClient c(port());
      for (int i = 0; !stop.load(); ++i) {
        const HttpReply r = c.post("/v1/nearest", json{{"words", {word((t * 100 + i) % 500)}}, {"k", 3}});
        ++(r.status == 200 ? ok : failed);
      }
    });
  HttpClient admin(port());
  for (int i = 0; i < 5; ++i) {
    // Alternate between two different indexes at the same path (500+ words in both).
    save_index(dir.file("next.igla"), i % 2 ? kWords : 1000, 100 + i);
    std::filesystem::rename(dir.file("next.igla"), path);
    const HttpReply r = admin.post("/v1/admin/reload", "");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json()["generation"], 2 + i);
    EXPECT_EQ(r.json()["words"], i % 2 ? kWords : 1000);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  // A failed reload keeps the index in service.
  std::filesystem::remove(path);
  HttpReply r = admin.post("/v1/admin/reload", "");
  EXPECT_EQ(r.status, 500) << r.body;
  EXPECT_NE(r.body.find("previous index stays"), std::string::npos) << r.body;
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  stop = true;
  for (auto& t : load) t.join();
  EXPECT_GT(ok.load(), 50);
  EXPECT_EQ(failed.load(), 0);
  r = admin.get("/v1/info");
  EXPECT_EQ(r.json()["generation"], 6);
  EXPECT_EQ(r.json()["index"]["words"], 1000) << "the last good reload's index";
  EXPECT_NE(admin.get("/metrics").body.find("igla_index_reloads_total{result=\"error\"} 1"), std::string::npos);
}

// ---- the CLI: `igla serve` as a process (ready line, same answers as `igla nearest`, SIGHUP, SIGTERM)

struct Process {
  pid_t pid = -1;
  FILE* out = nullptr;
  ~Process() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    if (out) fclose(out);
  }
};

std::string run_cli(const std::string& args) {
  FILE* p = popen((std::string(IGLA_CLI_PATH) + " " + args + " 2>&1").c_str(), "r");
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  pclose(p);
  return out;
}

TEST_F(ServerTest, CliServesTheCliAnswersAndDrainsOnSigterm) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  Process proc;
  proc.pid = fork();
  ASSERT_GE(proc.pid, 0);
  if (proc.pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    execl(IGLA_CLI_PATH, "igla", "serve", "--index", path.c_str(), "--port", "0", "--max-wait-us", "1000000",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  proc.out = fdopen(fds[0], "r");
  char line[256] = {};
  ASSERT_NE(fgets(line, sizeof line, proc.out), nullptr) << "no ready line";
  const std::string ready = line;
  ASSERT_EQ(ready.rfind("listening on http://127.0.0.1:", 0), 0u) << ready;
  const auto port = static_cast<uint16_t>(std::stoi(ready.substr(ready.rfind(':') + 1)));

  // The CLI's own answer for one word equals the server's.
  const json cli = json::parse(run_cli("nearest w77 -k 4 --json --index " + path));
  HttpClient c(port);
  HttpReply r = c.post("/v1/nearest", json{{"words", {"w77"}}, {"k", 4}});
  ASSERT_EQ(r.status, 200) << r.body;
  const json hits = r.json()["results"][0]["hits"];
  ASSERT_EQ(hits.size(), cli.size()) << cli.dump();
  for (size_t i = 0; i < hits.size(); ++i) {
    EXPECT_EQ(hits[i]["word"], cli[i]["word"]);
    EXPECT_EQ(static_cast<float>(hits[i]["score"].get<double>()), static_cast<float>(cli[i]["score"].get<double>()));
  }

  // SIGHUP reloads.
  kill(proc.pid, SIGHUP);
  for (int t = 0; t < 200 && c.get("/v1/info").json()["generation"] != 2; ++t)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(c.get("/v1/info").json()["generation"], 2);

  // SIGTERM with requests in flight: all answered, exit 0.
  std::vector<std::future<HttpReply>> replies;
  for (int i = 0; i < 20; ++i)
    replies.push_back(std::async(std::launch::async, [port, i] {
      HttpClient cl(port);
      return cl.post("/v1/nearest", json{{"words", {word(i)}}});
    }));
  // Until all 20 wait in the queue (1 s batching window), or the window has passed.
  for (int t = 0; t < 150 && metric(c.get("/metrics").body, "igla_queue_depth_requests") < 20; ++t)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  kill(proc.pid, SIGTERM);
  for (auto& f : replies) EXPECT_EQ(f.get().status, 200);
  int status = 0;
  ASSERT_EQ(waitpid(proc.pid, &status, 0), proc.pid);
  proc.pid = -1;
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
