// The XFS reader on damaged volumes, damaged with xfs_db -x (which recomputes v5
// CRCs, so the checks behind the CRCs are reached too) or byte by byte: each
// gives one clear error naming the structure, nothing hangs, nothing reads
// outside the volume.
#include <gtest/gtest.h>

#include <functional>

#include "core/error.h"
#include "core/file.h"
#include "tests/volume/xfs_fixture.h"
#include "volume/readers.h"

namespace arche::test {
namespace {

class XfsCorrupt : public ::testing::Test {
 protected:
  // A 512 MiB v5 (or v4) volume from a protofile: a short-form directory with a
  // subdirectory, a file of five blocks, a block directory and a directory with
  // a btree block map.
  void make(bool v5 = true) {
    write_file(dir_.file("h.txt"), {'h', 'i', '\n'});
    write_file(dir_.file("r.bin"), random_bytes(20000, 3));
    std::string proto = "a\n0 0\nd--755 0 0\na.txt ---644 0 0 " + dir_.file("h.txt") + "\nr.bin ---644 0 0 " +
                        dir_.file("r.bin") + "\nsub d--755 0 0\ninner d--755 0 0\n$\nb.txt ---644 0 0 " +
                        dir_.file("h.txt") + "\n$\nblockdir d--755 0 0\n";
    for (int i = 0; i < 30; ++i) proto += "entry-" + std::to_string(i) + " ---644 0 0 " + dir_.file("h.txt") + "\n";
    proto += "$\nbt d--755 0 0\n";
    for (int i = 0; i < 3000; ++i)
      proto += "entry-with-data-" + std::to_string(i) + " ---644 0 0 " + dir_.file("h.txt") + "\n";
    proto += "$\n$\n";
    write_file(dir_.file("proto"), std::vector<uint8_t>(proto.begin(), proto.end()));
    run_ok({"truncate", "-s", "512M", image_});
    run_ok({"mkfs.xfs", "-q", "-f", "-m", v5 ? "crc=1" : "crc=0", "-p", dir_.file("proto"), image_});
    ASSERT_EQ(xfs_db_field(image_, "/bt", "core.format"), "3 (btree)");
    ASSERT_EQ(xfs_db_field(image_, "/blockdir", "core.format"), "2 (extents)");
  }

  void xfs_db_write(const std::vector<std::string>& commands) {
    std::vector<std::string> argv{"xfs_db", "-x"};
    for (const auto& c : commands) argv.insert(argv.end(), {"-c", c});
    argv.push_back(image_);
    run_ok(argv);
  }

  std::string ino(const std::string& path) { return xfs_db_field(image_, path, "v3.inumber"); }

  // Category and message of `fn` on the (damaged) image, cut to truncate_to bytes when given.
  std::pair<ErrorCategory, std::string> failure(const std::function<void(volume::Filesystem&)>& fn,
                                                uint64_t truncate_to = 0) {
    if (truncate_to) File::open(image_, OpenMode::read_write).truncate(truncate_to);
    try {
      auto fs = volume::open_xfs(open_raw(image_));
      fn(*fs);
    } catch (const Error& e) {
      return {e.category(), e.what()};
    }
    return {ErrorCategory::internal, "no error"};
  }

  void expect_corrupt(const std::function<void(volume::Filesystem&)>& fn, const std::string& words) {
    auto [category, message] = failure(fn);
    EXPECT_EQ(category, ErrorCategory::corrupt) << message;
    EXPECT_NE(message.find(words), std::string::npos) << message;
  }

  TempDir dir_;
  std::string image_ = dir_.file("x.img");
};

TEST_F(XfsCorrupt, InodeCrcMismatchIsFoundAtOpen) {
  make();
  xfs_db_write({"inode 128", "write -c core.gid 5"});  // -c: leave the CRC wrong
  expect_corrupt([](auto&) {}, "inode 128: CRC mismatch");
}

TEST_F(XfsCorrupt, EntryNamingAFreeInodeIsReported) {
  make();
  // An inode after the last one mkfs allocated is free (xfs_db: mode 0).
  uint64_t free_ino = std::stoull(ino("/bt/entry-with-data-2999")) + 1;
  for (int tries = 0; xfs_db(image_, {"inode " + std::to_string(free_ino), "print core.mode"}) != "core.mode = 0\n";
       ++tries) {
    ASSERT_LT(tries, 64) << "no free inode after the last file's";
    ++free_ino;
  }
  xfs_db_write({"path /sub", "write u3.sfdir3.list[1].inumber.i4 " + std::to_string(free_ino)});
  expect_corrupt(
      [](auto& fs) {
        // Listed as unknown beside its intact sibling; stat says what is wrong.
        const auto entries = fs.list("/sub");
        ASSERT_EQ(entries.size(), 2u);
        EXPECT_EQ(entries[0].stat.type, volume::FileType::directory);
        EXPECT_EQ(entries[1].stat.type, volume::FileType::unknown);
        (void)fs.stat("/sub/b.txt");
      },
      "free in the inode btree");
}

TEST_F(XfsCorrupt, DirectoryLoopIsReported) {
  make();
  xfs_db_write({"path /sub", "write u3.sfdir3.list[0].inumber.i4 " + ino("/sub")});  // /sub/inner is /sub
  expect_corrupt([](auto& fs) { (void)fs.list("/sub/inner"); }, "loop");
}

TEST_F(XfsCorrupt, ExtentsOutsideTheVolumeOrTooManyAreRefused) {
  make();
  const std::string file = "inode " + ino("/r.bin");
  xfs_db_write({file, "write u3.bmx[0].startblock 99999999"});
  expect_corrupt([](auto& fs) { (void)content_of(fs, "/r.bin"); }, "leaves its AG");
  xfs_db_write({file, "write -d core.nextents 1000"});
  expect_corrupt([](auto& fs) { (void)fs.stat("/r.bin"); }, "do not fit");
}

TEST_F(XfsCorrupt, BlockMapVisitingABlockTwiceIsReported) {
  make();
  const std::string leaf = xfs_db_field(image_, "/bt", "u3.bmbt.ptrs[1]");
  xfs_db_write({"path /bt", "write -d u3.bmbt.numrecs 2", "write -d u3.bmbt.ptrs[2] " + leaf});
  expect_corrupt([](auto& fs) { (void)fs.list("/bt"); }, "twice");
}

TEST_F(XfsCorrupt, DirectoryBlockCrcMismatchIsReported) {
  make();
  const auto extents = xfs_db_extents(image_, "/blockdir", 4096, 32768);
  ASSERT_EQ(extents.size(), 1u);
  File f = File::open(image_, OpenMode::read_write);
  std::vector<uint8_t> byte(1);
  f.read_exact(extents[0].offset + 200, byte);
  byte[0] ^= 0x40;
  f.write_all(extents[0].offset + 200, byte);
  expect_corrupt([](auto& fs) { (void)fs.list("/blockdir"); }, "CRC");
}

TEST_F(XfsCorrupt, FreeSpaceThatDisagreesWithTheAgfFailsUsedRanges) {
  make();
  xfs_db_write({"agf 0", "write -d freeblks 7"});
  expect_corrupt([](auto& fs) { (void)fs.used_ranges(); }, "the AGF says 7");
}

TEST_F(XfsCorrupt, UnknownIncompatibleFeatureIsUnsupported) {
  make();
  const std::string incompat = xfs_db(image_, {"sb 0", "print features_incompat"});
  const unsigned long value = std::stoul(incompat.substr(incompat.find("0x")), nullptr, 16);
  xfs_db_write({"sb 0", fmt::format("write -d features_incompat {:#x}", value | 0x10000)});
  auto [category, message] = failure([](auto&) {});
  EXPECT_EQ(category, ErrorCategory::unsupported) << message;
}

TEST_F(XfsCorrupt, TruncatedVolumeFailsWhereItEnds) {
  make();
  auto [category, message] = failure([](auto& fs) { (void)fs.used_ranges(); }, 200 << 20);
  EXPECT_EQ(category, ErrorCategory::corrupt) << message;
  EXPECT_NE(message.find("beyond the end"), std::string::npos) << message;
}

TEST_F(XfsCorrupt, V4InodeWithoutCrcIsCheckedByItsContents) {
  make(false);
  xfs_db_write({"inode 128", "write core.magic 0"});
  expect_corrupt([](auto&) {}, "inode 128: bad magic");
}

TEST(XfsNotXfs, GarbageAndZerosAreFormatErrors) {
  TempDir dir;
  write_file(dir.file("zero"), std::vector<uint8_t>(1 << 20));
  write_file(dir.file("random"), random_bytes(1 << 20, 9));
  for (const char* name : {"zero", "random"}) {
    try {
      volume::open_xfs(open_raw(dir.file(name)));
      ADD_FAILURE() << name << " opened";
    } catch (const Error& e) {
      EXPECT_EQ(e.category(), ErrorCategory::format) << e.what();
    }
  }
}

}  // namespace
}  // namespace arche::test
