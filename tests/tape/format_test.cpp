// The on-tape record format: what is written reads back, and every kind of damage
// is named instead of being passed on.
#include <gtest/gtest.h>

#include "core/crc32c.h"
#include "core/error.h"
#include "tape/catalog.h"
#include "tape/record.h"

namespace arche::tape {
namespace {

std::vector<uint8_t> sealed_record(uint32_t size, const std::string& text, RecordHeader& h) {
  std::vector<uint8_t> r(size, 0);
  std::copy(text.begin(), text.end(), r.begin() + kRecordHeaderSize);
  h.record_size = size;
  h.payload_length = static_cast<uint32_t>(text.size());
  h.media_set = random_uuid();
  h.tape_sequence = 2;
  h.file_number = 5;
  h.record_number = 77;
  h.first_entry = 3;
  seal_record_header(r, h);
  return r;
}

TEST(TapeRecord, Crc32cIsTheOneTheFormatDocumentNames) {
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);  // docs/tape-format.md
}

TEST(TapeRecord, RoundTripsEveryField) {
  RecordHeader h;
  std::vector<uint8_t> r = sealed_record(8192, "hello tape", h);
  RecordHeader back;
  ASSERT_FALSE(check_record(r, back).has_value());
  EXPECT_EQ(back.media_set, h.media_set);
  EXPECT_EQ(back.tape_sequence, 2u);
  EXPECT_EQ(back.file_number, 5u);
  EXPECT_EQ(back.record_number, 77u);
  EXPECT_EQ(back.first_entry, 3u);
  EXPECT_EQ(back.payload_length, 10u);
  EXPECT_EQ(std::string(r.begin() + 64, r.begin() + 74), "hello tape");
}

TEST(TapeRecord, DamageIsFoundWhereverItIs) {
  RecordHeader h;
  const std::vector<uint8_t> good = sealed_record(8192, "payload bytes", h);
  for (size_t at : {0ul, 9ul, 30ul, 50ul, 61ul, 64ul, 70ul}) {
    std::vector<uint8_t> bad = good;
    bad[at] ^= 0x10;
    RecordHeader back;
    EXPECT_TRUE(check_record(bad, back).has_value()) << "flipped byte " << at;
  }
  RecordHeader back;
  std::vector<uint8_t> shorter(good.begin(), good.begin() + 4096);
  EXPECT_TRUE(check_record(shorter, back).has_value());
}

TEST(TapeRecord, FileHeaderAndEntryRoundTrip) {
  FileHeader h;
  h.type = ContentType::snapshot_archive;
  h.part = 3;
  h.archive = random_uuid();
  h.metadata = {{"snapshot", "abc"}};
  std::vector<uint8_t> bytes = encode_file_header(h);
  size_t length = 0;
  FileHeader back = decode_file_header(bytes, length, "test");
  EXPECT_EQ(length, bytes.size());
  EXPECT_EQ(back.type, ContentType::snapshot_archive);
  EXPECT_EQ(back.part, 3u);
  EXPECT_EQ(back.archive, h.archive);
  EXPECT_EQ(back.metadata["snapshot"], "abc");
  bytes[20] ^= 1;
  EXPECT_THROW(decode_file_header(bytes, length, "test"), Error);

  EntryHeader e{"data/ab/abcdef", 12345, 0xdeadbeef};
  std::vector<uint8_t> eb = encode_entry_header(e);
  EntryHeader eback;
  EXPECT_EQ(decode_entry_header(std::span(eb).first(10), eback, "t"), 0u);  // needs more
  EXPECT_EQ(decode_entry_header(eb, eback, "t"), eb.size());
  EXPECT_EQ(eback.name, e.name);
  EXPECT_EQ(eback.size, 12345u);
  EXPECT_EQ(eback.data_crc, 0xdeadbeefu);
}

TEST(TapeCatalog, EncodesAndDecodesToTheSame) {
  Catalog c;
  c.tapes.push_back({"u1",
                     "T1",
                     "pool",
                     "s1",
                     1,
                     "fp",
                     100,
                     262144,
                     true,
                     {{2, "chunk-archive", "a1", 1, 9, {{"data/00/00", 5, 0, 100}}}}});
  c.sets.push_back({"s1", "pool", "repo", "fp", 100, 200, 30, 4, {"u1"}});
  c.snapshots.push_back({"id1", "monday", "s1", "host", 123, {"/srv"}, {}, {"00"}, {"00"}});
  const Catalog back = decode_catalog(encode_catalog(c), "test");
  EXPECT_EQ(back, c);
  std::vector<uint8_t> bytes = encode_catalog(c);
  bytes[bytes.size() / 2] ^= 1;
  EXPECT_THROW(decode_catalog(bytes, "test"), Error);
}

}  // namespace
}  // namespace arche::tape
