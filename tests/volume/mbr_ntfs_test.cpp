// An MBR disk with an NTFS primary partition (mkntfs, filled through ntfs-3g) and
// an extended partition holding a FAT32 and an ext2 logical partition.
#include <gtest/gtest.h>

#include "core/file.h"
#include "core/error.h"
#include "tests/volume/volume_test_util.h"
#include "volume/readers.h"
#include "volume/sandbox.h"
#include "volume/tree.h"

namespace arche::volume {
namespace {

using testing::expect_same_tree;
using testing::make_fixture;
using testing::open_raw;
using testing::volume_index;

bool can_fill_ntfs() { return test::is_root() && ::access("/dev/fuse", R_OK | W_OK) == 0; }

TEST(MbrNtfsDisk, PartitionsLogicalOnesAndNtfsFiles) {
  if (!can_fill_ntfs()) GTEST_SKIP() << "filling NTFS needs ntfs-3g through FUSE: root and /dev/fuse";
  test::TempDir dir;
  const std::string stage = dir.file("stage"), disk = dir.file("disk.img");
  make_fixture({"stage", stage});
  make_fixture({"mbr", disk, stage});
  std::unique_ptr<Tree> tree = explore_sandboxed({{"disk.img", open_raw(disk)}});
  const auto& v = tree->volumes();
  ASSERT_EQ(v.size(), 5u);
  EXPECT_EQ(v[0].content, "mbr");
  EXPECT_EQ(v[1].name, "p1");
  EXPECT_EQ(v[1].type_id, "0x07");
  EXPECT_EQ(v[1].content, "ntfs");
  EXPECT_EQ(v[2].name, "p2");
  EXPECT_EQ(v[2].content, "extended");
  EXPECT_FALSE(v[2].browsable);
  EXPECT_EQ(v[3].name, "p5");
  EXPECT_EQ(v[3].type_id, "0x0c");
  EXPECT_EQ(v[3].content, "fat32");
  EXPECT_EQ(v[3].label, "DATEN");
  EXPECT_EQ(v[4].name, "p6");
  EXPECT_EQ(v[4].content, "ext2");
  EXPECT_GT(v[4].offset, v[3].offset + v[3].size) << "logical partitions lie one after the other";

  Filesystem& ntfs = tree->filesystem(1);
  EXPECT_EQ(ntfs.type(), "ntfs");
  EXPECT_EQ(ntfs.label(), "Daten");  // from $Volume, not in the boot sector
  testing::Compare how;
  how.mode = false;   // NTFS keeps no POSIX modes ...
  how.owner = false;  // ... nor owners
  EXPECT_GE(expect_same_tree(ntfs, "/", stage, how), 7u);
  EXPECT_EQ(ntfs.streams("/home/kunde/wichtig.txt"), std::vector<std::string>{"Zone.Identifier"});
  EXPECT_TRUE(ntfs.streams("/home/kunde/gross.bin").empty());
  EXPECT_EQ(ntfs.stat("/home/kunde/Dokumente").mode, 0755u);

  // A logical partition is as readable as a primary one.
  Filesystem& ext2 = tree->filesystem(4);
  std::vector<uint8_t> buf(8);
  ASSERT_EQ(ext2.read("/sub/datei.txt", 0, buf), 8u);
  EXPECT_EQ(std::string(buf.begin(), buf.end()), "logisch\n");

  // The used ranges of NTFS (from $Bitmap, plus the backup boot sector) are enough
  // to rebuild the volume: copy just them and read every file back.
  std::vector<ByteRange> used = ntfs.used_ranges();
  uint64_t total = 0;
  for (const ByteRange& r : used) total += r.length;
  EXPECT_GE(total, 105u << 20);  // gross.bin; sparse.img is sparse on NTFS too
  EXPECT_LE(total, v[1].size - (50u << 20));
  const std::string copy = dir.file("ntfs-used.img");
  {
    File in = File::open(disk, OpenMode::read_only);
    File out = File::open(copy, OpenMode::create_new);
    out.truncate(v[1].size);
    std::vector<uint8_t> b;
    for (const ByteRange& r : used) {
      b.resize(r.length);
      in.read_exact(v[1].offset + r.offset, b);
      out.write_all(r.offset, b);
    }
  }
  test::CommandResult fix = test::run({"ntfsfix", "-n", copy});
  EXPECT_EQ(fix.exit_code, 0) << fix.out << fix.err;
  std::unique_ptr<Filesystem> again = open_ntfs(open_raw(copy));
  expect_same_tree(*again, "/", stage, how);
}

// The FAT32 logical partition (mkfs.vfat + mcopy) through the sandbox: names,
// sizes, bytes and times as they were put in (FAT keeps no owner, mode or links).
TEST(MbrNtfsDisk, Fat32LogicalPartition) {
  test::TempDir dir;
  const std::string stage = dir.file("stage"), disk = dir.file("disk.img");
  make_fixture({"stage", stage});
  make_fixture({"mbr", disk, stage});
  std::unique_ptr<Tree> tree = explore_sandboxed({{"disk.img", open_raw(disk)}});
  const size_t p5 = volume_index(*tree, "p5");
  ASSERT_EQ(tree->volumes()[p5].content, "fat32");
  EXPECT_EQ(tree->volumes()[p5].label, "DATEN");
  Filesystem& fat = tree->filesystem(p5);
  EXPECT_EQ(fat.type(), "fat32");
  testing::Compare how;
  how.mode = false;
  how.owner = false;
  how.symlinks = false;
  EXPECT_GE(expect_same_tree(fat, "/", stage, how), 7u);
}

}  // namespace
}  // namespace arche::volume
