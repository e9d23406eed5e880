#include "core/units.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace arche {
namespace {

TEST(Units, ParsesSizesLikeQemuImg) {
  EXPECT_EQ(parse_size("4096"), 4096u);
  EXPECT_EQ(parse_size("64K"), 65536u);
  EXPECT_EQ(parse_size("64k"), 65536u);
  EXPECT_EQ(parse_size("512M"), 512 * MiB);
  EXPECT_EQ(parse_size("4G"), 4 * GiB);
  EXPECT_EQ(parse_size("4GiB"), 4 * GiB);
  EXPECT_EQ(parse_size("1T"), TiB);
  EXPECT_EQ(parse_size("1.5G"), 3 * GiB / 2);
  EXPECT_EQ(parse_size("100B"), 100u);
}

TEST(Units, RejectsGarbageWithUsageError) {
  for (const char* bad : {"", "abc", "12X", "-5", "1.5", "G", "99999999999999999999", "20E"}) {
    try {
      parse_size(bad, "size");
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const Error& e) {
      EXPECT_EQ(e.category(), ErrorCategory::usage) << bad;
      EXPECT_NE(std::string(e.what()).find("size"), std::string::npos) << e.what();
    }
  }
}

TEST(Units, FormatsForPeople) {
  EXPECT_EQ(format_size(0), "0 B");
  EXPECT_EQ(format_size(512), "512 B");
  EXPECT_EQ(format_size(64 * KiB), "64 KiB");
  EXPECT_EQ(format_size(3 * GiB / 2), "1.50 GiB");
  EXPECT_EQ(format_size(4 * GiB), "4 GiB");
  EXPECT_EQ(format_size(100 * MiB + 512 * KiB), "100.5 MiB");
}

TEST(Units, Alignment) {
  EXPECT_EQ(align_up(0, 512), 0u);
  EXPECT_EQ(align_up(1, 512), 512u);
  EXPECT_EQ(align_down(1023, 512), 512u);
  EXPECT_EQ(div_round_up(1025, 512), 3u);
  EXPECT_TRUE(is_power_of_two(65536));
  EXPECT_FALSE(is_power_of_two(0));
  EXPECT_FALSE(is_power_of_two(3 * 1024));
}

}  // namespace
}  // namespace arche
