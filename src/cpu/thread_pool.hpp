// igla internal: the process-wide thread pool of the CPU search loop.
//
// Why not OpenMP here: a parallel region ends in a barrier that every team thread must reach,
// so one worker the OS has not scheduled yet (a busy machine) stalls a 20 us query for a whole
// time slice (milliseconds, measured). Here the caller runs tasks too and waits only for tasks a
// worker actually claimed; a worker that wakes late finds nothing left and goes back to sleep.
//
// Thread-safety: run() may be called from any number of threads at once (one searcher shared by
// many threads, or many searchers): each call is a job in a FIFO; free workers join the oldest
// job that still has tasks and room (its `width`), so concurrent calls share the cores instead
// of each starting threads of its own.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "igla/search.hpp"  // kDefaultIdleSpin

namespace igla {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);  // threads in all, the caller included
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // The pool every CPU searcher shares: one thread per hardware thread, grown by grow_to().
  static ThreadPool& shared();
  // Threads in all (caller included), at most kMaxThreads.
  static constexpr int kMaxThreads = 1024;
  void grow_to(int threads);

  int size() const { return size_.load(std::memory_order_acquire); }
  // Runs fn(task, slot) for task in [0, n) on at most `width` threads (0: all; the caller is one
  // of them, slot 0); slot in [0, width) is unique among this call's threads running at once.
  // Returns when every task has finished. An exception thrown by a task (e.g. std::bad_alloc in
  // a worker) is rethrown here, in the caller, once every task has finished: it never
  // terminates the process from a worker.
  void run(uint32_t n, const std::function<void(uint32_t, int)>& fn, int width = 0);

  // How long an idle worker spins (pause instructions, ~10-40 ns each by CPU) watching for the
  // next job before it sleeps on the condition variable. Spinning catches back-to-back jobs (one
  // query after another) without a futex wake-up; it also takes a core from whatever else runs on
  // the machine (on 2 cores shared with an HTTP server and its clients, measurably). 0: sleep at
  // once. Any thread may change it at any time; workers read it before each idle wait.
  void set_idle_spin(uint32_t pauses) { idle_spin_.store(pauses, std::memory_order_relaxed); }
  uint32_t idle_spin() const { return idle_spin_.load(std::memory_order_relaxed); }

 private:
  struct Job {
    const std::function<void(uint32_t, int)>* fn;
    uint32_t n;
    int width;
    int joined = 1;                  // slots handed out, the caller's included (under mu_)
    std::atomic<int> inside{0};      // workers running its tasks now
    std::atomic<uint32_t> next{0};   // next task to claim
    std::mutex error_mu;
    std::exception_ptr error;        // the first exception one of its tasks threw
  };
  void work();
  static void drain(Job& j, int slot);

  std::vector<std::thread> workers_;
  std::atomic<int> size_{1};
  std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable left_;      // a job's last worker left it (run() waits for that)
  std::deque<Job*> jobs_;             // jobs with tasks left and room for another thread
  std::atomic<uint64_t> posted_{0};   // jobs posted so far: idle workers spin on it briefly
  std::atomic<uint32_t> idle_spin_{kDefaultIdleSpin};
  bool stop_ = false;
};

}  // namespace igla
