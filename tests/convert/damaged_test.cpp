// Acceptance 5: damaged partition tables and file systems are copied whole, the
// output says so, and the image holds every byte of them.
#include <gtest/gtest.h>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "core/file.h"
#include "tests/convert/convert_test_util.h"

namespace arche::convert::testing {
namespace {

using arche::test::run;
using arche::test::TempDir;

void overwrite(const std::string& file, uint64_t offset, const std::vector<uint8_t>& bytes) {
  File f = File::open(file, OpenMode::read_write);
  f.write_all(offset, bytes);
}

// An MBR disk: p1 an ext4 whose group descriptors are garbage, p2 random bytes
// (nothing arche knows), p3 a healthy ext4.
std::string make_damaged_disk(const TempDir& dir) {
  const std::string disk = dir.file("damaged.raw");
  EXPECT_EQ(run({"truncate", "-s", "96M", disk}).exit_code, 0);
  EXPECT_EQ(run({"sfdisk", "-q", disk}, "label: dos\nsize=32M, type=83\nsize=16M, type=83\nsize=32M, type=83\n").exit_code, 0);
  const std::string fs = dir.file("fs.img");
  EXPECT_EQ(run({"truncate", "-s", "32M", fs}).exit_code, 0);
  EXPECT_EQ(run({"mkfs.ext4", "-q", "-b", "4096", "-L", "kaputt", fs}).exit_code, 0);
  auto put = [&](uint64_t offset) {
    EXPECT_EQ(run({"dd", "if=" + fs, "of=" + disk, "bs=1M", "oflag=seek_bytes", "seek=" + std::to_string(offset),
                   "conv=notrunc", "status=none"}).exit_code, 0);
  };
  put(1 << 20);              // p1
  put((1 + 32 + 16) << 20);  // p3
  // p1: the group descriptor table (block 1) overwritten, so libext2fs refuses it.
  overwrite(disk, (1 << 20) + 4096, arche::test::random_bytes(4096, 1));
  overwrite(disk, (1 + 32) << 20, arche::test::random_bytes(16 << 20, 2));
  return disk;
}

TEST(DamagedDisks, UnreadableVolumesAreCopiedWholeAndSaidSo) {
  ARCHE_REQUIRE_PROGRAM("sfdisk");
  TempDir dir;
  const std::string disk = make_damaged_disk(dir);
  const UsedMap m = map_of({disk});
  ASSERT_EQ(m.volumes.size(), 4u);  // layout, p1, p2, p3
  const CopiedVolume& p1 = m.volumes[1];
  EXPECT_EQ(p1.volume, "p1");
  EXPECT_EQ(p1.method, CopyMethod::whole);
  // libext2fs opens it (with checksums off after the mismatch) and reads garbage
  // bitmaps; the map is refused because it covers far less than the superblock counts.
  EXPECT_NE(p1.reason.find("ext4"), std::string::npos) << p1.reason;
  EXPECT_EQ(p1.selected, 32u << 20);
  EXPECT_EQ(m.volumes[2].method, CopyMethod::whole);
  EXPECT_EQ(m.volumes[2].reason, "holds nothing arche recognises");
  EXPECT_EQ(m.volumes[3].method, CopyMethod::used_ranges);  // the healthy one is still mapped

  auto r = run({arche::test::arche_binary(), "p2v", "image", disk, "--to", dir.file("out.qcow2")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("COPIED WHOLE: ext4"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("COPIED WHOLE: holds nothing arche recognises"), std::string::npos) << r.out;
  expect_image_matches(disk, dir.file("out.qcow2"), m.disks[0]);
}

TEST(DamagedDisks, GptWithBothHeadersBrokenIsCopiedWhole) {
  ARCHE_REQUIRE_PROGRAM("sfdisk");
  TempDir dir;
  const std::string disk = dir.file("gpt.raw");
  ASSERT_EQ(run({"truncate", "-s", "40M", disk}).exit_code, 0);
  ASSERT_EQ(run({"sfdisk", "-q", disk}, "label: gpt\nsize=16M, type=L\nsize=16M, type=L\n").exit_code, 0);
  overwrite(disk, 1 << 20, arche::test::random_bytes(8 << 20, 3));  // data in p1
  // Both GPT headers' CRCs broken: one byte of each header's disk GUID.
  overwrite(disk, 512 + 56, {0xff});
  overwrite(disk, (40u << 20) - 512 + 56, {0xff});
  const UsedMap m = map_of({disk});
  ASSERT_EQ(m.volumes.size(), 1u);
  EXPECT_EQ(m.volumes[0].method, CopyMethod::whole);
  EXPECT_NE(m.volumes[0].reason.find("GPT"), std::string::npos) << m.volumes[0].reason;
  EXPECT_EQ(m.disks[0].bytes(), 40u << 20);

  auto r = run({arche::test::arche_binary(), "p2v", "image", disk, "--to", dir.file("out.raw"), "-O", "raw", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["volumes"][0]["method"], "whole");
  EXPECT_FALSE(doc["volumes"][0]["reason"].is_null());
  // Every byte of the disk is in the image (the random data in p1 included).
  EXPECT_EQ(run({"cmp", disk, dir.file("out.raw")}).exit_code, 0);
}

TEST(DamagedDisks, MissingSourceIsOneClearError) {
  TempDir dir;
  auto r = run({arche::test::arche_binary(), "p2v", "image", dir.file("nope.raw"), "--to", dir.file("out.qcow2")});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("nope.raw"), std::string::npos) << r.err;
  EXPECT_NE(::access(dir.file("out.qcow2").c_str(), F_OK), 0);
}

}  // namespace
}  // namespace arche::convert::testing
