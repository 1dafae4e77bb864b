// igla internal: a small persistent thread pool for the search loop.
//
// Why not OpenMP here: a parallel region ends in a barrier that every team thread must reach,
// so one worker the OS has not scheduled yet (a busy machine) stalls a 20 us query for a whole
// time slice (milliseconds, measured). Here the caller runs tasks too and waits only for tasks a
// worker actually claimed; a worker that wakes late finds nothing left and goes back to sleep.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace igla {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);  // threads in all, the caller included
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }
  // Runs fn(task, thread_slot) for task in [0, n); thread_slot in [0, size()) is unique among the
  // threads running at once (the caller is slot 0). Returns when every task has finished. An
  // exception thrown by a task (e.g. std::bad_alloc in a worker) is rethrown here, in the
  // caller, once every task has finished: it never terminates the process from a worker.
  void run(uint32_t n, const std::function<void(uint32_t, int)>& fn);

 private:
  void work(int slot);
  bool take_and_run(uint64_t gen, int slot);

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::atomic<uint64_t> gen_{0};           // job generation, bumped per run()
  std::atomic<uint64_t> claim_{0};         // (generation << 32) | next task: a stale claim fails
  std::atomic<uint32_t> n_{0};
  const std::function<void(uint32_t, int)>* fn_ = nullptr;
  std::atomic<uint32_t> done_{0};
  std::mutex error_mu_;
  std::exception_ptr error_;  // the first exception a task of the current job threw
};

}  // namespace igla
