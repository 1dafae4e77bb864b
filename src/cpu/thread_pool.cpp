#include "cpu/thread_pool.hpp"

#include <pthread.h>
#include <algorithm>
#include <chrono>

namespace igla {

ThreadPool::ThreadPool(int threads) { grow_to(threads); }

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

ThreadPool& ThreadPool::shared() {
  static ThreadPool pool(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  return pool;
}

void ThreadPool::grow_to(int threads) {
  threads = std::clamp(threads, 1, kMaxThreads);
  std::lock_guard<std::mutex> lk(mu_);
  while (static_cast<int>(workers_.size()) + 1 < threads) {
    workers_.emplace_back([this] { work(); });
    pthread_setname_np(workers_.back().native_handle(), "igla-pool");  // as top -H and perf show it
  }
  size_.store(static_cast<int>(workers_.size()) + 1, std::memory_order_release);
}

void ThreadPool::drain(Job& j, int slot) {
  for (uint32_t t; (t = j.next.fetch_add(1, std::memory_order_acq_rel)) < j.n;) {
    try {
      (*j.fn)(t, slot);
    } catch (...) {
      std::lock_guard<std::mutex> lk(j.error_mu);
      if (!j.error) j.error = std::current_exception();
    }
  }
}

void ThreadPool::run(uint32_t n, const std::function<void(uint32_t, int)>& fn, int width) {
  if (n == 0) return;
  const int size = this->size();
  width = width <= 0 ? size : std::min(width, size);
  if (width == 1 || n == 1) {
    for (uint32_t i = 0; i < n; ++i) fn(i, 0);
    return;
  }
  Job j;
  j.fn = &fn;
  j.n = n;
  j.width = width;
  {
    std::lock_guard<std::mutex> lk(mu_);
    jobs_.push_back(&j);
    posted_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  drain(j, 0);
  {
    // No new worker may join once the job has left the queue; wait only for those inside.
    std::lock_guard<std::mutex> lk(mu_);
    if (auto it = std::find(jobs_.begin(), jobs_.end(), &j); it != jobs_.end()) jobs_.erase(it);
  }
  // Wait for the workers still inside (each finishing the task it claimed): yielding for up to
  // 50 us (a task of microseconds ends within that, and a one-query search keeps its latency),
  // then asleep until the last one leaves. On an oversubscribed machine a worker the OS has
  // preempted can take a whole time slice, and yielding all that while costs a system call per
  // turn (under `igla serve` on 2 cores: up to ~1.5 sched_yield per request, ~1 us of CPU each
  // in this VM).
  if (j.inside.load(std::memory_order_acquire) != 0) {
    const auto yield_until = std::chrono::steady_clock::now() + std::chrono::microseconds(50);
    while (j.inside.load(std::memory_order_acquire) != 0 && std::chrono::steady_clock::now() < yield_until)
      std::this_thread::yield();
  }
  if (j.inside.load(std::memory_order_acquire) != 0) {
    std::unique_lock<std::mutex> lk(mu_);
    left_.wait(lk, [&] { return j.inside.load(std::memory_order_acquire) == 0; });
  }
  if (j.error) std::rethrow_exception(j.error);
}

void ThreadPool::work() {
  uint64_t seen = 0;
  for (;;) {
    // Spin briefly for the next job (back-to-back queries), then sleep.
    const uint32_t spin = idle_spin();
    for (uint32_t i = 0; i < spin && posted_.load(std::memory_order_acquire) == seen; ++i) {
#if defined(__x86_64__)
      __builtin_ia32_pause();
#elif defined(__aarch64__)
      asm volatile("yield");
#endif
    }
    std::unique_lock<std::mutex> lk(mu_);
    wake_.wait(lk, [&] { return stop_ || !jobs_.empty(); });
    if (stop_) return;
    seen = posted_.load(std::memory_order_acquire);
    Job& j = *jobs_.front();
    const int slot = j.joined++;
    if (j.joined >= j.width) jobs_.pop_front();  // no room for another thread
    j.inside.fetch_add(1, std::memory_order_acq_rel);
    lk.unlock();
    drain(j, slot);
    lk.lock();
    // Every task is claimed: the job leaves the queue (if still there) before we stop touching it.
    if (auto it = std::find(jobs_.begin(), jobs_.end(), &j); it != jobs_.end()) jobs_.erase(it);
    // Under mu_, so a caller about to sleep in run() cannot miss it; the pool's condition
    // variable, not the job's (the caller may destroy the job once `inside` is 0).
    if (j.inside.fetch_sub(1, std::memory_order_acq_rel) == 1) left_.notify_all();
  }
}

}  // namespace igla
