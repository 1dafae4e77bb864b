#include "service.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/beast/http/error.hpp>
#include <chrono>
#include <cmath>
#include <initializer_list>
#include <iterator>
#include <optional>
#include <nlohmann/json.hpp>

#include "auth.hpp"
#include "igla/error.hpp"
#include "index_info.hpp"
#include "json_write.hpp"
#include "nearest_reader.hpp"

namespace igla::server {

namespace {

using json = nlohmann::json;

// A request the client got wrong: status, message, the field at fault and extra error members.
struct ApiError : std::runtime_error {
  int status;
  std::string field;
  json extra;
  std::string allow;  // 405: the method the route takes
  ApiError(int s, const std::string& msg, std::string f = {}, json x = json::object())
      : std::runtime_error(msg), status(s), field(std::move(f)), extra(std::move(x)) {}
};

// Dumps with invalid UTF-8 replaced (messages may quote the client's bytes).
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

Response json_response(int status, std::string body) {
  Response r{static_cast<http::status>(status), 11};
  r.set(http::field::content_type, "application/json");
  r.set(http::field::server, "igla");
  r.body() = std::move(body);
  return r;
}

Response error_of(const ApiError& e) {
  json err{{"status", e.status}, {"message", e.what()}};
  if (!e.field.empty()) err["field"] = e.field;
  for (auto& [k, v] : e.extra.items()) err[k] = v;
  Response r = json_response(e.status, dump(json{{"error", err}}));
  if (e.status == 401) r.set(http::field::www_authenticate, "Bearer");
  if (!e.allow.empty()) r.set(http::field::allow, e.allow);
  return r;
}

// The routes, and the label each has in the metrics (anything else is "other").
constexpr std::string_view kRoutes[] = {"/v1/nearest",      "/v1/analogy", "/v1/most_similar", "/v1/similarity",
                                        "/v1/doesnt_match", "/v1/info",    "/v1/admin/reload", "/healthz",
                                        "/metrics"};

std::string_view route_label(std::string_view path) {
  for (auto r : kRoutes)
    if (r == path) return r;
  return "other";
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// ---- reading request bodies: every wrong type or value is a 400 naming the field

json parse_body(const Request& req) {
  if (req.body().empty()) throw ApiError(400, "the request has no body: expected a JSON object");
  try {
    json j = json::parse(req.body());
    if (!j.is_object()) throw ApiError(400, std::string("the body must be a JSON object, not ") + j.type_name());
    return j;
  } catch (const json::parse_error& e) {
    std::string what = e.what();
    if (auto p = what.find("] "); what.starts_with("[json.exception") && p != std::string::npos) what.erase(0, p + 2);
    throw ApiError(400, "the body is not valid JSON: " + what);
  }
}

void only_fields(const json& body, std::initializer_list<std::string_view> allowed) {
  for (auto it = body.begin(); it != body.end(); ++it) {
    bool ok = false;
    for (auto a : allowed) ok = ok || it.key() == a;
    if (ok) continue;
    std::string list;
    for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
    throw ApiError(400, fmt::format("unknown field '{}' (this route takes: {})", it.key(), list), it.key());
  }
}

// An integer field in [lo, hi] (absent or null: `def`); `limit_flag` names the server flag of hi.
size_t integer_field(const json& body, const char* name, size_t def, size_t lo, size_t hi, const char* limit_flag) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return def;
  if (!it->is_number_integer())
    throw ApiError(400, fmt::format("'{}' must be an integer, not {}", name, it->type_name()), name);
  if (it->is_number_integer() && !it->is_number_unsigned() && it->get<int64_t>() < 0)
    throw ApiError(400, fmt::format("'{}' must be at least {}, not {}", name, lo, it->get<int64_t>()), name);
  const uint64_t v = it->get<uint64_t>();
  if (v < lo) throw ApiError(400, fmt::format("'{}' must be at least {}, not {}", name, lo, v), name);
  if (v > hi) throw ApiError(400, fmt::format("'{}' = {} is over the limit {} ({})", name, v, hi, limit_flag), name);
  return static_cast<size_t>(v);
}

const json& array_field(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end()) throw ApiError(400, fmt::format("missing field '{}'", name), name);
  if (!it->is_array()) throw ApiError(400, fmt::format("'{}' must be an array, not {}", name, it->type_name()), name);
  return *it;
}

const std::string& string_at(const json& v, const std::string& where) {
  if (!v.is_string()) throw ApiError(400, fmt::format("'{}' must be a string, not {}", where, v.type_name()), where);
  return v.get_ref<const std::string&>();
}

// Unknown words: 404 with the closest known words (edit distance over the vocabulary, skipped for
// words longer than any sensible word: the search is linear in the word's length). `where` names
// the field ("words[3]"); it is only formatted on an error.
template <class Where>
uint32_t word_id(const Loaded& l, const json& v, const Where& where) {
  if (!v.is_string()) {
    const std::string w = where();
    throw ApiError(400, fmt::format("'{}' must be a string, not {}", w, v.type_name()), w);
  }
  const Engine& e = *l.engine;
  const std::string& word = v.get_ref<const std::string&>();
  if (auto id = e.options().lower ? e.find(word) : l.words.find(word)) return *id;
  std::vector<std::string> closest;
  if (word.size() <= 64) {
    try {
      e.id(word);
    } catch (const UnknownWord& u) {
      closest = u.closest();
    }
  }
  const std::string w = where();
  std::string msg = fmt::format("unknown word '{}' ({})", word, w);
  if (!closest.empty()) {
    msg += "; closest known words:";
    for (auto& c : closest) msg += " " + c;
  }
  throw ApiError(404, msg, w, json{{"word", word}, {"closest", closest}});
}

std::vector<uint32_t> word_ids(const Loaded& l, const json& words, const char* name) {
  std::vector<uint32_t> ids;
  ids.reserve(words.size());
  for (size_t i = 0; i < words.size(); ++i)
    ids.push_back(word_id(l, words[i], [&] { return fmt::format("{}[{}]", name, i); }));
  return ids;
}

// ---- writing results

void append_hits(std::string& out, const Index& ix, const std::vector<Hit>& hits) {
  // The hits' words lie scattered over the vocabulary (two cache misses each: the offset, the
  // bytes). Looked up and prefetched a group at a time before any is written, their misses
  // overlap instead of following one another.
  constexpr size_t kGroup = 16;
  std::string_view words[kGroup];
  out += "\"hits\":[";
  for (size_t base = 0; base < hits.size(); base += kGroup) {
    const size_t n = std::min(kGroup, hits.size() - base);
    for (size_t i = 0; i < n; ++i) {
      words[i] = ix.word(hits[base + i].id);
      __builtin_prefetch(words[i].data());
    }
    for (size_t i = 0; i < n; ++i) {
      out += base + i ? ",{\"word\":" : "{\"word\":";
      append_json_string(out, words[i]);
      out += ",\"score\":";
      append_json_float(out, hits[base + i].score);
      out += '}';
    }
  }
  out += ']';
}

// A job that ended without results: 500 (the search threw), 503 (not queued: full or stopping;
// with Retry-After) or 504 (past its deadline in the queue).
Response job_error(const Job& job) {
  Response r = error_of(ApiError(job.status, job.error.empty() ? "the search failed" : job.error));
  if (job.status == 503) r.set(http::field::retry_after, "1");
  return r;
}

// The answer to a finished job. `body` is the request's JSON (what queries are echoed from); it may
// be null for a Nearest job whose words the job holds (the fast path).
Response make_response(Kind kind, const json* body, const Job& j) {
  if (j.status != 200) return job_error(j);
  const Index& ix = j.engine->index();
  std::string out;
  if (kind == Kind::Similarity) {
    out = "{\"scores\":[";
    for (size_t i = 0; i < j.scores.size(); ++i) {
      if (i) out += ',';
      append_json_float(out, j.scores[i]);
    }
    out += "]}";
    return json_response(200, std::move(out));
  }
  if (kind == Kind::DoesntMatch) {
    const size_t pos = j.positions.at(0);
    out = "{\"doesnt_match\":";
    append_json_string(out, (*body)["words"][pos].get_ref<const std::string&>());
    fmt::format_to(std::back_inserter(out), ",\"index\":{}}}", pos);
    return json_response(200, std::move(out));
  }
  out.reserve(64 + j.hits.size() * (32 + 40 * j.params.k));
  out = "{\"results\":[";
  for (size_t q = 0; q < j.hits.size(); ++q) {
    out += q ? ",{\"query\":" : "{\"query\":";
    switch (kind) {
      case Kind::Nearest:
        append_json_string(out, j.words.empty() ? std::string_view((*body)["words"][q].get_ref<const std::string&>())
                                                : std::string_view(j.words[q]));
        break;
      case Kind::NearestVectors: fmt::format_to(std::back_inserter(out), "{}", q); break;
      case Kind::Analogy: out += dump((*body)["queries"][q]); break;
      default: {
        json pn{{"positive", body->value("positive", json::array())},
                {"negative", body->value("negative", json::array())}};
        out += dump(pn);
      }
    }
    out += ',';
    append_hits(out, ix, j.hits[q]);
    out += '}';
  }
  out += "]}";
  return json_response(200, std::move(out));
}

}  // namespace

// ---------------------------------------------------------------------------------------------

Service::Service(ServerOptions opts, Loader load)
    : opts_(std::move(opts)),
      loader_(std::move(load)),
      batcher_({.max_batch = opts_.max_batch, .max_wait_us = opts_.max_wait_us, .max_queue = opts_.max_queue},
               &metrics_) {
  try {
    state_.store(this->load(1));
  } catch (...) {
    batcher_.stop();
    throw;
  }
  admin_ = std::thread([this] {
    std::unique_lock lk(admin_mu_);
    for (;;) {
      admin_cv_.wait(lk, [&] { return admin_stop_ || !admin_queue_.empty(); });
      if (admin_queue_.empty()) return;
      auto done = std::move(admin_queue_.front());
      admin_queue_.pop_front();
      lk.unlock();
      const std::string err = reload();
      if (done) done(err);
      lk.lock();
    }
  });
}

Service::~Service() { stop(); }

std::shared_ptr<const Loaded> Service::load(uint64_t generation) {
  const auto t0 = Clock::now();
  std::shared_ptr<const Engine> e = loader_();
  if (!e) throw Error("the index loader returned no engine");
  auto l = std::make_shared<Loaded>();
  l->engine = e;
  l->words = WordTable(e->index());
  l->generation = generation;
  l->loaded_unix = unix_now();
  const Index& ix = e->index();
  json j = index_info_json(ix);
  j["searcher"] = e->searcher().name();
  j["lower"] = e->options().lower;
  l->load_seconds = seconds_since(t0);
  j["load_seconds"] = l->load_seconds;
  l->info = dump(j);
  return l;
}

std::string Service::reload() {
  std::lock_guard lk(reload_mu_);
  try {
    auto next = load(state_.load()->generation + 1);
    state_.store(std::move(next));  // requests holding the old engine keep it alive until they finish
    metrics_.reload(true);
    return "";
  } catch (const std::exception& e) {
    metrics_.reload(false);
    return e.what();
  }
}

void Service::reload_async(std::function<void(const std::string&)> done) {
  {
    std::lock_guard lk(admin_mu_);
    if (!admin_stop_) {
      admin_queue_.push_back(std::move(done));
      admin_cv_.notify_one();
      return;
    }
  }
  if (done) done("the server is shutting down");
}

void Service::start_draining() {
  draining_.store(true);
  batcher_.set_flush(true);
}

void Service::stop() {
  if (stopped_.exchange(true)) return;
  batcher_.stop();
  {
    std::lock_guard lk(admin_mu_);
    admin_stop_ = true;
  }
  admin_cv_.notify_one();
  if (admin_.joinable()) admin_.join();
}

Response Service::error_response(int status, std::string_view message) {
  return error_of(ApiError(status, std::string(message)));
}

Response Service::malformed(const boost::beast::error_code& ec) const {
  if (ec == http::error::body_limit)
    return error_response(413, fmt::format("the request body is over the limit of {} bytes (--max-body)", opts_.max_body));
  if (ec == http::error::header_limit || ec == http::error::buffer_overflow)
    return error_response(431, fmt::format("the request line and headers are over the limit of {} bytes",
                                           opts_.max_header));
  return error_response(400, "malformed HTTP request: " + ec.message());
}

std::string Service::info_json() const {
  auto l = state_.load();
  json server{{"version", "0.1.0"},
              {"io_threads", opts_.io_threads},
              {"max_batch", opts_.max_batch},
              {"max_wait_us", opts_.max_wait_us},
              {"max_queue", opts_.max_queue},
              {"max_body", opts_.max_body},
              {"max_k", opts_.max_k},
              {"max_candidates", opts_.max_candidates},
              {"default_candidates", opts_.default_candidates},
              {"nprobe", opts_.nprobe},
              {"ef", opts_.ef},
              {"timeout_ms", opts_.timeout_ms},
              {"auth", !opts_.token.empty()},
              {"draining", draining()}};
  return fmt::format("{{\"index\":{},\"generation\":{},\"loaded_at\":{:.3f},\"server\":{}}}", l->info, l->generation,
                     l->loaded_unix, dump(server));
}

// ---------------------------------------------------------------------------------------------

void Service::handle(Request&& req, const Peer& peer, Reply reply) {
  const auto t0 = Clock::now();
  in_flight_.fetch_add(1);
  std::string_view target = req.target();
  const std::string_view label = route_label(target.substr(0, target.find('?')));  // static storage
  // Every answer passes here: the metrics and the in-flight count see it when it is made.
  Reply done = [this, t0, label, reply = std::move(reply)](ResponseMaker make) {
    reply([this, t0, label, make = std::move(make)] {
      Response r;
      try {
        r = make();
      } catch (const std::exception& e) {
        r = error_response(500, std::string("could not write the response: ") + e.what());
      }
      metrics_.request(label, r.result_int(), seconds_since(t0));
      in_flight_.fetch_sub(1);
      return r;
    });
  };
  try {
    route(req, peer, label, done);
  } catch (const ApiError& e) {
    Response r = error_of(e);
    done([r] { return r; });
  } catch (const std::exception& e) {
    Response r = error_response(500, e.what());
    done([r] { return r; });
  }
}

// Everything that throws does so before `reply` is called (handle() answers the error then).
void Service::route(Request& req, const Peer& peer, std::string_view label, Reply& reply) {
  const std::string_view target = req.target();
  const std::string_view path = target.substr(0, target.find('?'));
  const http::verb method = req.method();
  auto want = [&](http::verb v) {
    if (method == v) return;
    ApiError e(405, fmt::format("{} takes {}, not {}", path, http::to_string(v), req.method_string()));
    e.allow = std::string(http::to_string(v));
    throw e;
  };
  auto answer = [&](int status, std::string body, const char* content_type = "application/json") {
    Response r = json_response(status, std::move(body));
    r.set(http::field::content_type, content_type);
    reply([r] { return r; });
  };

  if (label == "other")
    throw ApiError(404, fmt::format("no route {} (routes: POST /v1/nearest, /v1/analogy, /v1/most_similar, "
                                    "/v1/similarity, /v1/doesnt_match, /v1/admin/reload; GET /v1/info, /healthz, "
                                    "/metrics)",
                                    path));
  if (path == "/healthz") {  // open without a token: load balancers probe it
    want(http::verb::get);
    return draining() ? answer(503, R"({"status":"draining"})") : answer(200, R"({"status":"ok"})");
  }
  if (!opts_.token.empty() && !bearer_matches(req[http::field::authorization], opts_.token))
    throw ApiError(401, "missing or wrong token: send 'Authorization: Bearer <token>'");
  if (path == "/metrics") {
    want(http::verb::get);
    auto l = state_.load();
    return answer(200,
                  metrics_.render({.queued_queries = batcher_.queued_queries(),
                                   .queued_requests = batcher_.queued_requests(),
                                   .max_queue = opts_.max_queue,
                                   .draining = draining(),
                                   .index_generation = l->generation,
                                   .index_words = l->engine->index().size()}),
                  "text/plain; version=0.0.4; charset=utf-8");
  }
  if (path == "/v1/info") {
    want(http::verb::get);
    return answer(200, info_json());
  }
  if (path == "/v1/admin/reload") {
    want(http::verb::post);
    if (!peer.loopback) throw ApiError(403, "/v1/admin/reload is open to loopback clients only");
    const auto t0 = Clock::now();
    reload_async([this, t0, reply](const std::string& err) {
      if (!err.empty()) {
        Response r = error_of(ApiError(500, "reload failed, the previous index stays in service: " + err));
        return reply([r] { return r; });
      }
      auto l = state_.load();
      const std::string body = dump(json{{"status", "reloaded"},
                                         {"generation", l->generation},
                                         {"path", l->engine->index().path()},
                                         {"words", l->engine->index().size()},
                                         {"seconds", seconds_since(t0)}});
      Response r = json_response(200, body);
      reply([r] { return r; });
    });
    return;
  }
  want(http::verb::post);
  const Kind kind = path == "/v1/nearest"        ? Kind::Nearest
                    : path == "/v1/analogy"      ? Kind::Analogy
                    : path == "/v1/most_similar" ? Kind::MostSimilar
                    : path == "/v1/similarity"   ? Kind::Similarity
                                                 : Kind::DoesntMatch;
  search(kind, req, reply);
}

bool Service::search_nearest_fast(const Request& req, Reply& reply) {
  NearestReader in;
  if (!in.read(req.body())) return false;
  const size_t n = in.words.size();
  const uint64_t k = in.k.value_or(10), candidates = in.candidates.value_or(opts_.default_candidates),
                 timeout = in.timeout_ms.value_or(opts_.timeout_ms);
  // Out of range, or nothing to search: the full path answers (its errors name the field).
  if (n == 0 || n > opts_.max_queue || k < 1 || k > opts_.max_k || candidates > opts_.max_candidates ||
      timeout < 1 || timeout > opts_.timeout_ms)
    return false;
  auto loaded = state_.load();  // this request's engine, kept until it is answered
  const Engine& e = *loaded->engine;
  auto job = std::make_shared<Job>();
  job->ids.reserve(n);
  for (const std::string& w : in.words) {
    auto id = e.options().lower ? e.find(w) : loaded->words.find(w);
    if (!id) return false;  // the full path answers 404 with the closest known words
    job->ids.push_back(*id);
  }
  job->kind = Kind::Nearest;
  job->engine = loaded->engine;
  job->words = std::move(in.words);
  job->params.k = static_cast<size_t>(k);
  job->params.candidates = static_cast<size_t>(candidates);
  job->params.nprobe = opts_.nprobe;
  job->params.ef = opts_.ef;
  enqueue(std::move(job), static_cast<size_t>(timeout),
          [](const Job& j) { return make_response(Kind::Nearest, nullptr, j); }, reply);
  return true;
}

void Service::search(Kind kind, const Request& req, Reply& reply) {
  if (kind == Kind::Nearest && search_nearest_fast(req, reply)) return;
  auto body = std::make_shared<json>(parse_body(req));
  auto job = std::make_shared<Job>();
  auto loaded = state_.load();  // this request's engine, kept until it is answered
  job->engine = loaded->engine;
  const Engine& e = *job->engine;
  job->kind = kind;
  const json& b = *body;

  switch (kind) {
    case Kind::Nearest:
    case Kind::NearestVectors: {
      only_fields(b, {"words", "vectors", "k", "candidates", "timeout_ms"});
      const bool words = b.contains("words"), vectors = b.contains("vectors");
      if (words == vectors) throw ApiError(400, "give either 'words' or 'vectors'", words ? "vectors" : "words");
      if (words) {
        job->ids = word_ids(*loaded, array_field(b, "words"), "words");
      } else {
        job->kind = Kind::NearestVectors;
        const json& rows = array_field(b, "vectors");
        const size_t d = e.index().float_dims();
        job->vectors.reserve(rows.size() * d);
        for (size_t i = 0; i < rows.size(); ++i) {
          const std::string where = fmt::format("vectors[{}]", i);
          if (!rows[i].is_array() || rows[i].size() != d)
            throw ApiError(400,
                           fmt::format("'{}' must be an array of {} numbers (the index's float dims)", where, d),
                           where);
          for (size_t c = 0; c < d; ++c) {
            const json& x = rows[i][c];
            const double v = x.is_number() ? x.get<double>() : NAN;
            if (!std::isfinite(v) || std::fabs(v) > 3.4e38)
              throw ApiError(400, fmt::format("'{}[{}]' must be a finite number", where, c), where);
            job->vectors.push_back(static_cast<float>(v));
          }
        }
      }
      break;
    }
    case Kind::Analogy: {
      only_fields(b, {"queries", "k", "mode", "candidates", "timeout_ms"});
      if (auto m = b.find("mode"); m != b.end()) {
        const std::string& name = string_at(*m, "mode");
        if (name != "add" && name != "mul" && name != "clamp")
          throw ApiError(400, "'mode' must be \"add\", \"mul\" or \"clamp\", not \"" + name + "\"", "mode");
        job->mode = parse_analogy_mode(name);
      }
      const json& qs = array_field(b, "queries");
      for (size_t i = 0; i < qs.size(); ++i) {
        auto where = [i] { return fmt::format("queries[{}]", i); };
        if (!qs[i].is_array() || qs[i].size() != 3)
          throw ApiError(400, fmt::format("'{}' must be an array of 3 words [a, b, c]: a is to b as c is to ?", where()),
                         where());
        std::array<uint32_t, 3> abc{};
        for (size_t t = 0; t < 3; ++t) abc[t] = word_id(*loaded, qs[i][t], [&] { return fmt::format("{}[{}]", where(), t); });
        job->abc.push_back(abc);
      }
      break;
    }
    case Kind::MostSimilar: {
      only_fields(b, {"positive", "negative", "k", "candidates", "timeout_ms"});
      PosNeg pn;
      if (b.contains("positive")) pn.positive = word_ids(*loaded, array_field(b, "positive"), "positive");
      if (b.contains("negative")) pn.negative = word_ids(*loaded, array_field(b, "negative"), "negative");
      if (pn.positive.empty() && pn.negative.empty())
        throw ApiError(400, "give at least one word in 'positive' or 'negative'", "positive");
      job->posneg.push_back(std::move(pn));
      break;
    }
    case Kind::Similarity: {
      only_fields(b, {"pairs", "candidates", "timeout_ms"});
      const json& ps = array_field(b, "pairs");
      for (size_t i = 0; i < ps.size(); ++i) {
        auto where = [i] { return fmt::format("pairs[{}]", i); };
        if (!ps[i].is_array() || ps[i].size() != 2)
          throw ApiError(400, fmt::format("'{}' must be an array of 2 words", where()), where());
        job->pairs.push_back({word_id(*loaded, ps[i][0], [&] { return where() + "[0]"; }),
                              word_id(*loaded, ps[i][1], [&] { return where() + "[1]"; })});
      }
      break;
    }
    case Kind::DoesntMatch: {
      only_fields(b, {"words", "candidates", "timeout_ms"});
      const json& ws = array_field(b, "words");
      if (ws.size() < 2) throw ApiError(400, "'words' needs at least 2 words", "words");
      job->groups.push_back(word_ids(*loaded, ws, "words"));
      break;
    }
  }
  job->params.k = integer_field(b, "k", 10, 1, opts_.max_k, "--max-k");
  job->params.candidates =
      integer_field(b, "candidates", opts_.default_candidates, 0, opts_.max_candidates, "--max-candidates");
  job->params.nprobe = opts_.nprobe;
  job->params.ef = opts_.ef;
  const size_t timeout = integer_field(b, "timeout_ms", opts_.timeout_ms, 1, opts_.timeout_ms, "--timeout-ms");
  const size_t n = job->size();
  if (n > opts_.max_queue)
    throw ApiError(413, fmt::format("{} queries in one request; the queue holds at most {} (--max-queue)", n,
                                    opts_.max_queue));

  // The response, made where the caller runs it (off the batcher thread).
  auto make = [kind = job->kind, body](const Job& j) { return make_response(kind, body.get(), j); };
  if (n == 0) return reply([r = make(*job)] { return r; });  // nothing to search: answer now
  enqueue(std::move(job), timeout, std::move(make), reply);
}

template <class Make>
void Service::enqueue(std::shared_ptr<Job> job, size_t timeout, Make make, Reply& reply) {
  job->deadline = Clock::now() + std::chrono::milliseconds(timeout);
  // The reply moves into the job (a copy would allocate its chain of functions again); a job the
  // queue does not take is answered through the same function, with its status set.
  job->done = [reply = std::move(reply), make](const std::shared_ptr<Job>& j) {
    reply([j, make] { return make(*j); });
  };
  Batcher::Admit admit;
  try {
    admit = batcher_.submit(job);
  } catch (const std::exception& e) {  // out of memory for the job's results
    job->status = 500;
    job->error = std::string("could not queue the request: ") + e.what();
    return job->done(job);
  }
  switch (admit) {
    case Batcher::Admit::Ok: return;
    case Batcher::Admit::QueueFull:
      job->status = 503;
      job->error = fmt::format("the queue is full ({} queries waiting, --max-queue {}): retry shortly",
                               batcher_.queued_queries(), opts_.max_queue);
      break;
    case Batcher::Admit::Stopped:
      job->status = 503;
      job->error = "the server is shutting down";
      break;
  }
  job->done(job);
}

}  // namespace igla::server
