// The search thread pool: every task of every job runs exactly once, slots never collide, and
// back-to-back jobs of different sizes (the one-query path) do not leak tasks into each other.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "cpu/thread_pool.hpp"
#include "igla/index.hpp"
#include "igla/search.hpp"

TEST(ThreadPool, EveryTaskOnceAcrossManyJobs) {
  for (int threads : {1, 2, 3, 8}) {
    igla::ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (uint32_t job = 0; job < 3000; ++job) {
      const uint32_t n = job % 7;  // 0..6 tasks, fewer or more than threads
      std::vector<std::atomic<int>> hits(n);
      std::vector<std::atomic<int>> busy(static_cast<size_t>(threads));
      std::atomic<bool> collision{false};
      pool.run(n, [&](uint32_t task, int slot) {
        if (busy[static_cast<size_t>(slot)].fetch_add(1) != 0) collision = true;
        hits[task].fetch_add(1);
        busy[static_cast<size_t>(slot)].fetch_sub(1);
      });
      for (uint32_t t = 0; t < n; ++t) ASSERT_EQ(hits[t].load(), 1) << "job " << job << " task " << t;
      ASSERT_FALSE(collision.load());
    }
  }
}

// A task that throws (std::bad_alloc in a worker, say) must not terminate the process: the
// exception reaches the caller of run(), after every other task has finished.
TEST(ThreadPool, ExceptionInAWorkerReachesTheCaller) {
  igla::ThreadPool pool(4);
  for (int round = 0; round < 50; ++round) {
    std::atomic<int> ran{0};
    EXPECT_THROW(pool.run(64,
                          [&](uint32_t task, int) {
                            ran.fetch_add(1);
                            if (task % 16 == 5) throw std::bad_alloc();
                          }),
                 std::bad_alloc);
    EXPECT_EQ(ran.load(), 64);
  }
  std::atomic<int> ran{0};
  pool.run(8, [&](uint32_t, int) { ran.fetch_add(1); });  // the pool still works, no stale error
  EXPECT_EQ(ran.load(), 8);
}

// The caller finishes its own tasks long before a worker finishes the one it claimed: run() must
// sleep until that worker leaves (past its few yields), and return only once every task is done.
TEST(ThreadPool, CallerSleepsUntilASlowWorkerFinishes) {
  igla::ThreadPool pool(2);
  pool.set_idle_spin(0);
  for (int round = 0; round < 20; ++round) {
    std::atomic<int> done{0};
    std::atomic<bool> worker_started{false};
    pool.run(2, [&](uint32_t, int slot) {
      if (slot != 0) {  // the worker: 20 ms, far past the caller's yields
        worker_started = true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      } else {  // the caller: returns as soon as the worker holds the other task
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (!worker_started && std::chrono::steady_clock::now() < until) std::this_thread::yield();
      }
      done.fetch_add(1);
    });
    ASSERT_TRUE(worker_started.load()) << "round " << round;
    ASSERT_EQ(done.load(), 2) << "round " << round;  // run() returned before the worker's task ended
  }
}

// With no idle spin the workers sleep between jobs at once: every job still runs each task once,
// and a sleeping worker is woken to join a job (two tasks that each wait for the other to start
// finish only if a second thread runs one of them).
TEST(ThreadPool, NoIdleSpinStillWakesWorkersForEveryJob) {
  igla::ThreadPool pool(2);
  EXPECT_EQ(pool.idle_spin(), igla::kDefaultIdleSpin);
  pool.set_idle_spin(0);
  EXPECT_EQ(pool.idle_spin(), 0u);
  for (int round = 0; round < 20; ++round) {
    if (round % 4 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));  // workers asleep
    std::atomic<int> started{0};
    std::atomic<bool> both{true};
    pool.run(2, [&](uint32_t, int) {
      started.fetch_add(1);
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while (started.load() < 2 && std::chrono::steady_clock::now() < until) std::this_thread::yield();
      if (started.load() < 2) both = false;
    });
    ASSERT_TRUE(both.load()) << "round " << round << ": no worker joined the job";
    for (uint32_t n : {1u, 3u, 17u}) {
      std::vector<std::atomic<int>> hits(n);
      pool.run(n, [&](uint32_t task, int) { hits[task].fetch_add(1); });
      for (uint32_t t = 0; t < n; ++t) ASSERT_EQ(hits[t].load(), 1) << "round " << round << " task " << t;
    }
  }
  pool.set_idle_spin(1000);  // changed while workers are idle: taken at their next wait
  std::atomic<int> ran{0};
  pool.run(8, [&](uint32_t, int) { ran.fetch_add(1); });
  EXPECT_EQ(ran.load(), 8);
}

// CpuOptions::idle_spin reaches the process-wide pool when a searcher is made; -1 leaves it.
TEST(ThreadPool, SearcherOptionSetsTheSharedPoolsIdleSpin) {
  auto& pool = igla::ThreadPool::shared();
  const uint32_t before = pool.idle_spin();
  igla::FloatVectors fv;
  fv.dims = 4;
  fv.words = {"a", "b", "c", "d"};
  fv.data = {1, 0, 0, 1, 0, 1, 1, 0, 0, 0, 1, 1, 1, 1, 0, 0};
  auto ix = std::make_shared<const igla::Index>(igla::Index::build(fv, {}, false));
  igla::SearcherOptions o;
  o.cpu.idle_spin = 123;
  auto s = igla::make_searcher(ix, o);
  EXPECT_EQ(pool.idle_spin(), 123u);
  o.cpu.idle_spin = -1;
  s = igla::make_searcher(ix, o);
  EXPECT_EQ(pool.idle_spin(), 123u);
  pool.set_idle_spin(before);
}

#if defined(__linux__)
// The pool's workers carry a name (top -H, perf --sort comm tell them from the caller's threads).
TEST(ThreadPool, WorkersAreNamed) {
  auto named = [] {
    int n = 0;
    for (const auto& t : std::filesystem::directory_iterator("/proc/self/task")) {
      std::ifstream f(t.path() / "comm");
      std::string name;
      std::getline(f, name);
      n += name == "igla-pool";
    }
    return n;
  };
  const int before = named();
  {
    igla::ThreadPool pool(3);
    std::atomic<int> ran{0};
    pool.run(6, [&](uint32_t, int) { ran.fetch_add(1); });
    EXPECT_EQ(ran.load(), 6);
    // 3 threads in all: the caller and 2 workers. A worker names itself when it starts, which
    // may come after the tasks are done (the caller can run them all; slow under qemu): wait.
    int now = named();
    for (int i = 0; i < 500 && now != before + 2; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      now = named();
    }
    EXPECT_EQ(now, before + 2);
  }
  // A joined thread's /proc/self/task entry can outlive the join by a moment (the kernel wakes the
  // joiner before it reaps the task): wait for it too.
  int after = named();
  for (int i = 0; i < 500 && after != before; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    after = named();
  }
  EXPECT_EQ(after, before);
}
#endif
