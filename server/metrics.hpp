// igla serve: counters and histograms, rendered in the Prometheus text format (GET /metrics).
// Thread-safety: every method may be called from any thread at once (one mutex; updates are a
// few additions, far below a search's cost).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace igla::server {

// A cumulative histogram with fixed upper bounds (Prometheus "le" buckets, +Inf implied).
struct Histogram {
  std::vector<double> bounds;
  std::vector<uint64_t> counts;  // per bucket (not cumulative), bounds.size() + 1
  double sum = 0;
  uint64_t count = 0;
  explicit Histogram(std::vector<double> b = {}) : bounds(std::move(b)), counts(bounds.size() + 1, 0) {}
  void observe(double v);
};

class Metrics {
 public:
  Metrics();

  // One answered request: its route label (a fixed set, see Service), status and seconds from
  // read to response.
  void request(std::string_view route, int status, double seconds);
  // One search call of the batcher: the kind ("nearest", ...), queries in it, seconds it took.
  void batch(std::string_view kind, size_t queries, double seconds);
  void reload(bool ok);
  void connection_opened() { connections_.fetch_add(1, std::memory_order_relaxed); }
  void connection_closed() { connections_.fetch_sub(1, std::memory_order_relaxed); }
  int64_t connections() const { return connections_.load(std::memory_order_relaxed); }

  // The text format, with the gauges the caller reads at the time (queue depth in queries and
  // requests, whether the server is draining, the index's words).
  struct Gauges {
    size_t queued_queries = 0, queued_requests = 0, max_queue = 0;
    bool draining = false;
    uint64_t index_generation = 0;
    size_t index_words = 0;
  };
  std::string render(const Gauges& g) const;

  // For tests: requests answered with `status` on `route` so far.
  uint64_t requests(std::string_view route, int status) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::map<std::string, Histogram, std::less<>> latency_;       // by route
  std::map<std::string, Histogram, std::less<>> batch_size_;    // by kind
  std::map<std::string, Histogram, std::less<>> batch_seconds_; // by kind
  uint64_t reloads_ok_ = 0, reloads_failed_ = 0;
  std::atomic<int64_t> connections_{0};
  double start_unix_;
};

}  // namespace igla::server
