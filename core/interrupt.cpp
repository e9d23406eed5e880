#include "core/interrupt.h"

#include <signal.h>
#include <string.h>

#include <atomic>

#include "core/error.h"

namespace arche::interrupt {
namespace {

std::atomic<int> g_signal{0};

void on_signal(int sig) {
  int expected = 0;
  if (!g_signal.compare_exchange_strong(expected, sig) && expected == sig) {
    // The same signal again: the user insists. Take the default action now.
    signal(sig, SIG_DFL);
    raise(sig);
  }
}

}  // namespace

void install_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  // No SA_RESTART: a blocking read or wait returns EINTR, so the work reaches its
  // next check() instead of sleeping on.
  sa.sa_flags = 0;
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);
}

int pending_signal() { return g_signal.load(std::memory_order_relaxed); }

void check() {
  int sig = pending_signal();
  if (sig != 0) fail(ErrorCategory::interrupted, "interrupted by SIG{}", sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
}

int exit_code() {
  int sig = pending_signal();
  return sig != 0 ? 128 + sig : 130;
}

void reset() { g_signal.store(0); }

}  // namespace arche::interrupt
