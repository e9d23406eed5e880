// The FAT format functions on their own: names (8.3 with the NT lowercase flags,
// code page 437, the long-name checksum), UTF-16 with surrogates, timestamps.
#include <gtest/gtest.h>

#include <array>
#include <cstring>

#include "volume/fat_format.h"

namespace arche::volume::fat {
namespace {

std::array<uint8_t, kEntrySize> entry(const char* name11, uint8_t nt = 0) {
  std::array<uint8_t, kEntrySize> e{};
  std::memcpy(e.data(), name11, 11);
  e[12] = nt;
  return e;
}

TEST(FatFormat, ShortNamesHonourTheLowercaseFlagsAndCodePage437) {
  EXPECT_EQ(short_name(entry("README  TXT")), "README.TXT");
  EXPECT_EQ(short_name(entry("README  TXT", 0x08)), "readme.TXT");
  EXPECT_EQ(short_name(entry("README  TXT", 0x18)), "readme.txt");
  EXPECT_EQ(short_name(entry("MAKEFILE   ")), "MAKEFILE");
  EXPECT_EQ(short_name(entry("\x8eRGER   TXT")), "\xc3\x84RGER.TXT");  // 0x8E is Ä in code page 437
  EXPECT_EQ(short_name(entry("\005ABC    DAT")), "\317\203ABC.DAT");   // 0x05 stands for 0xE5 (σ, CF 83)
  EXPECT_EQ(short_name(entry("A/B     C  ")), "A_B.C");                // never a path separator
}

TEST(FatFormat, LongNameChecksumMatchesWhatMtoolsWrites) {
  // An 8.3 entry mtools made for a long name, and the checksum its long-name entry carried.
  EXPECT_EQ(short_name_checksum(entry("_SMILE~1TXT")), 0x8f);
}

TEST(FatFormat, Utf16WithSurrogatesBecomesUtf8) {
  const uint16_t smile[] = {0xd83d, 0xde00, ' ', 0x00e4};
  EXPECT_EQ(utf16_to_utf8(smile), "\xf0\x9f\x98\x80 \xc3\xa4");
  const uint16_t unpaired[] = {0xd800, 'a', 0xdc00};
  EXPECT_EQ(utf16_to_utf8(unpaired), "\357\277\275a\357\277\275");  // U+FFFD, a, U+FFFD
}

TEST(FatFormat, TimesAreLocalTimeReadAsUtcAtTwoSecondResolution) {
  // 2021-03-04 05:06:06: date (41 << 9 | 3 << 5 | 4), time (5 << 11 | 6 << 5 | 3).
  const uint16_t date = 41 << 9 | 3 << 5 | 4, time = 5 << 11 | 6 << 5 | 3;
  EXPECT_EQ(fat_time_ns(date, time), int64_t{1614834366} * 1'000'000'000);
  EXPECT_EQ(fat_time_ns(date, time, 199), int64_t{1614834366} * 1'000'000'000 + 1'990'000'000);
  EXPECT_EQ(fat_time_ns(0, 0), int64_t{315532800} * 1'000'000'000);  // zero fields: 1980-01-01
}

}  // namespace
}  // namespace arche::volume::fat
