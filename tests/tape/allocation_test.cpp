// Allocation "new on a calendar event" (issue 14): the periods' starts in local
// time, and SetWriter starting a new media set with the first backup of a new
// week while continuing the current one within the week (the clock is injected:
// SetChoice::now).
#include <cstdlib>
#include <ctime>

#include <gtest/gtest.h>

#include "core/error.h"

#include "tape/allocation.h"
#include "tape/labelling.h"
#include "tape/library.h"
#include "tape/session.h"
#include "tests/common/test_util.h"

namespace arche::tape {
namespace {

// Unix seconds of a UTC date and time.
int64_t utc(int year, int month, int day, int hour = 0, int minute = 0) {
  std::tm t{};
  t.tm_year = year - 1900;
  t.tm_mon = month - 1;
  t.tm_mday = day;
  t.tm_hour = hour;
  t.tm_min = minute;
  return static_cast<int64_t>(::timegm(&t));
}

// The periods are local time: these tests run in UTC.
struct InUtc {
  std::string old;
  bool had = false;
  InUtc() {
    if (const char* tz = std::getenv("TZ")) old = tz, had = true;
    ::setenv("TZ", "UTC", 1);
    ::tzset();
  }
  ~InUtc() {
    if (had) ::setenv("TZ", old.c_str(), 1);
    else ::unsetenv("TZ");
    ::tzset();
  }
};

TEST(TapeAllocation, PeriodsStartAtMidnightMondayAndTheFirst) {
  InUtc utc_zone;
  const int64_t wednesday = utc(2026, 12, 2, 8, 30);
  EXPECT_EQ(period_start(NewSetEvery::day, wednesday), utc(2026, 12, 2));
  EXPECT_EQ(period_start(NewSetEvery::week, wednesday), utc(2026, 11, 30));  // Monday
  EXPECT_EQ(period_start(NewSetEvery::week, utc(2026, 11, 30)), utc(2026, 11, 30));
  EXPECT_EQ(period_start(NewSetEvery::week, utc(2026, 12, 6, 23, 59)), utc(2026, 11, 30));  // Sunday
  EXPECT_EQ(period_start(NewSetEvery::week, utc(2027, 1, 2)), utc(2026, 12, 28));          // across the year
  EXPECT_EQ(period_start(NewSetEvery::month, wednesday), utc(2026, 12, 1));
  EXPECT_TRUE(new_set_due(NewSetEvery::week, utc(2026, 11, 29, 23), wednesday));
  EXPECT_FALSE(new_set_due(NewSetEvery::week, utc(2026, 11, 30, 1), wednesday));
  EXPECT_FALSE(new_set_due(NewSetEvery::never, 0, wednesday));
  EXPECT_TRUE(new_set_due(NewSetEvery::month, utc(2026, 11, 30), wednesday));
  EXPECT_FALSE(new_set_due(NewSetEvery::day, utc(2026, 12, 2, 0, 5), wednesday));
  EXPECT_EQ(parse_new_set_every("week"), NewSetEvery::week);
  EXPECT_THROW(parse_new_set_every("fortnight"), Error);
}

TEST(TapeAllocation, NewSetWithTheFirstBackupOfAWeekOtherwiseTheCurrentOne) {
  InUtc utc_zone;
  arche::test::TempDir dir;
  std::unique_ptr<Library> library = open_library("vtape:" + dir.file("lib"), "");
  Catalog catalog;
  for (const char* name : {"W1", "W2", "W3"}) {
    LabelRequest l;
    l.label = name;
    l.pool = "weekly";
    l.cartridge = {64u << 20, 8u << 20};
    l.now = utc(2026, 11, 1);
    label_tape(*library, catalog, l);
  }
  // One small tape file per "backup", at the time given.
  auto backup_at = [&](int64_t now) {
    SetChoice choice;
    choice.pool = "weekly";
    choice.repository = "repo";
    choice.key_fingerprint = "key";
    choice.new_set_every = NewSetEvery::week;
    choice.now = now;
    SetWriter w(*library, catalog, choice);
    w.begin_file(ContentType::chunk_archive, random_uuid(), 1, Json::object());
    const std::vector<uint8_t> bytes(1000, 7);
    w.add("data/00/x", bytes);
    w.end_file();
    w.finish();
    return std::make_pair(w.set_uuid(), w.tapes_used());
  };
  const auto monday = backup_at(utc(2026, 11, 30, 22));
  const auto thursday = backup_at(utc(2026, 12, 3, 22));
  const auto sunday = backup_at(utc(2026, 12, 6, 23, 59));
  const auto next_monday = backup_at(utc(2026, 12, 7, 0, 1));
  EXPECT_EQ(thursday.first, monday.first) << "a backup within the week must continue its set";
  EXPECT_EQ(sunday.first, monday.first);
  EXPECT_EQ(thursday.second, monday.second);
  EXPECT_NE(next_monday.first, monday.first) << "the first backup of a week must start a new set";
  EXPECT_NE(next_monday.second, monday.second) << "the new set must take another tape";
  EXPECT_EQ(catalog.sets.size(), 2u);
}

}  // namespace
}  // namespace arche::tape
