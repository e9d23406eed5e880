#include "core/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>

namespace arche {
namespace {

TEST(ThreadPool, RunsEveryIndexOnce) {
  ThreadPool pool(4);
  std::vector<std::atomic<int>> hits(10000);
  parallel_for(pool, hits.size(), [&](size_t i) { hits[i]++; });
  for (auto& h : hits) EXPECT_EQ(h.load(), 1);
}

TEST(ThreadPool, FutureCarriesResultsAndExceptions) {
  ThreadPool pool(2);
  auto ok = pool.submit([] { return 6 * 7; });
  auto bad = pool.submit([]() -> int { throw std::runtime_error("boom"); });
  EXPECT_EQ(ok.get(), 42);
  EXPECT_THROW(bad.get(), std::runtime_error);
}

TEST(ThreadPool, ParallelForRethrowsAndStopsEarly) {
  ThreadPool pool(2);
  std::atomic<size_t> ran{0};
  EXPECT_THROW(parallel_for(pool, 100000,
                            [&](size_t i) {
                              ++ran;
                              if (i == 10) throw std::runtime_error("stop");
                            }),
               std::runtime_error);
  EXPECT_LT(ran.load(), 100000u);
}

}  // namespace
}  // namespace arche
