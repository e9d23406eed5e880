// core/hex.h: the one hex codec (libsodium underneath).
#include <gtest/gtest.h>

#include "core/hex.h"

namespace arche {
namespace {

TEST(Hex, RoundTrip) {
  std::vector<uint8_t> bytes = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
  EXPECT_EQ(to_hex(bytes), "00017f80abff");
  EXPECT_EQ(from_hex("00017f80abff"), bytes);
  EXPECT_EQ(from_hex("00017F80ABFF"), bytes) << "upper case is accepted";
  EXPECT_EQ(to_hex(std::vector<uint8_t>{}), "");
  EXPECT_EQ(from_hex(""), std::vector<uint8_t>{});
}

TEST(Hex, RejectsWhatIsNotHex) {
  EXPECT_FALSE(from_hex("abc").has_value()) << "odd length";
  EXPECT_FALSE(from_hex("zz").has_value());
  EXPECT_FALSE(from_hex("00 1").has_value());
  EXPECT_FALSE(from_hex("0g").has_value());
  std::array<uint8_t, 2> out{};
  EXPECT_FALSE(from_hex("aabbcc", out)) << "wrong length for the buffer";
  EXPECT_TRUE(from_hex("aabb", out));
  EXPECT_EQ(out[1], 0xbb);
}

}  // namespace
}  // namespace arche
