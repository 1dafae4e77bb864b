// The search thread pool: every task of every job runs exactly once, slots never collide, and
// back-to-back jobs of different sizes (the one-query path) do not leak tasks into each other.
#include <gtest/gtest.h>

#include <atomic>
#include <new>
#include <vector>

#include "cpu/thread_pool.hpp"

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
