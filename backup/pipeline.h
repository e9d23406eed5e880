// The parallel part of backups and restores: jobs run on a thread pool, and submit()
// blocks while `max_in_flight` jobs are queued or running, so the producer (the
// thread walking an image or a directory tree) never runs ahead of the workers and
// memory stays bounded. The first failure stops new work and is rethrown; so does a
// signal (core/interrupt.h): jobs not yet started are dropped.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>

#include "core/thread_pool.h"

namespace arche::backup {

class Pipeline {
 public:
  // threads 0: one per core.
  Pipeline(unsigned threads, size_t max_in_flight);
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Throws the first error of an earlier job instead of queueing more work.
  void submit(std::function<void()> job);
  // Waits until every submitted job has finished; rethrows the first error.
  void wait();
  // Waits until no job runs, ignoring errors: for unwinding after a failure, so no
  // job outlives what it refers to.
  void drain() noexcept;
  unsigned threads() const { return pool_.size(); }

 private:
  void rethrow_locked();

  std::mutex mutex_;
  std::condition_variable changed_;
  size_t in_flight_ = 0;
  const size_t max_in_flight_;
  std::exception_ptr error_;
  ThreadPool pool_;  // last: destroyed (joined) first, while the members above live
};

}  // namespace arche::backup
