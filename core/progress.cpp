#include "core/progress.h"

#include <unistd.h>

#include <fmt/format.h>

#include <cstdio>

#include "core/units.h"

namespace arche {

namespace {
std::atomic<bool> g_disabled{false};
constexpr int64_t kRedrawIntervalNs = 200'000'000;
}  // namespace

bool Progress::stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }
void Progress::set_globally_disabled(bool disabled) { g_disabled = disabled; }

Progress::Progress(std::string label, uint64_t total, bool enabled)
    : label_(std::move(label)), total_(total), enabled_(enabled && !g_disabled), start_(std::chrono::steady_clock::now()) {}

Progress::~Progress() {
  if (enabled_ && !finished_) {
    std::lock_guard lock(draw_mutex_);
    std::fputc('\n', stderr);  // leave the cursor on a fresh line after an error
  }
}

void Progress::add(uint64_t bytes) {
  done_ += bytes;
  if (!enabled_) return;
  int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start_).count();
  int64_t last = last_draw_ns_.load();
  if (now - last < kRedrawIntervalNs) return;
  if (!last_draw_ns_.compare_exchange_strong(last, now)) return;  // another thread draws
  draw(false);
}

void Progress::finish() {
  if (!enabled_ || finished_) return;
  draw(true);
  finished_ = true;
}

void Progress::draw(bool final) {
  std::lock_guard lock(draw_mutex_);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  uint64_t done = done_.load(), total = total_.load();
  double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0;
  std::string line = label_;
  if (total > 0) {
    line += fmt::format(" {:5.1f}%  {} / {}", 100.0 * static_cast<double>(done) / static_cast<double>(total),
                        format_size(done), format_size(total));
  } else {
    line += " " + format_size(done);
  }
  line += fmt::format("  {}/s", format_size(static_cast<uint64_t>(rate)));
  if (final) {
    line += fmt::format("  in {:.1f} s", seconds);
  } else if (total > done && rate > 0) {
    auto eta = static_cast<uint64_t>(static_cast<double>(total - done) / rate);
    line += fmt::format("  ETA {}:{:02}", eta / 60, eta % 60);
  }
  std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final ? "\n" : "");
  std::fflush(stderr);
}

}  // namespace arche
