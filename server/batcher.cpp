#include "batcher.hpp"

#include <pthread.h>
#include <algorithm>
#include <exception>

namespace igla::server {

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::Nearest: return "nearest";
    case Kind::NearestVectors: return "nearest_vectors";
    case Kind::Analogy: return "analogy";
    case Kind::MostSimilar: return "most_similar";
    case Kind::Similarity: return "similarity";
    case Kind::DoesntMatch: return "doesnt_match";
  }
  return "?";
}

size_t Job::size() const {
  switch (kind) {
    case Kind::Nearest: return ids.size();
    case Kind::NearestVectors: return engine && engine->index().float_dims() ? vectors.size() / engine->index().float_dims() : 0;
    case Kind::Analogy: return abc.size();
    case Kind::MostSimilar: return posneg.size();
    case Kind::Similarity: return pairs.size();
    case Kind::DoesntMatch: return groups.size();
  }
  return 0;
}

namespace {

// Whether two jobs' queries can share one search call: the same engine and the same search.
bool same_search(const Job& a, const Job& b) {
  if (a.engine != b.engine || a.kind != b.kind) return false;
  if (a.kind == Kind::Analogy && a.mode != b.mode) return false;
  const bool uses_k = a.kind != Kind::Similarity && a.kind != Kind::DoesntMatch;
  return (!uses_k || a.params.k == b.params.k) && a.params.candidates == b.params.candidates &&
         a.params.limit == b.params.limit && a.params.nprobe == b.params.nprobe && a.params.ef == b.params.ef;
}

// Copies slice [begin, end) of each job's input into one contiguous batch input.
template <class T>
std::vector<T> gather(const auto& batch, std::vector<T> Job::*field, size_t per_query = 1) {
  std::vector<T> all;
  for (auto& s : batch) {
    const auto& v = (*s.job).*field;
    all.insert(all.end(), v.begin() + s.begin * per_query, v.begin() + s.end * per_query);
  }
  return all;
}

}  // namespace

Batcher::Batcher(BatcherOptions opts, Metrics* metrics) : opts_(opts), metrics_(metrics) {
  opts_.max_batch = std::max<size_t>(opts_.max_batch, 1);
  thread_ = std::thread([this] { run(); });
  pthread_setname_np(thread_.native_handle(), "igla-batcher");  // as top -H and perf show it
}

Batcher::~Batcher() { stop(); }

Batcher::Admit Batcher::submit(std::shared_ptr<Job> job) {
  const size_t n = job->size();
  switch (job->kind) {
    case Kind::Similarity: job->scores.assign(n, 0.0f); break;
    case Kind::DoesntMatch: job->positions.assign(n, 0); break;
    default: job->hits.assign(n, {});
  }
  job->enqueued = Clock::now();
  bool wake;
  {
    std::lock_guard lk(mu_);
    if (stopping_) return Admit::Stopped;
    if (queued_ + n > opts_.max_queue) return Admit::QueueFull;
    // Wake the batcher when the queue was empty (it sleeps until a job comes) or a full batch waits.
    wake = queue_.empty() || (queued_ < opts_.max_batch && queued_ + n >= opts_.max_batch);
    queue_.push_back(std::move(job));
    queued_ += n;
    pending_.fetch_add(1, std::memory_order_relaxed);
  }
  if (wake) cv_.notify_one();
  return Admit::Ok;
}

size_t Batcher::queued_queries() const {
  std::lock_guard lk(mu_);
  return queued_;
}

size_t Batcher::queued_requests() const {
  std::lock_guard lk(mu_);
  return queue_.size();
}

void Batcher::set_flush(bool on) {
  {
    std::lock_guard lk(mu_);
    flush_ = on;
  }
  cv_.notify_one();
}

void Batcher::stop() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void Batcher::run() {
  std::vector<Slice> batch;
  std::vector<std::shared_ptr<Job>> expired;
  for (;;) {
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything answered
      // The batching window: until a full batch waits or the oldest query has waited max_wait_us.
      const auto until = queue_.front()->enqueued + std::chrono::microseconds(opts_.max_wait_us);
      cv_.wait_until(lk, until, [&] { return stopping_ || flush_ || queued_ >= opts_.max_batch; });
      cut(batch, expired);
    }
    for (auto& j : expired) {
      j->status = 504;
      j->error = "the request waited in the queue past its deadline";
      pending_.fetch_sub(1, std::memory_order_release);
      if (j->done) j->done(j);
    }
    expired.clear();
    if (!batch.empty()) execute(batch);
    batch.clear();
  }
}

void Batcher::cut(std::vector<Slice>& batch, std::vector<std::shared_ptr<Job>>& expired) {
  const auto now = Clock::now();
  const Job* key = nullptr;
  size_t room = opts_.max_batch;
  for (auto& j : queue_) {
    if (room == 0) break;
    if (j->taken == 0 && j->deadline < now) {
      queued_ -= j->size();
      expired.push_back(j);
      j->taken = j->size();  // marks it for removal below
      continue;
    }
    if (key == nullptr) key = j.get();
    else if (!same_search(*key, *j)) continue;
    const size_t take = std::min(room, j->size() - j->taken);
    batch.push_back({j, j->taken, j->taken + take});
    j->taken += take;
    queued_ -= take;
    room -= take;
  }
  std::erase_if(queue_, [](const std::shared_ptr<Job>& j) { return j->taken == j->size(); });
}

void Batcher::execute(std::vector<Slice>& batch) {
  const Job& first = *batch.front().job;
  const Engine& e = *first.engine;
  const SearchParams& p = first.params;
  size_t n = 0;
  for (auto& s : batch) n += s.end - s.begin;
  const auto t0 = Clock::now();
  try {
    // Copies each query's hits out of one batch result, in batch order.
    auto scatter_hits = [&](const SearchResults& r) {
      size_t q = 0;
      for (auto& s : batch)
        for (size_t i = s.begin; i < s.end; ++i, ++q) {
          auto h = r.of(q);
          s.job->hits[i].assign(h.begin(), h.end());
        }
    };
    switch (first.kind) {
      case Kind::Nearest: scatter_hits(e.nearest(gather(batch, &Job::ids), p)); break;
      case Kind::NearestVectors: {
        const size_t d = e.index().float_dims();
        scatter_hits(e.nearest_vectors(gather(batch, &Job::vectors, d), n, p));
        break;
      }
      case Kind::Analogy: scatter_hits(e.analogies(gather(batch, &Job::abc), first.mode, p)); break;
      case Kind::MostSimilar: scatter_hits(e.most_similar(gather(batch, &Job::posneg), p)); break;
      case Kind::Similarity: {
        const std::vector<float> s = e.similarities(gather(batch, &Job::pairs), p);
        size_t q = 0;
        for (auto& sl : batch)
          for (size_t i = sl.begin; i < sl.end; ++i) sl.job->scores[i] = s.at(q++);
        break;
      }
      case Kind::DoesntMatch: {
        const std::vector<size_t> pos = e.doesnt_match(gather(batch, &Job::groups), p);
        size_t q = 0;
        for (auto& sl : batch)
          for (size_t i = sl.begin; i < sl.end; ++i) sl.job->positions[i] = pos.at(q++);
        break;
      }
    }
  } catch (const std::exception& ex) {
    for (auto& s : batch) {
      s.job->status = 500;
      s.job->error = std::string("search failed: ") + ex.what();
    }
  }
  if (metrics_) metrics_->batch(kind_name(first.kind), n, std::chrono::duration<double>(Clock::now() - t0).count());
  for (auto& s : batch) finish(s);
}

void Batcher::finish(Slice& s) {
  s.job->finished += s.end - s.begin;
  if (s.job->finished != s.job->size()) return;
  // The batch lets go of the job before handing it on, so that the job (allocated by an I/O
  // thread) is mostly freed there too, by whoever makes its answer: memory freed on the thread
  // that allocated it goes back to that thread's malloc cache.
  const std::shared_ptr<Job> job = std::move(s.job);
  pending_.fetch_sub(1, std::memory_order_release);
  if (job->done) job->done(job);
}

}  // namespace igla::server
