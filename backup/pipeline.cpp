#include "backup/pipeline.h"

#include "core/interrupt.h"

namespace arche::backup {

Pipeline::Pipeline(unsigned threads, size_t max_in_flight)
    : max_in_flight_(max_in_flight ? max_in_flight : 1), pool_(threads ? threads : ThreadPool::default_threads()) {}

Pipeline::~Pipeline() { drain(); }

void Pipeline::rethrow_locked() {
  if (error_) {
    std::exception_ptr e = error_;
    std::rethrow_exception(e);
  }
}

void Pipeline::submit(std::function<void()> job) {
  interrupt::check();
  {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return in_flight_ < max_in_flight_ || error_; });
    rethrow_locked();
    ++in_flight_;
  }
  pool_.submit([this, job = std::move(job)] {
    std::exception_ptr failure;
    {
      bool skip;
      {
        std::lock_guard lock(mutex_);
        skip = static_cast<bool>(error_);
      }
      if (!skip) {
        try {
          interrupt::check();  // after Ctrl-C, queued work is dropped, not done
          job();
        } catch (...) {
          failure = std::current_exception();
        }
      }
    }
    std::lock_guard lock(mutex_);
    if (failure && !error_) error_ = failure;
    --in_flight_;
    changed_.notify_all();
  });
}

void Pipeline::drain() noexcept {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [this] { return in_flight_ == 0; });
}

void Pipeline::wait() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [this] { return in_flight_ == 0; });
  rethrow_locked();
  interrupt::check();
}

}  // namespace arche::backup
