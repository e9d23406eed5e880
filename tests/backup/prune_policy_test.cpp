// Acceptance 5: prune keeps exactly what the policy says, table-driven over
// synthetic dates (UTC, so the buckets do not depend on the machine's time zone).
#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <set>

#include "backup/prune.h"
#include "core/error.h"

namespace arche::backup {
namespace {

class UtcEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    ::setenv("TZ", "UTC", 1);
    ::tzset();
  }
};
[[maybe_unused]] const auto* const kUtc = ::testing::AddGlobalTestEnvironment(new UtcEnvironment);

int64_t at(const char* text) {  // "2026-11-21 13:45"
  std::tm tm{};
  ::strptime(text, "%Y-%m-%d %H:%M", &tm);
  return static_cast<int64_t>(::timegm(&tm)) * 1000000000;
}

struct Case {
  const char* name;
  std::vector<const char*> times;  // snapshots, any order
  KeepPolicy policy;
  std::set<std::string> kept;      // the times expected to stay
};

std::vector<Case> cases() {
  const std::vector<const char*> daily_week = {"2026-11-15 23:00", "2026-11-16 01:00", "2026-11-16 23:30",
                                               "2026-11-17 12:00", "2026-11-18 12:00", "2026-11-18 13:00",
                                               "2026-11-19 12:00", "2026-11-20 12:00", "2026-11-21 03:00"};
  KeepPolicy last3;
  last3.last = 3;
  KeepPolicy daily3;
  daily3.daily = 3;
  KeepPolicy hourly2;
  hourly2.hourly = 2;
  KeepPolicy weekly2;
  weekly2.weekly = 2;
  KeepPolicy monthly3;
  monthly3.monthly = 3;
  KeepPolicy yearly2;
  yearly2.yearly = 2;
  KeepPolicy within2d;
  within2d.within_ns = parse_duration("2d");
  KeepPolicy combo;
  combo.last = 1;
  combo.daily = 2;
  combo.monthly = 2;
  // last 1 (11-21), daily 2 (11-21, 11-20), monthly 2 (November: 11-21, October: 10-31).
  std::vector<const char*> with_october = daily_week;
  with_october.push_back("2026-10-31 00:00");
  with_october.push_back("2026-10-01 00:00");
  KeepPolicy many_daily;
  many_daily.daily = 100;
  return {
      {"keep-last keeps the newest N", daily_week, last3, {"2026-11-21 03:00", "2026-11-20 12:00", "2026-11-19 12:00"}},
      {"keep-daily keeps the newest of each of the last N days",
       daily_week,
       daily3,
       {"2026-11-21 03:00", "2026-11-20 12:00", "2026-11-19 12:00"}},
      {"keep-daily takes the newest of a day with two",
       {"2026-11-18 12:00", "2026-11-18 13:00", "2026-11-17 12:00"},
       daily3,
       {"2026-11-18 13:00", "2026-11-17 12:00"}},
      {"keep-hourly", {"2026-11-21 10:05", "2026-11-21 10:55", "2026-11-21 11:10", "2026-11-21 09:00"}, hourly2,
       {"2026-11-21 11:10", "2026-11-21 10:55"}},
      // ISO weeks start on Monday: 2026-11-16 is a Monday.
      {"keep-weekly uses ISO weeks", daily_week, weekly2, {"2026-11-21 03:00", "2026-11-15 23:00"}},
      {"keep-monthly",
       {"2026-09-30 12:00", "2026-10-01 00:00", "2026-10-31 23:59", "2026-11-01 00:00", "2026-11-20 00:00",
        "2026-08-15 00:00"},
       monthly3,
       {"2026-11-20 00:00", "2026-10-31 23:59", "2026-09-30 12:00"}},
      {"keep-yearly across a new year", {"2025-12-31 23:59", "2026-01-01 00:01", "2024-06-01 00:00", "2026-05-01 00:00"},
       yearly2, {"2026-05-01 00:00", "2025-12-31 23:59"}},
      {"keep-within is relative to the newest snapshot",
       {"2026-11-21 12:00", "2026-11-19 12:00", "2026-11-19 11:59", "2026-01-01 00:00"},
       within2d,
       {"2026-11-21 12:00", "2026-11-19 12:00"}},
      {"rules add up", with_october, combo, {"2026-11-21 03:00", "2026-11-20 12:00", "2026-10-31 00:00"}},
      {"more days than snapshots keeps one per day",
       daily_week,
       many_daily,
       {"2026-11-15 23:00", "2026-11-16 23:30", "2026-11-17 12:00", "2026-11-18 13:00", "2026-11-19 12:00",
        "2026-11-20 12:00", "2026-11-21 03:00"}},
      {"nothing to keep from", {}, last3, {}},
  };
}

TEST(BackupPrunePolicy, KeepsExactlyWhatThePolicySays) {
  for (const Case& c : cases()) {
    std::vector<Snapshot> snaps;
    for (const char* t : c.times) {
      Snapshot s;
      s.name = t;
      s.id = std::string(64, 'a');
      s.id[0] = static_cast<char>('a' + snaps.size() % 6);
      s.time_ns = at(t);
      snaps.push_back(s);
    }
    std::vector<KeepDecision> decisions = apply_policy(snaps, c.policy);
    ASSERT_EQ(decisions.size(), snaps.size()) << c.name;
    std::set<std::string> kept;
    for (const KeepDecision& d : decisions) {
      EXPECT_EQ(d.keep, !d.reasons.empty()) << c.name;
      if (d.keep) kept.insert(snaps[d.index].name);
    }
    EXPECT_EQ(kept, c.kept) << c.name;
  }
}

TEST(BackupPrunePolicy, ReasonsNameTheRules) {
  std::vector<Snapshot> snaps(2);
  snaps[0].time_ns = at("2026-11-20 12:00");
  snaps[1].time_ns = at("2026-11-21 12:00");
  KeepPolicy p;
  p.last = 1;
  p.daily = 2;
  auto d = apply_policy(snaps, p);
  EXPECT_EQ(d[1].reasons, (std::vector<std::string>{"last", "daily"}));
  EXPECT_EQ(d[0].reasons, (std::vector<std::string>{"daily"}));
}

TEST(BackupPrunePolicy, DurationsParse) {
  const int64_t s = 1000000000;
  EXPECT_EQ(parse_duration("12h"), 12 * 3600 * s);
  EXPECT_EQ(parse_duration("7d"), 7 * 86400 * s);
  EXPECT_EQ(parse_duration("2w"), 14 * 86400 * s);
  EXPECT_EQ(parse_duration("1y6m"), (365 + 6 * 31) * 86400 * s);
  for (const char* bad : {"", "d", "7", "7x", "-1d", "1d2"}) EXPECT_THROW(parse_duration(bad), Error) << bad;
}

}  // namespace
}  // namespace arche::backup
