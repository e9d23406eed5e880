// Progress of long work on a terminal: percentage, bytes, rate and ETA on one
// refreshing line of stderr. Silent when stderr is not a terminal (cron, pipes,
// tests) or when disabled, so logs never fill with carriage returns.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace arche {

class Progress {
 public:
  // `total` may be 0 when unknown (then no percentage or ETA).
  Progress(std::string label, uint64_t total, bool enabled = stderr_is_terminal());
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // Thread-safe; cheap enough to call per block.
  void add(uint64_t bytes);
  void set_total(uint64_t total) { total_ = total; }
  // Prints the final line (with a newline) once.
  void finish();

  uint64_t done() const { return done_.load(); }
  static bool stderr_is_terminal();
  // Globally silences all progress output (--quiet, --json).
  static void set_globally_disabled(bool disabled);

 private:
  void draw(bool final);

  std::string label_;
  std::atomic<uint64_t> total_;
  std::atomic<uint64_t> done_{0};
  bool enabled_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::atomic<int64_t> last_draw_ns_{0};
  std::mutex draw_mutex_;
};

}  // namespace arche
