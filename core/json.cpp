#include "core/json.h"

#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>

namespace arche {

void print_json(const Json& value) {
  bool pretty = ::isatty(STDOUT_FILENO) == 1;
  std::string text = pretty ? value.dump(2) : value.dump();
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

std::string rfc3339(int64_t unix_seconds) {
  time_t t = static_cast<time_t>(unix_seconds);
  struct tm local {};
  if (::localtime_r(&t, &local) == nullptr) return fmt::format("@{}", unix_seconds);
  long offset = local.tm_gmtoff;  // seconds east of UTC
  char sign = offset < 0 ? '-' : '+';
  long minutes = std::labs(offset) / 60;
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}{:02}:{:02}", local.tm_year + 1900, local.tm_mon + 1,
                     local.tm_mday, local.tm_hour, local.tm_min, local.tm_sec, sign, minutes / 60, minutes % 60);
}

std::string rfc3339(std::chrono::system_clock::time_point time) {
  return rfc3339(std::chrono::duration_cast<std::chrono::seconds>(time.time_since_epoch()).count());
}

Json or_null(const std::string& value) { return value.empty() ? Json(nullptr) : Json(value); }

}  // namespace arche
