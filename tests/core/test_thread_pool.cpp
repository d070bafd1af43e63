#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "backend/thread_pool.h"

namespace {

TEST(ThreadPool, RunsEveryTaskOnceWithDistinctConcurrentWorkers) {
  qs::ThreadPool pool(4);
  EXPECT_EQ(pool.size(), 4u);
  std::vector<std::atomic<int>> hits(1000);
  std::vector<std::atomic<int>> in_use(4);
  std::atomic<bool> clash{false};
  pool.parallel_for(hits.size(), [&](std::size_t t, unsigned w) {
    if (in_use[w].fetch_add(1) != 0) clash = true;
    ++hits[t];
    in_use[w].fetch_sub(1);
  });
  for (auto& h : hits) EXPECT_EQ(h.load(), 1);
  EXPECT_FALSE(clash.load());
}

TEST(ThreadPool, ManyCallersAreSerialisedSafely) {
  qs::ThreadPool pool(3);
  std::atomic<long> total{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 4; ++c)
    callers.emplace_back([&] {
      for (int rep = 0; rep < 50; ++rep) pool.parallel_for(37, [&](std::size_t t, unsigned) { total += static_cast<long>(t); });
    });
  for (auto& t : callers) t.join();
  EXPECT_EQ(total.load(), 4L * 50 * (36 * 37 / 2));
}

TEST(ThreadPool, NestedCallsRunInlineInsteadOfDeadlocking) {
  qs::ThreadPool pool(3);
  std::atomic<int> inner{0};
  pool.parallel_for(8, [&](std::size_t, unsigned) {
    pool.parallel_for(5, [&](std::size_t, unsigned w) {
      EXPECT_EQ(w, 0u);  // inline: the caller's own slot
      ++inner;
    });
  });
  EXPECT_EQ(inner.load(), 40);
}

TEST(ThreadPool, ZeroTasksIsANoOp) {
  qs::ThreadPool pool(2);
  bool called = false;
  pool.parallel_for(0, [&](std::size_t, unsigned) { called = true; });
  EXPECT_FALSE(called);
}

}  // namespace
