// Reflink conversion (docs/image.md "Conversion"): where source and target sit on
// one file system that shares extents (XFS made with reflink=1, btrfs), `image
// convert` makes the target's data clusters share the source's extents instead of
// copying them. The referees: qemu-img compare and check, and FIEMAP's
// FIEMAP_EXTENT_SHARED flag. A write to the target afterwards must leave the source
// as it was (the file system copies on write), and a file system that cannot share
// gets an ordinary copy.
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>
#include <cstring>

#include "core/file.h"
#include "core/json.h"
#include "tests/common/test_util.h"

namespace arche::test {
namespace {

constexpr uint64_t kMiB = 1 << 20;
// Not a multiple of qcow2's 64 KiB clusters: the last cluster is copied, not shared.
constexpr uint64_t kDiskSize = 256 * kMiB + 20 * 1024;

CommandResult run_ok(const std::vector<std::string>& argv) {
  CommandResult r = run(argv);
  EXPECT_EQ(r.exit_code, 0) << argv[0] << ": " << r.out << r.err;
  return r;
}

// Bytes of `path` in extents FIEMAP marks shared.
uint64_t shared_bytes(const std::string& path) {
  File f = File::open(path, OpenMode::read_only);
  constexpr unsigned kExtents = 512;
  std::vector<uint8_t> buf(sizeof(fiemap) + kExtents * sizeof(fiemap_extent));
  uint64_t shared = 0, start = 0;
  for (;;) {
    auto* map = reinterpret_cast<fiemap*>(buf.data());
    *map = {};
    map->fm_start = start;
    map->fm_length = FIEMAP_MAX_OFFSET;
    map->fm_flags = FIEMAP_FLAG_SYNC;
    map->fm_extent_count = kExtents;
    if (::ioctl(f.fd(), FS_IOC_FIEMAP, map) != 0) {
      ADD_FAILURE() << "FIEMAP " << path << ": " << std::strerror(errno);
      return 0;
    }
    if (map->fm_mapped_extents == 0) return shared;
    bool last = false;
    for (unsigned i = 0; i < map->fm_mapped_extents; ++i) {
      const fiemap_extent& e = map->fm_extents[i];
      if (e.fe_flags & FIEMAP_EXTENT_SHARED) shared += e.fe_length;
      last = e.fe_flags & FIEMAP_EXTENT_LAST;
      start = e.fe_logical + e.fe_length;
    }
    if (last) return shared;
  }
}

nlohmann::json convert_json(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"image", "convert", "--json"};
  argv.insert(argv.end(), args.begin(), args.end());
  CommandResult r = arche(argv);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.exit_code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json::object();
}

void expect_same(const std::string& a, const std::string& b) {
  CommandResult r = run({"qemu-img", "compare", "-q", a, b});
  EXPECT_EQ(r.exit_code, 0) << a << " vs " << b << ": " << r.out << r.err;
}

// A sparse raw disk: data regions aligned and unaligned to 64 KiB, one at the end.
std::vector<std::pair<uint64_t, uint64_t>> write_source(const std::string& path) {
  const std::vector<std::pair<uint64_t, uint64_t>> regions{
      {0, 3 * kMiB}, {64 * kMiB + 12 * 1024, 5 * kMiB + 4096}, {200 * kMiB, 16 * kMiB}, {kDiskSize - 36 * 1024, 36 * 1024}};
  File f = File::open(path, OpenMode::create_new);
  f.truncate(kDiskSize);
  uint64_t seed = 1;
  for (auto [offset, length] : regions) f.write_all(offset, random_bytes(length, seed++));
  f.sync();
  return regions;
}

std::string sha256(const std::string& path) { return run_ok({"sha256sum", path}).out.substr(0, 64); }

struct SharingFs {
  const char* name;
  std::vector<std::string> mkfs;
};

class ReflinkConvert : public ::testing::TestWithParam<SharingFs> {};

TEST_P(ReflinkConvert, TargetsShareTheSourcesExtentsAndEqualIt) {
  ARCHE_SKIP_UNLESS_ROOT();
  ARCHE_REQUIRE_PROGRAM("qemu-img");
  ARCHE_REQUIRE_PROGRAM(GetParam().mkfs[0]);
  TempDir dir;
  const std::string fs_image = dir.file("fs.img"), mnt = dir.file("mnt");
  File::open(fs_image, OpenMode::create_new).truncate(1024 * kMiB);
  std::vector<std::string> mkfs = GetParam().mkfs;
  mkfs.push_back(fs_image);
  run_ok(mkfs);
  LoopMount mount(fs_image, mnt, "rw");

  const std::string src = mnt + "/src.raw";
  write_source(src);
  const std::string digest = sha256(src);

  // raw -> qcow2: every whole 64 KiB cluster of data shared, the edges copied.
  const std::string q = mnt + "/a.qcow2";
  nlohmann::json a = convert_json({"-O", "qcow2", src, q});
  const uint64_t data = 3 * kMiB + (5 * kMiB + 4096) + 16 * kMiB + 36 * 1024;
  EXPECT_GE(a.value("bytes-cloned", uint64_t{0}), data - 4 * 64 * 1024) << a.dump();
  // (What is copied is counted in whole blocks of the target, its edges included.)
  const uint64_t stored = a.value("bytes-cloned", uint64_t{0}) + a.value("bytes-written", uint64_t{0});
  EXPECT_GE(stored, data) << a.dump();
  EXPECT_LE(stored, data + 4 * 64 * 1024) << a.dump();
  expect_same(src, q);
  CommandResult check = run({"qemu-img", "check", q});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  EXPECT_GE(shared_bytes(q), a.value("bytes-cloned", uint64_t{0}));

  // qcow2 -> raw and raw -> raw share the same extents again.
  const std::string r = mnt + "/b.raw", c = mnt + "/c.raw";
  nlohmann::json b = convert_json({"-O", "raw", q, r});
  EXPECT_GE(b.value("bytes-cloned", uint64_t{0}), a.value("bytes-cloned", uint64_t{0})) << b.dump();
  nlohmann::json cc = convert_json({"-f", "raw", "-O", "raw", src, c});
  EXPECT_GE(cc.value("bytes-cloned", uint64_t{0}), data - 4096) << cc.dump();
  expect_same(src, r);
  EXPECT_EQ(sha256(c), digest);
  EXPECT_GE(shared_bytes(c), data - 4096);

  // Copy on write: writing the targets leaves the source (and each other) alone.
  run_ok({"qemu-io", "-f", "qcow2", "-c", "write -P 0x55 0 1M", q});
  run_ok({"qemu-io", "-f", "raw", "-c", "write -P 0x66 200M 64k", c});
  EXPECT_EQ(sha256(src), digest);
  expect_same(src, r);
  EXPECT_NE(run({"qemu-img", "compare", "-q", src, q}).exit_code, 0);

  // --no-reflink copies.
  const std::string d = mnt + "/d.qcow2";
  nlohmann::json dj = convert_json({"--no-reflink", "-O", "qcow2", src, d});
  EXPECT_EQ(dj.value("bytes-cloned", uint64_t{1}), 0u) << dj.dump();
  EXPECT_EQ(shared_bytes(d), 0u);
  expect_same(src, d);
}

INSTANTIATE_TEST_SUITE_P(FileSystems, ReflinkConvert,
                         ::testing::Values(SharingFs{"xfs", {"mkfs.xfs", "-q", "-m", "reflink=1"}},
                                           SharingFs{"btrfs", {"mkfs.btrfs", "-q"}}),
                         [](const auto& info) { return std::string(info.param.name); });

// A file system that cannot share extents (the test directory's own, and XFS
// without reflink) gets an ordinary copy, the same bytes, nothing shared.
TEST(ReflinkConvertFallback, WithoutSharingTheDataIsCopied) {
  TempDir dir;
  const std::string src = dir.file("src.raw"), q = dir.file("a.qcow2");
  write_source(src);
  nlohmann::json a = convert_json({"-O", "qcow2", src, q});
  if (a.value("bytes-cloned", uint64_t{0}) > 0) GTEST_SKIP() << "the test directory's file system shares extents";
  EXPECT_GE(a.value("bytes-written", uint64_t{0}), 3 * kMiB + (5 * kMiB + 4096) + 16 * kMiB + 36 * 1024) << a.dump();
  expect_same(src, q);

  if (!is_root()) return;
  ARCHE_REQUIRE_PROGRAM("mkfs.xfs");
  const std::string fs_image = dir.file("fs.img"), mnt = dir.file("mnt");
  File::open(fs_image, OpenMode::create_new).truncate(512 * kMiB);
  run_ok({"mkfs.xfs", "-q", "-m", "reflink=0", fs_image});
  LoopMount mount(fs_image, mnt, "rw");
  const std::string s2 = mnt + "/src.raw", r2 = mnt + "/b.raw";
  write_source(s2);
  nlohmann::json b = convert_json({"-O", "raw", s2, r2});
  EXPECT_EQ(b.value("bytes-cloned", uint64_t{1}), 0u) << b.dump();
  expect_same(s2, r2);
}

}  // namespace
}  // namespace arche::test
