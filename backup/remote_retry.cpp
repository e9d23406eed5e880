#include "backup/remote_retry.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <random>
#include <string_view>
#include <thread>

#include "core/error.h"
#include "core/interrupt.h"

namespace arche::backup {
namespace {

unsigned env_number(const char* name, unsigned fallback, unsigned low, unsigned high) {
  const char* text = std::getenv(name);
  if (!text || !*text) return fallback;
  unsigned value = 0;
  const std::string_view view(text);
  auto [end, ec] = std::from_chars(view.data(), view.data() + view.size(), value);
  if (ec != std::errc() || end != view.data() + view.size() || value < low || value > high) {
    fail(ErrorCategory::usage, "{}={}: expected a number from {} to {}", name, view, low, high);
  }
  return value;
}

}  // namespace

std::chrono::milliseconds RetryPolicy::delay(unsigned retry) const {
  const unsigned shift = std::min(retry > 0 ? retry - 1 : 0u, 20u);
  const int64_t full = std::min<int64_t>(first_delay.count() << shift, max_delay.count());
  thread_local std::mt19937_64 random{std::random_device{}()};
  const int64_t half = full / 2;
  return std::chrono::milliseconds(half + (half > 0 ? static_cast<int64_t>(random() % (half + 1)) : 0));
}

RetryPolicy RetryPolicy::from_environment() {
  RetryPolicy policy;
  policy.attempts = env_number("ARCHE_STORE_RETRIES", policy.attempts, 1, 100);
  policy.first_delay =
      std::chrono::milliseconds(env_number("ARCHE_STORE_RETRY_DELAY_MS", static_cast<unsigned>(policy.first_delay.count()), 1, 600000));
  policy.max_delay = std::max(policy.max_delay, policy.first_delay);
  return policy;
}

void backoff_sleep(std::chrono::milliseconds delay) {
  const auto end = std::chrono::steady_clock::now() + delay;
  for (;;) {
    interrupt::check();
    const auto now = std::chrono::steady_clock::now();
    if (now >= end) return;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(end - now, std::chrono::milliseconds(50)));
  }
}

}  // namespace arche::backup
