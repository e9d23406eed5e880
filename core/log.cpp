#include "core/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>

namespace arche {

namespace {
std::atomic<LogLevel> g_level{LogLevel::normal};
std::mutex g_mutex;
}  // namespace

void set_log_level(LogLevel level) { g_level = level; }
LogLevel log_level() { return g_level; }

void log_line(LogLevel level, const std::string& text) {
  if (level > g_level.load()) return;
  std::lock_guard lock(g_mutex);
  std::fprintf(stderr, "arche: %s\n", text.c_str());
}

}  // namespace arche
