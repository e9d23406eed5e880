// A GPT disk with an ext4 partition made by mkfs.ext4 -d, read back in this
// process and through the sandbox; the used ranges hold everything; journal
// replay into memory; the errors a path can meet.
#include <gtest/gtest.h>

#include <boost/filesystem.hpp>
#include <limits>

#include "core/file.h"
#include "image/raw.h"
#include "core/error.h"
#include "tests/volume/volume_test_util.h"
#include "volume/lvm.h"
#include "volume/readers.h"
#include "volume/sandbox.h"
#include "volume/tree.h"
#include "volume/views.h"
#include "volume/volume_path.h"

namespace arche::volume {
namespace {

using testing::expect_same_tree;
using testing::make_fixture;
using testing::open_raw;
using testing::volume_index;

struct GptExt4 {
  test::TempDir dir;
  std::string stage = dir.file("stage"), disk = dir.file("disk.img");
  GptExt4() {
    make_fixture({"stage", stage});
    make_fixture({"gpt-ext4", disk, stage});
  }
};

void expect_gpt_ext4_volumes(const Tree& tree) {
  const auto& v = tree.volumes();
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0].kind, VolumeKind::disk);
  EXPECT_EQ(v[0].content, "gpt");
  EXPECT_FALSE(v[0].browsable);
  EXPECT_EQ(v[1].name, "p1");
  EXPECT_EQ(v[1].type_name, "Linux filesystem");
  EXPECT_EQ(v[1].part_name, "daten");
  EXPECT_EQ(v[1].content, "ext4");
  EXPECT_EQ(v[1].label, "wurzel");
  EXPECT_EQ(v[1].uuid, "5b3e2f5e-8d1f-4f6a-9a51-1c2b3d4e5f60");
  EXPECT_EQ(v[1].size, 240u << 20);
  EXPECT_TRUE(v[1].browsable);
  EXPECT_EQ(v[2].name, "p2");
  EXPECT_EQ(v[2].type_name, "Linux swap");
  EXPECT_EQ(v[2].content, "swap");
  EXPECT_EQ(v[2].label, "tausch");
  EXPECT_FALSE(v[2].browsable);
}

TEST(Ext4Disk, EveryFileReadsBackInProcessAndSandboxed) {
  GptExt4 f;
  testing::Compare how;
  how.ignore = {"lost+found"};
  {
    SCOPED_TRACE("in process");
    std::unique_ptr<Tree> tree = explore({{"disk.img", open_raw(f.disk)}});
    expect_gpt_ext4_volumes(*tree);
    Filesystem& fs = tree->filesystem(1);
    EXPECT_EQ(fs.type(), "ext4");
    EXPECT_GE(expect_same_tree(fs, "/", f.stage, how), 7u);
  }
  {
    SCOPED_TRACE("sandboxed");
    std::unique_ptr<Tree> tree = explore_sandboxed({{"disk.img", open_raw(f.disk)}});
    expect_gpt_ext4_volumes(*tree);
    Filesystem& fs = tree->filesystem(1);
    EXPECT_EQ(fs.label(), "wurzel");
    EXPECT_GE(expect_same_tree(fs, "/", f.stage, how), 7u);
    // Addresses resolve to the same places.
    Location l = resolve(*tree, 0, "p1/home/kunde//Dokumente/./2026/../../wichtig.txt");
    EXPECT_EQ(l.volume, 1u);
    EXPECT_EQ(l.path, "/home/kunde/wichtig.txt");
    EXPECT_EQ(fs.stat(l.path).size, 25u);
  }
}

TEST(Ext4Disk, PathErrorsSayWhatIsWrong) {
  GptExt4 f;
  std::unique_ptr<Tree> tree = explore_sandboxed({{"disk.img", open_raw(f.disk)}});
  Filesystem& fs = tree->filesystem(1);
  auto error_of = [&](auto&& call) -> std::pair<ErrorCategory, std::string> {
    try {
      call();
    } catch (const Error& e) {
      return {e.category(), e.what()};
    }
    return {ErrorCategory::internal, "no error"};
  };
  auto [c1, m1] = error_of([&] { fs.stat("/home/kunde/fehlt.txt"); });
  EXPECT_EQ(c1, ErrorCategory::not_found);
  EXPECT_NE(m1.find("/home/kunde/fehlt.txt"), std::string::npos) << m1;
  auto [c2, m2] = error_of([&] { fs.list("/home/kunde/wichtig.txt"); });
  EXPECT_EQ(c2, ErrorCategory::usage) << m2;
  auto [c3, m3] = error_of([&] { fs.stat("/home/kunde/link-zu-wichtig/x"); });
  EXPECT_EQ(c3, ErrorCategory::usage);
  EXPECT_NE(m3.find("symbolic link (to wichtig.txt)"), std::string::npos) << m3;
  auto [c4, m4] = error_of([&] { resolve(*tree, 0, "p7/etc"); });
  EXPECT_EQ(c4, ErrorCategory::not_found);
  EXPECT_NE(m4.find("p1, p2"), std::string::npos) << m4;
  auto [c5, m5] = error_of([&] { tree->filesystem(2); });
  EXPECT_EQ(c5, ErrorCategory::unsupported);
  EXPECT_NE(m5.find("swap"), std::string::npos) << m5;
  auto [c6, m6] = error_of([&] { resolve(*tree, 0, "/etc"); });
  EXPECT_EQ(c6, ErrorCategory::not_found) << m6;
  // After all these errors the sandbox still answers.
  EXPECT_EQ(fs.stat("/etc/app/config.ini").size, 18u);
}

// Copies only the used ranges of the partition into an empty file: e2fsck finds
// nothing wrong and every file is still there, byte for byte (what P2V relies on).
TEST(Ext4Disk, UsedRangesHoldAllDataAndMetadata) {
  GptExt4 f;
  std::unique_ptr<Tree> tree = explore_sandboxed({{"disk.img", open_raw(f.disk)}});
  const VolumeInfo& p1 = tree->volumes()[1];
  Filesystem& fs = tree->filesystem(1);
  // Groups whose block bitmap was never written: their metadata must still count.
  File part = File::open(f.disk, OpenMode::read_only);
  std::vector<uint8_t> p1_bytes(p1.size);
  part.read_exact(p1.offset, p1_bytes);
  test::write_file(f.dir.file("p1.img"), p1_bytes);
  test::CommandResult groups = test::run({"dumpe2fs", f.dir.file("p1.img")});
  ASSERT_NE(groups.out.find("BLOCK_UNINIT"), std::string::npos) << "the fixture has no BLOCK_UNINIT groups";
  std::vector<ByteRange> used = fs.used_ranges();
  ASSERT_FALSE(used.empty());
  uint64_t total = 0, prev_end = 0;
  for (size_t i = 0; i < used.size(); ++i) {
    if (i > 0) {
      EXPECT_GT(used[i].offset, prev_end) << "sorted, and adjacent ranges merged";
    }
    total += used[i].length;
    prev_end = used[i].offset + used[i].length;
  }
  EXPECT_LE(prev_end, p1.size);
  EXPECT_GE(total, 105u << 20) << "the files alone take 105 MiB (sparse.img is a hole)";
  EXPECT_LE(total, p1.size - (60u << 20)) << "the free space is not reported as used";
  EXPECT_EQ(total, fs.used_bytes()) << "the bitmaps agree with the superblock";

  const std::string copy = f.dir.file("used-only.img");
  {
    File in = File::open(f.disk, OpenMode::read_only);
    File out = File::open(copy, OpenMode::create_new);
    out.truncate(p1.size);
    std::vector<uint8_t> buf;
    for (const ByteRange& r : used) {
      buf.resize(r.length);
      in.read_exact(p1.offset + r.offset, buf);
      out.write_all(r.offset, buf);
    }
  }
  test::CommandResult fsck = test::run({"e2fsck", "-fn", copy});
  EXPECT_EQ(fsck.exit_code, 0) << fsck.out << fsck.err;
  std::unique_ptr<Filesystem> again = open_ext(open_raw(copy));
  testing::Compare how;
  how.ignore = {"lost+found"};
  expect_same_tree(*again, "/", f.stage, how);
}

// A transaction written into the journal with debugfs and never checkpointed:
// the reader replays it in memory (the new bytes are seen), the image file is
// not touched.
TEST(Ext4Disk, JournalIsReplayedIntoMemoryOnly) {
  test::TempDir dir;
  const std::string img = dir.file("fs.img");
  const std::string stage = dir.file("stage");
  boost::filesystem::create_directories(stage);
  test::write_file(stage + "/datei.txt", std::vector<uint8_t>(4096, 'a'));
  ASSERT_EQ(test::run({"truncate", "-s", "64M", img}).exit_code, 0);
  ASSERT_EQ(test::run({"mkfs.ext4", "-q", "-b", "4096", "-d", stage, img}).exit_code, 0);
  // Where the file's block is, and a block of new content for it.
  test::CommandResult blocks = test::run({"debugfs", "-R", "blocks /datei.txt", img});
  ASSERT_EQ(blocks.exit_code, 0);
  const std::string block = blocks.out.substr(0, blocks.out.find_first_of(" \n"));
  ASSERT_FALSE(block.empty()) << blocks.out << blocks.err;
  test::write_file(dir.file("neu"), std::vector<uint8_t>(4096, 'b'));
  const std::string commands = "jo\njw -b " + block + " " + dir.file("neu") + "\njc\n";
  test::write_file(dir.file("cmds"), std::vector<uint8_t>(commands.begin(), commands.end()));
  test::CommandResult jw = test::run({"debugfs", "-w", "-f", dir.file("cmds"), img});
  ASSERT_EQ(jw.exit_code, 0) << jw.err;
  test::CommandResult dump = test::run({"dumpe2fs", "-h", img});
  ASSERT_NE(dump.out.find("needs_recovery"), std::string::npos) << "debugfs left no transaction to replay";
  const std::vector<uint8_t> before = test::read_file(img);

  std::unique_ptr<Filesystem> fs = open_ext(open_raw(img));
  std::vector<uint8_t> got(4096);
  ASSERT_EQ(fs->read("/datei.txt", 0, got), 4096u);
  EXPECT_EQ(got, std::vector<uint8_t>(4096, 'b')) << "the journalled block is what the reader sees";
  bool noted = false;
  for (const std::string& n : fs->notes()) noted |= n.find("replayed in memory") != std::string::npos;
  EXPECT_TRUE(noted);
  EXPECT_EQ(test::read_file(img), before) << "the image itself is unchanged";
  // e2fsck, the referee, replays the same.
  ASSERT_LE(test::run({"e2fsck", "-fy", img}).exit_code, 1);
  test::CommandResult cat = test::run({"debugfs", "-R", "cat /datei.txt", img});
  EXPECT_EQ(cat.out, std::string(4096, 'b'));
}

// ext4 keeps times until 2446 (two epoch bits above the 32-bit seconds); FileStat's
// nanoseconds end in 2262. A time beyond (here set with debugfs, the referee) is
// shown as the last one there is, not wrapped into the past: the ext fuzz target
// found the overflow (a signed multiply, undefined behaviour) with such an inode.
TEST(Ext4Disk, TimesBeyond2262SaturateInsteadOfWrapping) {
  test::TempDir dir;
  const std::string img = dir.file("fs.img");
  const std::string stage = dir.file("stage");
  boost::filesystem::create_directories(stage);
  test::write_file(stage + "/f", std::vector<uint8_t>(10, 'x'));
  ASSERT_EQ(test::run({"truncate", "-s", "16M", img}).exit_code, 0);
  ASSERT_EQ(test::run({"mkfs.ext4", "-q", "-I", "256", "-d", stage, img}).exit_code, 0);
  // mtime 0x7fffffff with epoch bits 3: the year 2446. atime: an invalid
  // nanosecond field (2^30 - 1) in 2038, which still fits.
  for (const char* command : {"set_inode_field /f mtime @2147483647", "set_inode_field /f mtime_extra 3",
                              "set_inode_field /f atime @2147483647", "set_inode_field /f atime_extra 0xfffffffc"})
    ASSERT_EQ(test::run({"debugfs", "-w", "-R", command, img}).exit_code, 0) << command;
  test::CommandResult shown = test::run({"debugfs", "-R", "stat /f", img});
  ASSERT_NE(shown.out.find("2446"), std::string::npos) << "debugfs reads the mtime as 2446: " << shown.out;

  std::unique_ptr<Filesystem> fs = open_ext(open_raw(img));
  const FileStat st = fs->stat("/f");
  EXPECT_EQ(st.mtime_ns, std::numeric_limits<int64_t>::max());
  EXPECT_EQ(st.atime_ns, int64_t{0x7fffffff} * 1000000000 + 0x3fffffff);
  std::vector<uint8_t> got(10);
  EXPECT_EQ(fs->read("/f", 0, got), 10u);
}

}  // namespace
}  // namespace arche::volume
