#include "cpu/thread_pool.hpp"

namespace igla {

ThreadPool::ThreadPool(int threads) {
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { work(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

bool ThreadPool::take_and_run(uint64_t gen, int slot) {
  uint64_t c = claim_.load(std::memory_order_acquire);
  for (;;) {
    if ((c >> 32) != (gen & 0xffffffffu) || static_cast<uint32_t>(c) >= n_.load(std::memory_order_relaxed))
      return false;
    if (claim_.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel)) break;
  }
  try {
    (*fn_)(static_cast<uint32_t>(c), slot);
  } catch (...) {
    std::lock_guard<std::mutex> lk(error_mu_);
    if (!error_) error_ = std::current_exception();
  }
  done_.fetch_add(1, std::memory_order_acq_rel);
  return true;
}

void ThreadPool::run(uint32_t n, const std::function<void(uint32_t, int)>& fn) {
  if (n == 0) return;
  if (workers_.empty() || n == 1) {
    for (uint32_t i = 0; i < n; ++i) fn(i, 0);
    return;
  }
  uint64_t gen;
  {
    std::lock_guard<std::mutex> lk(mu_);
    gen = gen_.load(std::memory_order_relaxed) + 1;
    // Retire the last job's claims before its task count and function change under them.
    claim_.store(((gen & 0xffffffffu) << 32) | 0xffffffffu, std::memory_order_release);
    fn_ = &fn;
    n_.store(n, std::memory_order_relaxed);
    done_.store(0, std::memory_order_relaxed);
    claim_.store((gen & 0xffffffffu) << 32, std::memory_order_release);
    gen_.store(gen, std::memory_order_release);
  }
  wake_.notify_all();
  while (take_and_run(gen, 0)) {
  }
  // Only tasks already claimed remain: wait for those, not for idle workers.
  while (done_.load(std::memory_order_acquire) < n) std::this_thread::yield();
  std::exception_ptr error;
  {
    std::lock_guard<std::mutex> lk(error_mu_);
    std::swap(error, error_);
  }
  if (error) std::rethrow_exception(error);
}

void ThreadPool::work(int slot) {
  uint64_t seen = 0;
  for (;;) {
    // Spin briefly for the next job (back-to-back queries), then sleep.
    for (int i = 0; i < 20000 && gen_.load(std::memory_order_acquire) == seen; ++i) {
#if defined(__x86_64__)
      __builtin_ia32_pause();
#endif
    }
    std::unique_lock<std::mutex> lk(mu_);
    wake_.wait(lk, [&] { return stop_ || gen_.load(std::memory_order_acquire) != seen; });
    if (stop_) return;
    seen = gen_.load(std::memory_order_acquire);
    lk.unlock();  // fn_ and n_ of generation `seen` stay valid until its tasks are all done
    while (take_and_run(seen, slot)) {
    }
  }
}

}  // namespace igla
