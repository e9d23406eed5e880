#include "core/crc32c.h"

#include <gtest/gtest.h>

#include <cstring>

#include "tests/common/test_util.h"

namespace arche {
namespace {

TEST(Crc32c, KnownVectors) {
  // RFC 3720 (iSCSI) test vectors.
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);
  uint8_t zeros[32] = {};
  EXPECT_EQ(crc32c(zeros, sizeof zeros), 0x8A9136AAu);
  uint8_t ones[32];
  std::memset(ones, 0xff, sizeof ones);
  EXPECT_EQ(crc32c(ones, sizeof ones), 0x62A8AB43u);
  uint8_t ascending[32];
  for (int i = 0; i < 32; ++i) ascending[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(crc32c(ascending, sizeof ascending), 0x46DD794Eu);
  EXPECT_EQ(crc32c("", 0), 0u);
}

TEST(Crc32c, IncrementalEqualsWhole) {
  std::vector<uint8_t> data = test::random_bytes(1 << 20, 7);
  uint32_t whole = crc32c(data.data(), data.size());
  // Odd piece sizes exercise the unaligned head/tail paths.
  uint32_t running = 0;
  size_t pos = 0, piece = 1;
  while (pos < data.size()) {
    size_t n = std::min(piece, data.size() - pos);
    running = crc32c(running, data.data() + pos, n);
    pos += n;
    piece = piece * 3 + 1;
  }
  EXPECT_EQ(running, whole);
  data[12345] ^= 1;
  EXPECT_NE(crc32c(data.data(), data.size()), whole);
}

}  // namespace
}  // namespace arche
