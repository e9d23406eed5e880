// The JSON conventions of core/json.h: RFC 3339 times with the UTC offset, null for
// what is absent.
#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <regex>

#include "core/json.h"

namespace arche {
namespace {

// Runs `fn` with TZ set to `zone`, then restores the previous zone.
template <typename F>
void with_time_zone(const char* zone, F fn) {
  const char* old = std::getenv("TZ");
  std::string saved = old ? old : "";
  ::setenv("TZ", zone, 1);
  ::tzset();
  fn();
  if (old) ::setenv("TZ", saved.c_str(), 1);
  else ::unsetenv("TZ");
  ::tzset();
}

TEST(Json, Rfc3339CarriesTheOffset) {
  with_time_zone("UTC0", [] { EXPECT_EQ(rfc3339(0), "1970-01-01T00:00:00+00:00"); });
  // 2026-12-01 20:30:05 UTC in a zone one hour east, and one five and a half hours west.
  with_time_zone("CET-1", [] { EXPECT_EQ(rfc3339(1796157005), "2026-12-01T21:30:05+01:00"); });
  with_time_zone("XYZ+5:30", [] { EXPECT_EQ(rfc3339(1796157005), "2026-12-01T15:00:05-05:30"); });
  // Summer time moves the offset with the date.
  with_time_zone("CET-1CEST,M3.5.0,M10.5.0/3", [] { EXPECT_EQ(rfc3339(1782937805), "2026-07-01T22:30:05+02:00"); });
}

TEST(Json, Rfc3339FromTimePoint) {
  with_time_zone("UTC0", [] {
    std::string now = rfc3339(std::chrono::system_clock::now());
    EXPECT_TRUE(std::regex_match(now, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d)"))) << now;
  });
}

TEST(Json, AbsentValuesAreNull) {
  EXPECT_TRUE(or_null(std::optional<uint64_t>{}).is_null());
  EXPECT_EQ(or_null(std::optional<uint64_t>{7}), 7);
  EXPECT_TRUE(or_null(std::string()).is_null());
  EXPECT_EQ(or_null(std::string("x")), "x");
}

}  // namespace
}  // namespace arche
