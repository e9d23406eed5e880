// Writing objects read back from tape into a store on a few threads. Every store
// write is durable when it returns (a local store: temporary file, fsync, link,
// directory fsync — backup/store.h), and done one after the other those waits
// left the tape idle most of a restore: here the objects of the tape are queued
// and written while the next ones are read, a few at once, so the fsyncs overlap
// each other and the reading. The caller writes what must come after them (a
// snapshot's manifest) only when finish() returned: nothing looks restored that
// is not on disk.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backup/store.h"

namespace arche::tape {

class ParallelStoreWriter {
 public:
  // `store` may still be in the making (a new repository's directories): the
  // writers wait for it; its error is rethrown by write() or finish().
  ParallelStoreWriter(std::shared_future<std::shared_ptr<backup::Store>> store, unsigned threads,
                      size_t max_queued);
  // Writes what is still queued (whole objects only), then stops; errors are dropped
  // here (call finish() to see them).
  ~ParallelStoreWriter();
  ParallelStoreWriter(const ParallelStoreWriter&) = delete;
  ParallelStoreWriter& operator=(const ParallelStoreWriter&) = delete;

  // Queues an object (kept when the store has it already); blocks while
  // `max_queued` wait; rethrows the first error of a writer.
  void write(std::string name, std::vector<uint8_t> bytes);
  // Waits until every queued object is durable in the store; rethrows the first error.
  void finish();
  // The buffer of an object already written (its capacity kept), else an empty one.
  std::vector<uint8_t> spare_buffer();

  uint64_t written() const;
  uint64_t present() const;  // already in the store

 private:
  struct Job {
    std::string name;
    std::vector<uint8_t> bytes;
  };
  void run();
  void check_error_locked();

  std::shared_future<std::shared_ptr<backup::Store>> store_;
  const size_t max_queued_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Job> queue_;
  std::vector<std::vector<uint8_t>> spare_;
  size_t busy_ = 0;
  bool stop_ = false;
  uint64_t written_ = 0, present_ = 0;
  std::exception_ptr error_;
  std::vector<std::thread> threads_;  // last: joined before the rest goes
};

}  // namespace arche::tape
