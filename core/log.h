// Messages for people: warnings and verbose notes on stderr, prefixed "arche:".
// Never pass secrets here.
#pragma once

#include <fmt/format.h>

#include <string>

namespace arche {

enum class LogLevel { quiet = 0, normal = 1, verbose = 2, debug = 3 };

void set_log_level(LogLevel level);
LogLevel log_level();
void log_line(LogLevel level, const std::string& text);

template <typename... Args>
void warn(fmt::format_string<Args...> format, Args&&... args) {
  log_line(LogLevel::normal, "warning: " + fmt::format(format, std::forward<Args>(args)...));
}
template <typename... Args>
void note(fmt::format_string<Args...> format, Args&&... args) {
  if (log_level() >= LogLevel::verbose) log_line(LogLevel::verbose, fmt::format(format, std::forward<Args>(args)...));
}
template <typename... Args>
void debug(fmt::format_string<Args...> format, Args&&... args) {
  if (log_level() >= LogLevel::debug) log_line(LogLevel::debug, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace arche
