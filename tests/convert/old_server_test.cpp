// Acceptance 1: the "old server" (make_old_server.sh) imaged with `arche p2v
// image`: every used block equal, nothing else (the deleted data in free space
// stays out), the file systems pass their own checkers, the images hold at most
// 1.05x the used data, and every output format gives the same disk.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/file.h"
#include "tests/convert/convert_test_util.h"
#include "volume/tree.h"

namespace arche::convert::testing {
namespace {

using arche::test::run;
using arche::test::TempDir;

class OldServer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!arche::test::is_root() || ::access("/dev/fuse", R_OK | W_OK) != 0) return;
    dir_ = new TempDir();
    const auto r = run({"bash", std::string(ARCHE_SOURCE_DIR) + "/tests/convert/make_old_server.sh", dir_->path()});
    ok_ = r.exit_code == 0;
    if (!ok_) fixture_error_ = r.err;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (!arche::test::is_root()) GTEST_SKIP() << "needs root (loop devices, mounts)";
    if (::access("/dev/fuse", R_OK | W_OK) != 0) GTEST_SKIP() << "needs /dev/fuse (ntfs-3g)";
    ASSERT_TRUE(ok_) << "make_old_server.sh failed: " << fixture_error_;
  }
  static std::string sda() { return dir_->file("sda.raw"); }
  static std::string sdb() { return dir_->file("sdb.raw"); }
  // The VG's name is per fixture run (make_old_server.sh writes it).
  static std::string vg_name() {
    const auto bytes = arche::test::read_file(dir_->file("vg-name"));
    std::string s(bytes.begin(), bytes.end());
    while (!s.empty() && s.back() == '\n') s.pop_back();
    return s;
  }

  static TempDir* dir_;
  static bool ok_;
  static std::string fixture_error_;
};
TempDir* OldServer::dir_ = nullptr;
bool OldServer::ok_ = false;
std::string OldServer::fixture_error_;

const CopiedVolume* find(const UsedMap& m, uint32_t disk, const std::string& volume) {
  for (const CopiedVolume& v : m.volumes)
    if (v.disk == disk && v.volume == volume && v.method != CopyMethod::layout) return &v;
  return nullptr;
}

TEST_F(OldServer, MapSelectsUsedBlocksOfEveryVolume) {
  const UsedMap m = map_of({sda(), sdb()});
  const std::string vg = vg_name();
  struct Want {
    uint32_t disk;
    std::string volume, content;
    CopyMethod method;
  };
  for (const Want& w : std::vector<Want>{{0, "p1", "fat16", CopyMethod::used_ranges},
                                         {0, "p2", "ext4", CopyMethod::used_ranges},
                                         {0, "p3", "swap", CopyMethod::swap_header},
                                         {1, "p1", "xfs", CopyMethod::used_ranges},
                                         {1, "p2", "ntfs", CopyMethod::used_ranges},
                                         {1, "p3", "LVM2_member", CopyMethod::lvm},
                                         {1, vg + "/daten", "ext4", CopyMethod::used_ranges}}) {
    const CopiedVolume* v = find(m, w.disk, w.volume);
    ASSERT_NE(v, nullptr) << w.volume;
    EXPECT_EQ(v->content, w.content) << w.volume;
    EXPECT_EQ(v->method, w.method) << w.volume << ": " << v->reason;
    EXPECT_LT(v->selected, v->size) << w.volume;
    if (w.method == CopyMethod::used_ranges) {
      // The map covers what the file system counts as used, and not much more.
      EXPECT_GE(v->selected, v->fs_used * 95 / 100) << w.volume;
      EXPECT_LE(v->selected, v->fs_used * 105 / 100 + (1 << 20)) << w.volume;
    }
  }
  EXPECT_EQ(find(m, 0, "p3")->selected, 4096u);  // the swap header page, none of the old pages
  // The PV: label and metadata before the first extent (1 MiB) and the 3 MiB after
  // the last whole extent, not its 60 MiB of free extents.
  EXPECT_EQ(find(m, 1, "p3")->selected, 4u << 20);
  EXPECT_FALSE(m.any_whole());
  // The boot code before the first partition and the GPT at both ends are kept.
  ASSERT_FALSE(m.disks[0].ranges.empty());
  EXPECT_EQ(m.disks[0].ranges[0].offset, 0u);
  EXPECT_GE(m.disks[0].ranges[0].length, 2048u * 512);
  const volume::ByteRange& last = m.disks[1].ranges.back();
  EXPECT_EQ(last.offset + last.length, m.disks[1].size);
  EXPECT_GE(last.length, 33u * 512);
}

TEST_F(OldServer, ImagedDisksMatchPassCheckersAndHoldOnlyUsedData) {
  TempDir out;
  auto r = run({arche::test::arche_binary(), "p2v", "image", sda(), sdb(), "--to", out.path(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto doc = nlohmann::json::parse(r.out);
  ASSERT_EQ(doc["disks"].size(), 2u);
  EXPECT_EQ(doc["disks"][0]["target"], out.file("sda.qcow2"));
  EXPECT_EQ(doc["disks"][0]["format"], "qcow2");
  for (const auto& v : doc["volumes"]) EXPECT_NE(v["method"], "whole") << v.dump();

  const UsedMap m = map_of({sda(), sdb()});
  uint64_t used = 0, written = 0, file_bytes = 0;
  for (size_t d = 0; d < 2; ++d) {
    const std::string image = out.file(d == 0 ? "sda.qcow2" : "sdb.qcow2");
    EXPECT_EQ(expect_image_matches(d == 0 ? sda() : sdb(), image, m.disks[d]), m.disks[d].bytes());
    EXPECT_EQ(doc["disks"][d]["selected-bytes"], m.disks[d].bytes());
    used += m.disks[d].bytes();
    written += doc["disks"][d]["written-bytes"].get<uint64_t>();
    file_bytes += File::open(image, OpenMode::read_only).allocated_bytes();
  }
  // The used data is what the map selects that is not zeros (zeros stay holes). The
  // deleted data (120 + 30 + 150 + 30 + 30 MiB, 40 MiB of free extents and the 32 MiB
  // of old swap pages) would show here.
  EXPECT_LE(written, used);
  EXPECT_LE(file_bytes, written * 105 / 100) << "images " << file_bytes << " bytes for " << written << " used";

  // The real checkers on each file system, copied out of the images.
  auto check = [&](const std::string& image, uint32_t disk, const std::string& volume,
                   const std::vector<std::string>& checker) {
    std::vector<volume::Disk> disks;
    for (const std::string& p : {sda(), sdb()}) disks.push_back({p, open_read_only(p)});
    auto tree = volume::explore(disks);
    for (const volume::VolumeInfo& v : tree->volumes()) {
      if (v.disk != disk || v.name != volume) continue;
      ASSERT_EQ(v.placement.size(), 1u) << volume;
      const std::string file = out.file("check.img");
      copy_out(image, v.placement[0].areas[0].offset, v.size, file);
      std::vector<std::string> argv = checker;
      argv.push_back(file);
      const auto c = run(argv);
      EXPECT_EQ(c.exit_code, 0) << volume << ": " << c.out << c.err;
      ::unlink(file.c_str());
      return;
    }
    ADD_FAILURE() << "no volume " << volume;
  };
  const std::string vg = vg_name();
  check(out.file("sda.qcow2"), 0, "p1", {"fsck.vfat", "-n"});
  check(out.file("sda.qcow2"), 0, "p2", {"e2fsck", "-fn"});
  check(out.file("sdb.qcow2"), 1, "p1", {"xfs_repair", "-n", "-f"});
  check(out.file("sdb.qcow2"), 1, "p2", {"ntfsfix", "-n"});
  check(out.file("sdb.qcow2"), 1, vg + "/daten", {"e2fsck", "-fn"});
}

TEST_F(OldServer, EveryFormatGivesTheSameDisk) {
  TempDir out;
  for (const std::string format : {"qcow2", "vmdk", "vhdx", "raw"}) {
    const std::string target = out.file("sda." + format);
    auto r = run({arche::test::arche_binary(), "-q", "p2v", "image", sda(), "--to", target, "-O", format});
    ASSERT_EQ(r.exit_code, 0) << format << ": " << r.err;
    if (format != "qcow2") {
      auto c = run({"qemu-img", "compare", "-f", "qcow2", "-F", format == "vhdx" ? "vhdx" : format,
                    out.file("sda.qcow2"), target});
      EXPECT_EQ(c.exit_code, 0) << format << ": " << c.out << c.err;
    }
  }
  // An existing image is not replaced without --overwrite.
  auto again = run({arche::test::arche_binary(), "p2v", "image", sda(), "--to", out.file("sda.raw")});
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.err.find("already exists"), std::string::npos) << again.err;
}

}  // namespace
}  // namespace arche::convert::testing
