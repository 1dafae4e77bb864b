#include "metrics.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <iterator>

namespace igla::server {

namespace {

// Request latency: 50 us to 10 s.
std::vector<double> latency_bounds() {
  return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}
// Queries per search call: powers of two to 65536.
std::vector<double> batch_bounds() {
  std::vector<double> b;
  for (double x = 1; x <= 65536; x *= 2) b.push_back(x);
  return b;
}

void render_histogram(fmt::memory_buffer& out, std::string_view name, std::string_view label,
                      const std::map<std::string, Histogram, std::less<>>& hs) {
  for (auto& [key, h] : hs) {
    uint64_t cum = 0;
    for (size_t i = 0; i < h.bounds.size(); ++i) {
      cum += h.counts[i];
      fmt::format_to(std::back_inserter(out), "{}_bucket{{{}=\"{}\",le=\"{}\"}} {}\n", name, label, key, h.bounds[i], cum);
    }
    cum += h.counts.back();
    fmt::format_to(std::back_inserter(out), "{}_bucket{{{}=\"{}\",le=\"+Inf\"}} {}\n", name, label, key, cum);
    fmt::format_to(std::back_inserter(out), "{}_sum{{{}=\"{}\"}} {}\n", name, label, key, h.sum);
    fmt::format_to(std::back_inserter(out), "{}_count{{{}=\"{}\"}} {}\n", name, label, key, h.count);
  }
}

}  // namespace

void Histogram::observe(double v) {
  const size_t i = std::lower_bound(bounds.begin(), bounds.end(), v) - bounds.begin();  // le: v <= bound
  ++counts[i];
  sum += v;
  ++count;
}

Metrics::Metrics()
    : start_unix_(std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count()) {}

void Metrics::request(std::string_view route, int status, double seconds) {
  std::lock_guard lk(mu_);
  ++requests_[{std::string(route), status}];
  auto it = latency_.find(route);
  if (it == latency_.end()) it = latency_.emplace(std::string(route), Histogram(latency_bounds())).first;
  it->second.observe(seconds);
}

void Metrics::batch(std::string_view kind, size_t queries, double seconds) {
  std::lock_guard lk(mu_);
  auto s = batch_size_.find(kind);
  if (s == batch_size_.end()) s = batch_size_.emplace(std::string(kind), Histogram(batch_bounds())).first;
  s->second.observe(double(queries));
  auto t = batch_seconds_.find(kind);
  if (t == batch_seconds_.end()) t = batch_seconds_.emplace(std::string(kind), Histogram(latency_bounds())).first;
  t->second.observe(seconds);
}

void Metrics::reload(bool ok) {
  std::lock_guard lk(mu_);
  ++(ok ? reloads_ok_ : reloads_failed_);
}

uint64_t Metrics::requests(std::string_view route, int status) const {
  std::lock_guard lk(mu_);
  auto it = requests_.find({std::string(route), status});
  return it == requests_.end() ? 0 : it->second;
}

std::string Metrics::render(const Gauges& g) const {
  fmt::memory_buffer out;
  auto put = [&out]<typename... A>(fmt::format_string<A...> f, A&&... a) {
    fmt::format_to(std::back_inserter(out), f, std::forward<A>(a)...);
  };
  // Prometheus text format: every family is a HELP line, a TYPE line, then its samples.
  auto family = [&put](std::string_view name, std::string_view type, std::string_view help) {
    put("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  auto gauge = [&](std::string_view name, std::string_view help, auto value) {
    family(name, "gauge", help);
    put("{} {}\n", name, value);
  };
  std::lock_guard lk(mu_);
  family("igla_http_requests_total", "counter", "HTTP requests answered, by route and status code.");
  for (auto& [key, n] : requests_)
    put("igla_http_requests_total{{route=\"{}\",status=\"{}\"}} {}\n", key.first, key.second, n);
  family("igla_http_errors_total", "counter", "HTTP requests answered with a 4xx or 5xx status, by route and status code.");
  for (auto& [key, n] : requests_)
    if (key.second >= 400) put("igla_http_errors_total{{route=\"{}\",status=\"{}\"}} {}\n", key.first, key.second, n);
  family("igla_http_request_duration_seconds", "histogram",
         "Time from a request's last byte read to its response, by route.");
  render_histogram(out, "igla_http_request_duration_seconds", "route", latency_);
  family("igla_batch_size_queries", "histogram", "Queries per search call of the dynamic batcher, by kind.");
  render_histogram(out, "igla_batch_size_queries", "kind", batch_size_);
  family("igla_batch_duration_seconds", "histogram", "Time of one search call of the batcher, by kind.");
  render_histogram(out, "igla_batch_duration_seconds", "kind", batch_seconds_);
  gauge("igla_queue_depth_queries", "Queries waiting for a batch.", g.queued_queries);
  gauge("igla_queue_depth_requests", "Requests with queries waiting for a batch.", g.queued_requests);
  gauge("igla_queue_capacity_queries", "The queue's limit (--max-queue); past it requests get 503.", g.max_queue);
  gauge("igla_connections", "Open client connections.", connections());
  gauge("igla_draining", "1 while the server drains after SIGTERM.", g.draining ? 1 : 0);
  family("igla_index_reloads_total", "counter", "Index reloads (SIGHUP or POST /v1/admin/reload), by result.");
  put("igla_index_reloads_total{{result=\"ok\"}} {}\n", reloads_ok_);
  put("igla_index_reloads_total{{result=\"error\"}} {}\n", reloads_failed_);
  gauge("igla_index_generation", "The index in service: 1 at start, +1 per successful reload.", g.index_generation);
  gauge("igla_index_words", "Words in the index in service.", g.index_words);
  gauge("igla_process_start_time_seconds", "Start time of the server, seconds since the Unix epoch.",
        fmt::format("{:.3f}", start_unix_));
  return fmt::to_string(out);
}

}  // namespace igla::server
