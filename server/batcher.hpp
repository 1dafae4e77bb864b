// igla serve: the dynamic batcher. Requests' queries wait in one queue; a batcher thread takes
// the queries of every waiting request that share a search (same engine, kind, mode, k and
// candidates) into one batch call of the Engine, up to max_batch queries, and completes each
// request when all of its queries are answered.
//
// When a batch is cut: as soon as max_batch queries wait, else when the oldest waiting query has
// waited max_wait_us (a lone request is never held longer than that). While a search runs, new
// requests queue up and form the next batch, so under load batches grow with the load. A request
// larger than max_batch is split over several calls. A request still waiting past its deadline is
// answered 504 without being searched.
//
// Thread-safety: submit(), queued_*() and set_flush() may be called from any thread; a Job's
// `done` runs on the batcher thread (keep it short: hand the job to another thread).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "igla/engine.hpp"
#include "metrics.hpp"

namespace igla::server {

using Clock = std::chrono::steady_clock;

enum class Kind : uint8_t { Nearest, NearestVectors, Analogy, MostSimilar, Similarity, DoesntMatch };
const char* kind_name(Kind k);

// One request's queries of one kind, its results and how it ends.
struct Job {
  Kind kind = Kind::Nearest;
  std::shared_ptr<const Engine> engine;  // the engine the ids were resolved on (kept across a reload)
  SearchParams params;                   // k, candidates
  AnalogyMode mode = AnalogyMode::Add;

  // Input, by kind (one of these holds size() queries).
  std::vector<uint32_t> ids;                             // Nearest
  std::vector<std::string> words;                        // Nearest: the words as sent (may be empty:
                                                         // the answer then echoes the request's JSON)
  std::vector<float> vectors;                            // NearestVectors: n x float_dims
  std::vector<std::array<uint32_t, 3>> abc;              // Analogy
  std::vector<PosNeg> posneg;                            // MostSimilar
  std::vector<std::pair<uint32_t, uint32_t>> pairs;      // Similarity
  std::vector<std::vector<uint32_t>> groups;             // DoesntMatch
  size_t size() const;

  // Output, by kind.
  std::vector<std::vector<Hit>> hits;  // Nearest, NearestVectors, Analogy, MostSimilar
  std::vector<float> scores;           // Similarity
  std::vector<size_t> positions;       // DoesntMatch

  // How it ended: 200, 504 (deadline passed in the queue), 500 (the search threw: `error`).
  int status = 200;
  std::string error;
  Clock::time_point enqueued{}, deadline = Clock::time_point::max();
  std::function<void(const std::shared_ptr<Job>&)> done;  // called once, on the batcher thread

  // The batcher's bookkeeping.
  size_t taken = 0, finished = 0;
};

struct BatcherOptions {
  size_t max_batch = 4096;
  uint32_t max_wait_us = 500;
  size_t max_queue = 100000;
};

class Batcher {
 public:
  Batcher(BatcherOptions opts, Metrics* metrics);  // starts the batcher thread
  ~Batcher();                                      // stop()
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  enum class Admit { Ok, QueueFull, Stopped };
  // Queues `job` (size() > 0) unless its queries would take the queue past max_queue.
  Admit submit(std::shared_ptr<Job> job);
  size_t queued_queries() const;
  size_t queued_requests() const;
  // Jobs taken by submit() whose `done` has not been called yet. It falls just before a job's
  // `done` runs, so while it is above 0 at least one `done` call is still to come.
  size_t pending() const { return pending_.load(std::memory_order_acquire); }
  // true: cut batches without waiting (draining: nothing more is coming).
  void set_flush(bool on);
  // Answers everything queued, then ends the thread. Later submits get Stopped.
  void stop();
  const BatcherOptions& options() const { return opts_; }

 private:
  struct Slice {
    std::shared_ptr<Job> job;
    size_t begin, end;
  };
  BatcherOptions opts_;
  Metrics* metrics_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  size_t queued_ = 0;  // queries not yet taken
  std::atomic<size_t> pending_{0};
  bool stopping_ = false, flush_ = false;
  std::thread thread_;

  void run();
  // Under mu_: the next batch (slices of one key) and the jobs past their deadline.
  void cut(std::vector<Slice>& batch, std::vector<std::shared_ptr<Job>>& expired);
  void execute(std::vector<Slice>& batch);
  void finish(Slice& s);  // the slice's job reference is released
};

}  // namespace igla::server
