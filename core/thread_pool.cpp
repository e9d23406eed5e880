#include "core/thread_pool.h"

#include <atomic>
#include <exception>

namespace arche {

ThreadPool::ThreadPool(unsigned threads) {
  if (threads == 0) threads = 1;
  workers_.reserve(threads);
  for (unsigned i = 0; i < threads; ++i) workers_.emplace_back([this] { run(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

unsigned ThreadPool::default_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 2 : n;
}

void ThreadPool::run() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    job();
  }
}

void parallel_for(ThreadPool& pool, size_t count, const std::function<void(size_t)>& fn) {
  // One task per worker pulling indices keeps memory flat for large counts.
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::vector<std::future<void>> tasks;
  size_t workers = std::min<size_t>(pool.size(), count);
  for (size_t w = 0; w < workers; ++w) {
    tasks.push_back(pool.submit([&] {
      for (size_t i; !failed && (i = next.fetch_add(1)) < count;) {
        try {
          fn(i);
        } catch (...) {
          failed = true;
          throw;
        }
      }
    }));
  }
  std::exception_ptr first;
  for (auto& t : tasks) {
    try {
      t.get();
    } catch (...) {
      if (!first) first = std::current_exception();
    }
  }
  if (first) std::rethrow_exception(first);
}

}  // namespace arche
