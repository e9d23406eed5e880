// Disk and file system images made by other products (../shared/fixtures/
// real-images, README there): Windows-made VHD/VHDX with an MBR and NTFS,
// e2fsprogs' own test images (journals to recover, uninit extents, 16 KiB blocks,
// a zeroed primary superblock ...), dosfstools' FAT12 and an exFAT and an XFS image.
#include <gtest/gtest.h>

#include <boost/filesystem.hpp>

#include "image/format.h"
#include "core/error.h"
#include "tests/volume/volume_test_util.h"
#include "volume/sandbox.h"
#include "volume/tree.h"

namespace arche::volume {
namespace {

// ../shared/fixtures/real-images beside the clone ($ARCHE_REAL_IMAGES overrides;
// a worktree one level deeper finds it too).
std::string real_images() {
  if (const char* env = std::getenv("ARCHE_REAL_IMAGES")) return env;
  for (const char* up : {"/../shared/fixtures/real-images", "/../../shared/fixtures/real-images"})
    if (boost::filesystem::is_directory(std::string(ARCHE_SOURCE_DIR) + up)) return std::string(ARCHE_SOURCE_DIR) + up;
  return std::string(ARCHE_SOURCE_DIR) + "/../shared/fixtures/real-images";
}
const std::string kRoot = real_images();

#define SKIP_WITHOUT_REAL_IMAGES() \
  if (!boost::filesystem::is_directory(kRoot)) GTEST_SKIP() << kRoot << " is absent (not part of a clone)"

// Decompresses `rel` (.gz/.bz2, or as it is) into `dir`; returns the file.
std::string unpack(const test::TempDir& dir, const std::string& rel) {
  const std::string src = kRoot + "/" + rel;
  std::string name = boost::filesystem::path(rel).filename().string();
  std::string tool;
  if (name.ends_with(".gz")) tool = "gzip";
  if (name.ends_with(".bz2")) tool = "bzip2";
  if (!tool.empty()) name = name.substr(0, name.rfind('.'));
  const std::string out = dir.file(rel.substr(0, rel.find('/')) + "-" + std::to_string(std::hash<std::string>{}(rel)) + "-" + name);
  test::CommandResult r = tool.empty() ? test::run({"cp", src, out}) : test::run({"sh", "-c", tool + " -dc '" + src + "' > '" + out + "'"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return out;
}

std::unique_ptr<Tree> tree_of(const std::string& path, const std::string& format = "") {
  image::OpenOptions o;
  o.format = format;
  std::shared_ptr<image::BlockDevice> dev = image::open_image(path, o);
  return explore_sandboxed({{boost::filesystem::path(path).filename().string(), dev}});
}

std::vector<std::string> names(Filesystem& fs, const std::string& dir) {
  std::vector<std::string> out;
  for (const DirEntry& e : fs.list(dir)) out.push_back(e.name);
  std::sort(out.begin(), out.end());
  return out;
}

bool noted(const std::vector<std::string>& notes, const std::string& words) {
  for (const std::string& n : notes)
    if (n.find(words) != std::string::npos) return true;
  return false;
}

TEST(RealImages, WindowsVhdAndVhdxHoldAnMbrWithNtfs) {
  SKIP_WITHOUT_REAL_IMAGES();
  test::TempDir dir;
  for (const char* rel : {"fox-it__dissect.hypervisor/tests/_data/disk/vhd/fixed.vhd.gz",
                          "fox-it__dissect.hypervisor/tests/_data/disk/vhd/dynamic.vhd.gz",
                          "fox-it__dissect.hypervisor/tests/_data/disk/vhdx/fixed.vhdx.gz",
                          "fox-it__dissect.hypervisor/tests/_data/disk/vhdx/dynamic.vhdx.gz"}) {
    SCOPED_TRACE(rel);
    std::unique_ptr<Tree> tree = tree_of(unpack(dir, rel));
    const auto& v = tree->volumes();
    ASSERT_EQ(v.size(), 2u);
    EXPECT_EQ(v[0].content, "mbr");
    EXPECT_EQ(v[1].type_id, "0x07");
    EXPECT_EQ(v[1].content, "ntfs");
    Filesystem& fs = tree->filesystem(1);
    EXPECT_EQ(fs.label(), "New Volume");  // Windows' default, from $Volume
    EXPECT_TRUE(fs.list("/").empty()) << "system files are not listed";
    EXPECT_GT(fs.used_bytes(), 0u);
    uint64_t total = 0;
    for (const ByteRange& r : fs.used_ranges()) total += r.length;
    EXPECT_GT(total, 0u);
    EXPECT_LE(total, v[1].size);
  }
}

TEST(RealImages, E2fsprogsImages) {
  SKIP_WITHOUT_REAL_IMAGES();
  test::TempDir dir;
  const std::string e2 = "tytso__e2fsprogs/tests/";
  {
    // Uninitialised extents read as zeros: debugfs' "cat /a" in the test's expect.
    std::unique_ptr<Tree> tree = tree_of(unpack(dir, e2 + "f_uninit_cat/image.gz"), "raw");
    Filesystem& fs = tree->filesystem(0);
    std::vector<uint8_t> a(fs.stat("/a").size);
    ASSERT_EQ(a.size(), 3072u);
    ASSERT_EQ(fs.read("/a", 0, a), a.size());
    for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], i >= 1024 && i < 2048 ? 'x' : 0) << i;
  }
  {
    // A journal to recover (checksum v3, 64-bit): replayed in memory; e2fsck's
    // expect.2 lists /a/b afterwards.
    std::unique_ptr<Tree> tree = tree_of(unpack(dir, e2 + "j_recover_csum3_64bit/image.bz2"), "raw");
    Filesystem& fs = tree->filesystem(0);
    EXPECT_TRUE(noted(fs.notes(), "2 transactions")) << (fs.notes().empty() ? "" : fs.notes().back());
    EXPECT_EQ(names(fs, "/a"), std::vector<std::string>{"b"});
  }
  {
    std::unique_ptr<Tree> tree = tree_of(unpack(dir, e2 + "f_jnl_64bit/image.gz"), "raw");
    Filesystem& fs = tree->filesystem(0);
    EXPECT_TRUE(noted(fs.notes(), "replayed in memory"));
    EXPECT_EQ(names(fs, "/"), (std::vector<std::string>{"a", "b", "c", "d", "e", "f", "lost+found"}));
  }
  {
    // Fast commits are not replayed, and the note says so.
    std::unique_ptr<Tree> tree = tree_of(unpack(dir, e2 + "j_recover_fast_commit/image.gz"), "raw");
    EXPECT_TRUE(noted(tree->filesystem(0).notes(), "fast-commit records"));
  }
  {
    // The primary superblock zeroed: the backup in group 1 is used.
    std::unique_ptr<Tree> tree = tree_of(unpack(dir, e2 + "f_zero_super/image.gz"), "raw");
    ASSERT_TRUE(tree->volumes()[0].browsable);
    Filesystem& fs = tree->filesystem(0);
    EXPECT_TRUE(noted(fs.notes(), "primary superblock is damaged"));
    EXPECT_EQ(fs.stat("/issue").size, 63u);
  }
  {
    std::unique_ptr<Tree> tree = tree_of(unpack(dir, e2 + "f_16384_block/image.gz"), "raw");
    EXPECT_EQ(names(tree->filesystem(0), "/"), std::vector<std::string>{"lost+found"});
  }
  {
    // An HTREE directory of many entries.
    std::unique_ptr<Tree> tree = tree_of(unpack(dir, e2 + "f_h_normal/image.gz"), "raw");
    EXPECT_GT(tree->filesystem(0).list("/test2").size(), 1000u);
  }
  {
    // Inline-data symlinks (damaged ones are what e2fsck repairs there).
    std::unique_ptr<Tree> tree = tree_of(unpack(dir, e2 + "f_inlinedata_repair/image.gz"), "raw");
    Filesystem& fs = tree->filesystem(0);
    EXPECT_EQ(fs.stat("/1").type, FileType::symlink);
    EXPECT_FALSE(fs.readlink("/1").empty());
  }
  {
    // An XFS image is named xfs (e2fsprogs' f_detect_xfs), not taken for ext.
    std::unique_ptr<Tree> tree = tree_of(unpack(dir, e2 + "f_detect_xfs/image.bz2"), "raw");
    EXPECT_EQ(tree->volumes()[0].content, "xfs");
    EXPECT_EQ(tree->volumes()[0].label, "test_filsys");
  }
  {
    // Directory blocks that do not hold together: one clear error, no crash.
    std::unique_ptr<Tree> tree = tree_of(unpack(dir, e2 + "f_resize_inode_meta_bg/image.gz"), "raw");
    try {
      tree->filesystem(0).list("/");
      SUCCEED();
    } catch (const Error& e) {
      EXPECT_EQ(e.category(), ErrorCategory::corrupt) << e.what();
    }
  }
}

TEST(RealImages, FatExfatAndAGrubMbr) {
  SKIP_WITHOUT_REAL_IMAGES();
  test::TempDir dir;
  std::unique_ptr<Tree> fat = tree_of(unpack(dir, "fox-it__dissect.fat/tests/_data/fat12.bin"), "raw");
  EXPECT_EQ(fat->volumes()[0].content, "fat12");
  EXPECT_EQ(fat->volumes()[0].label, "VOLLAB1");
  std::unique_ptr<Tree> exfat = tree_of(unpack(dir, "fox-it__dissect.fat/tests/_data/exfat.bin"), "raw");
  EXPECT_EQ(exfat->volumes()[0].content, "exfat");
  EXPECT_NE(exfat->volumes()[0].unsupported.find("exfat is not read"), std::string::npos);
  // GRUB's boot sector begins with a jump like a FAT boot sector: it is an MBR
  // (cut off after its first sector, so both partitions lie beyond the end).
  std::unique_ptr<Tree> grub =
      tree_of(unpack(dir, "ilg-archived__qemu/tests/qemu-iotests/sample_images/grub_mbr.raw.bz2"), "raw");
  const auto& g = grub->volumes();
  ASSERT_EQ(g.size(), 3u);
  EXPECT_EQ(g[0].content, "mbr");
  EXPECT_EQ(g[1].type_name, "Linux");
  EXPECT_EQ(g[2].type_name, "Linux LVM");
  EXPECT_TRUE(noted(g[2].notes, "beyond the end of the disk"));
}

}  // namespace
}  // namespace arche::volume
