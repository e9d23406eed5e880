#include "tape/store_writer.h"

#include "core/error.h"

namespace arche::tape {

ParallelStoreWriter::ParallelStoreWriter(std::shared_future<std::shared_ptr<backup::Store>> store, unsigned threads,
                                         size_t max_queued)
    : store_(std::move(store)), max_queued_(max_queued) {
  for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

ParallelStoreWriter::~ParallelStoreWriter() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void ParallelStoreWriter::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    changed_.wait(lock, [this] { return !queue_.empty() || stop_; });
    if (queue_.empty()) return;  // stopping, nothing left
    Job job = std::move(queue_.front());
    queue_.pop_front();
    ++busy_;
    lock.unlock();
    changed_.notify_all();
    bool present = false;
    std::exception_ptr error;
    try {
      backup::Store& store = *store_.get();
      if (store.stat(job.name)) {
        present = true;
      } else {
        try {
          store.write(job.name, job.bytes, backup::WriteMode::create);
        } catch (const Error& e) {
          if (e.category() != ErrorCategory::exists) throw;
          present = true;  // another restore of the same repository won the race
        }
      }
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    --busy_;
    if (error && !error_) error_ = error;
    if (error) queue_.clear();  // the rest is not written: the caller fails
    else if (present) ++present_;
    else ++written_;
    if (spare_.size() < max_queued_) spare_.push_back(std::move(job.bytes));
    changed_.notify_all();
  }
}

void ParallelStoreWriter::check_error_locked() {
  if (error_) std::rethrow_exception(error_);
}

void ParallelStoreWriter::write(std::string name, std::vector<uint8_t> bytes) {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [this] { return error_ || queue_.size() < max_queued_; });
  check_error_locked();
  queue_.push_back({std::move(name), std::move(bytes)});
  changed_.notify_all();
}

void ParallelStoreWriter::finish() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [this] { return queue_.empty() && busy_ == 0; });
  check_error_locked();
}

std::vector<uint8_t> ParallelStoreWriter::spare_buffer() {
  std::lock_guard lock(mutex_);
  if (spare_.empty()) return {};
  std::vector<uint8_t> b = std::move(spare_.back());
  spare_.pop_back();
  b.clear();
  return b;
}

uint64_t ParallelStoreWriter::written() const {
  std::lock_guard lock(mutex_);
  return written_;
}

uint64_t ParallelStoreWriter::present() const {
  std::lock_guard lock(mutex_);
  return present_;
}

}  // namespace arche::tape
