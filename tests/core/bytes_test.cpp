#include "core/bytes.h"

#include <gtest/gtest.h>

namespace arche {
namespace {

TEST(ByteReader, ReadsBothByteOrders) {
  const uint8_t data[] = {0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0};
  ByteReader be(data, "test");
  EXPECT_EQ(be.be16(), 0x1234);
  EXPECT_EQ(be.be16(), 0x5678);
  EXPECT_EQ(be.be32(), 0x9abcdef0u);
  ByteReader le(data, "test");
  EXPECT_EQ(le.le64(), 0xf0debc9a78563412ull);
  EXPECT_EQ(le.remaining(), 0u);
}

TEST(ByteReader, TruncationIsAFormatErrorNamingTheStructure) {
  const uint8_t data[] = {1, 2, 3};
  ByteReader r(data, "widget header");
  r.u8();
  try {
    r.be32();
    FAIL() << "read past the end";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::format);
    EXPECT_NE(std::string(e.what()).find("widget header"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos);
  }
  EXPECT_THROW(r.seek(4), Error);
  EXPECT_NO_THROW(r.seek(3));
}

TEST(ByteWriter, RoundTripsThroughReader) {
  ByteWriter w;
  w.le32(0xdeadbeef);
  w.be64(42);
  w.string("abc");
  w.pad_to(8);
  EXPECT_EQ(w.size(), 16u);
  ByteReader r(w.buffer(), "t");
  EXPECT_EQ(r.le32(), 0xdeadbeefu);
  EXPECT_EQ(r.be64(), 42u);
  EXPECT_EQ(r.string(3), "abc");
}

TEST(Record, SealedRecordOpensAndDetectsDamage) {
  std::vector<uint8_t> payload = {1, 2, 3, 4, 5};
  std::vector<uint8_t> rec = seal_record("ARCHETST", {1, 2}, payload);
  OpenedRecord opened = open_record(rec, "ARCHETST", 1, "test record");
  EXPECT_EQ(opened.version.major, 1);
  EXPECT_EQ(opened.version.minor, 2);
  EXPECT_EQ(std::vector<uint8_t>(opened.payload.begin(), opened.payload.end()), payload);

  for (size_t i = 0; i < rec.size(); ++i) {
    std::vector<uint8_t> bad = rec;
    bad[i] ^= 0x40;
    EXPECT_THROW(open_record(bad, "ARCHETST", 1, "test record"), Error) << "flip at byte " << i;
  }
  try {
    open_record(rec, "ARCHETST", 0, "test record");
    FAIL() << "newer major version accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::unsupported);
  }
  try {
    open_record(rec, "OTHERMAG", 1, "test record");
    FAIL() << "wrong magic accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::format);
  }
  rec.pop_back();
  EXPECT_THROW(open_record(rec, "ARCHETST", 1, "test record"), Error);
}

TEST(AllZero, DetectsAnyNonZeroByte) {
  std::vector<uint8_t> buf(100000, 0);
  EXPECT_TRUE(all_zero(buf));
  EXPECT_TRUE(all_zero({}));
  for (size_t at : {size_t{0}, size_t{1}, size_t{50000}, buf.size() - 1}) {
    buf[at] = 1;
    EXPECT_FALSE(all_zero(buf)) << at;
    buf[at] = 0;
  }
}

}  // namespace
}  // namespace arche
