// The FAT reader on damaged volumes: loops in cluster chains and in the
// directory tree, links to free or invalid clusters, short chains, truncated
// volumes and boot sectors that are not FAT. Each gives one corrupt or format
// error naming what is damaged; nothing hangs, nothing reads outside the volume.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>

#include "core/endian.h"
#include "core/error.h"
#include "core/file.h"
#include "tests/volume/fat_xfs_test_util.h"
#include "volume/fat_format.h"
#include "volume/readers.h"

namespace arche::test {
namespace {

struct Damage {
  TempDir dir;
  std::string image = dir.file("fat16.img");
  std::vector<uint8_t> bytes;
  volume::fat::Geometry g;

  // FAT16 (2 KiB clusters): /A.TXT of three clusters, /SUB/B.TXT.
  Damage() {
    run_ok({"mkfs.vfat", "-C", "-F", "16", "-s", "4", image, "16384"});
    write_file(dir.file("a"), random_bytes(5000, 1));
    write_file(dir.file("b"), random_bytes(100, 2));
    auto mtool = [&](const std::string& tool, const std::vector<std::string>& args) {
      std::vector<std::string> argv{"env", "MTOOLS_SKIP_CHECK=1", tool, "-i", image};
      argv.insert(argv.end(), args.begin(), args.end());
      run_ok(argv);
    };
    mtool("mcopy", {dir.file("a"), "::/A.TXT"});
    mtool("mmd", {"::/SUB"});
    mtool("mcopy", {dir.file("b"), "::/SUB/B.TXT"});
    bytes = read_file(image);
    g = volume::fat::parse_boot_sector(bytes);
  }

  // The 32-byte entry with this 8.3 name in the directory at `offset` (root if 0).
  uint8_t* entry(const char* name11, uint64_t offset = 0) {
    uint8_t* dir = bytes.data() + (offset ? offset : g.root_dir_offset());
    for (size_t i = 0; i < 512; ++i)
      if (std::memcmp(dir + 32 * i, name11, 11) == 0) return dir + 32 * i;
    ADD_FAILURE() << "no entry " << name11;
    return dir;
  }
  uint32_t cluster_of(const uint8_t* e) { return load_le16(e + 26); }
  void set_fat(uint32_t cluster, uint16_t value) { store_le16(bytes.data() + g.fat_offset(0) + 2 * cluster, value); }

  // Error category and message of `fn` on a copy with the damage (cut to
  // truncate_to bytes when given).
  std::pair<ErrorCategory, std::string> failure(const std::function<void(volume::Filesystem&)>& fn,
                                                size_t truncate_to = 0) {
    const std::string damaged = dir.file("damaged.img");
    std::vector<uint8_t> copy = bytes;
    if (truncate_to) copy.resize(truncate_to);
    write_file(damaged, copy);
    try {
      auto fs = volume::open_fat(open_raw(damaged));
      fn(*fs);
    } catch (const Error& e) {
      return {e.category(), e.what()};
    }
    return {ErrorCategory::internal, "no error"};
  }
};

void read_whole(volume::Filesystem& fs, const std::string& path) { (void)content_of(fs, path); }

TEST(FatCorrupt, ChainLoopIsReported) {
  Damage d;
  const uint32_t c = d.cluster_of(d.entry("A       TXT"));
  d.set_fat(c + 1, static_cast<uint16_t>(c));  // second cluster links back to the first
  auto [category, message] = d.failure([](auto& fs) { read_whole(fs, "/A.TXT"); });
  EXPECT_EQ(category, ErrorCategory::corrupt);
  EXPECT_NE(message.find("loop"), std::string::npos) << message;
}

TEST(FatCorrupt, LinkToFreeOrInvalidClusterIsReported) {
  Damage d;
  const uint32_t c = d.cluster_of(d.entry("A       TXT"));
  d.set_fat(c, 0);
  auto [category, message] = d.failure([](auto& fs) { read_whole(fs, "/A.TXT"); });
  EXPECT_EQ(category, ErrorCategory::corrupt);
  EXPECT_NE(message.find("/A.TXT"), std::string::npos) << message;
  EXPECT_NE(message.find("free cluster"), std::string::npos) << message;

  d.set_fat(c, 0xfff0);  // reserved value
  EXPECT_EQ(d.failure([](auto& fs) { read_whole(fs, "/A.TXT"); }).first, ErrorCategory::corrupt);
  store_le16(d.entry("A       TXT") + 26, 0xfff0);  // first cluster beyond the volume
  EXPECT_EQ(d.failure([](auto& fs) { read_whole(fs, "/A.TXT"); }).first, ErrorCategory::corrupt);
}

TEST(FatCorrupt, ShortChainFailsOnlyWhereDataIsMissing) {
  Damage d;
  const uint32_t c = d.cluster_of(d.entry("A       TXT"));
  d.set_fat(c, 0xffff);  // ends after one of three clusters
  auto [category, message] = d.failure([](auto& fs) {
    std::vector<uint8_t> first(2048);
    EXPECT_EQ(fs.read("/A.TXT", 0, first), first.size());  // the part that is there reads
    read_whole(fs, "/A.TXT");
  });
  EXPECT_EQ(category, ErrorCategory::corrupt);
  EXPECT_NE(message.find("ends after 1 clusters"), std::string::npos) << message;
}

TEST(FatCorrupt, DirectoryLoopsAreReported) {
  Damage d;
  const uint32_t sub = d.cluster_of(d.entry("SUB        "));
  // B.TXT becomes a directory that is SUB itself.
  uint8_t* b = d.entry("B       TXT", d.g.cluster_offset(sub));
  b[11] = volume::fat::kAttrDirectory;
  store_le16(b + 26, static_cast<uint16_t>(sub));
  auto [category, message] = d.failure([](auto& fs) { (void)fs.list("/SUB/B.TXT"); });
  EXPECT_EQ(category, ErrorCategory::corrupt);
  EXPECT_NE(message.find("loop"), std::string::npos) << message;

  // SUB's chain links to itself: bounded by the 65536-entry limit, then reported.
  Damage e;
  const uint32_t sub2 = e.cluster_of(e.entry("SUB        "));
  e.set_fat(sub2, static_cast<uint16_t>(sub2));
  EXPECT_EQ(e.failure([](auto& fs) { (void)fs.list("/SUB"); }).first, ErrorCategory::corrupt);
}

TEST(FatCorrupt, TruncatedVolumeFailsOnlyBeyondItsEnd) {
  Damage d;
  const uint32_t c = d.cluster_of(d.entry("A       TXT"));
  auto [category, message] =
      d.failure([](auto& fs) { read_whole(fs, "/A.TXT"); }, static_cast<size_t>(d.g.cluster_offset(c) + 100));
  EXPECT_EQ(category, ErrorCategory::corrupt);
  EXPECT_NE(message.find("beyond the end"), std::string::npos) << message;
  // Cut inside the FATs: refused at open.
  EXPECT_EQ(d.failure([](auto&) {}, static_cast<size_t>(d.g.fat_offset(1))).first, ErrorCategory::corrupt);
}

TEST(FatCorrupt, BootSectorsThatAreNotFatAreRefused) {
  Damage d;
  std::vector<uint8_t> saved = d.bytes;
  store_le16(d.bytes.data() + 11, 0);  // bytes per sector
  EXPECT_EQ(d.failure([](auto&) {}).first, ErrorCategory::format);
  d.bytes = saved;
  store_le16(d.bytes.data() + 22, 0);  // FATSz16 = 0 makes it FAT32-shaped: with 512 root entries that is corrupt
  EXPECT_EQ(d.failure([](auto&) {}).first, ErrorCategory::corrupt);
  d.bytes = saved;
  std::memcpy(d.bytes.data() + 3, "EXFAT   ", 8);
  auto [category, message] = d.failure([](auto&) {});
  EXPECT_EQ(category, ErrorCategory::format);
  EXPECT_NE(message.find("exFAT"), std::string::npos);
  d.bytes = random_bytes(65536, 5);
  EXPECT_EQ(d.failure([](auto&) {}).first, ErrorCategory::format);
}

}  // namespace
}  // namespace arche::test
