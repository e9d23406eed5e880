#include "tape/allocation.h"

#include <ctime>

#include "core/error.h"

namespace arche::tape {

NewSetEvery parse_new_set_every(const std::string& text) {
  if (text == "day") return NewSetEvery::day;
  if (text == "week") return NewSetEvery::week;
  if (text == "month") return NewSetEvery::month;
  fail(ErrorCategory::usage, "--new-set-every takes day, week or month, not '{}'", text);
}

const char* to_string(NewSetEvery every) {
  switch (every) {
    case NewSetEvery::never: return "never";
    case NewSetEvery::day: return "day";
    case NewSetEvery::week: return "week";
    case NewSetEvery::month: return "month";
  }
  return "never";
}

int64_t period_start(NewSetEvery every, int64_t now) {
  const time_t t = static_cast<time_t>(now);
  std::tm local{};
  if (!::localtime_r(&t, &local)) fail(ErrorCategory::internal, "no local time for {}", now);
  local.tm_hour = local.tm_min = local.tm_sec = 0;
  if (every == NewSetEvery::week) local.tm_mday -= (local.tm_wday + 6) % 7;  // back to Monday
  if (every == NewSetEvery::month) local.tm_mday = 1;
  local.tm_isdst = -1;  // midnight may be in another DST state than `now`
  return static_cast<int64_t>(std::mktime(&local));
}

bool new_set_due(NewSetEvery every, int64_t created, int64_t now) {
  return every != NewSetEvery::never && created < period_start(every, now);
}

}  // namespace arche::tape
