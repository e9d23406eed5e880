// LVM2: the metadata text parser, PV labels and metadata areas as lvm2 writes
// them, linear and striped LVs over two PVs, a VG across two images, and the
// volumes arche refuses (RAID1, thin, snapshot — metadata written by vgcfgrestore).
#include <gtest/gtest.h>

#include "core/endian.h"
#include "core/file.h"
#include "core/error.h"
#include "tests/volume/volume_test_util.h"
#include "volume/lvm.h"
#include "volume/lvm_metadata.h"
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

TEST(LvmMetadata, ParsesSectionsValuesAndArrays) {
  lvm::Section root = lvm::parse_metadata(
      "vg0 {\n  id = \"abc-def\"  # comment\n  seqno = 7\n  status = [\"READ\", \"WRITE\"]\n  empty = []\n"
      "  name = \"with \\\"quotes\\\" and \\\\\"\n  ratio = 1.5\n  neg = -3\n  sub { x = 1 }\n}\n"
      "contents = \"Text Format Volume Group\"\n");
  ASSERT_EQ(root.sections.size(), 1u);
  const lvm::Section& vg = root.sections[0].section;
  EXPECT_EQ(vg.value("id")->string, "abc-def");
  EXPECT_EQ(vg.value("seqno")->integer, 7);
  ASSERT_EQ(vg.value("status")->items.size(), 2u);
  EXPECT_EQ(vg.value("status")->items[1].string, "WRITE");
  EXPECT_TRUE(vg.value("empty")->items.empty());
  EXPECT_EQ(vg.value("name")->string, "with \"quotes\" and \\");
  EXPECT_EQ(vg.value("ratio")->kind, lvm::Value::Kind::real);
  EXPECT_EQ(vg.value("neg")->integer, -3);
  EXPECT_EQ(vg.section("sub")->value("x")->integer, 1);
  EXPECT_EQ(root.value("contents")->string, "Text Format Volume Group");
}

TEST(LvmMetadata, SyntaxErrorsNameTheLine) {
  auto message = [](const std::string& text) {
    try {
      lvm::parse_metadata(text);
    } catch (const Error& e) {
      EXPECT_EQ(e.category(), ErrorCategory::format);
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(message("vg {\n a = 1\n b = \n}").find("line 4"), std::string::npos);
  EXPECT_NE(message("vg {\n a = \"open\n").find("not closed"), std::string::npos);
  EXPECT_NE(message("vg { a = [1, [2]] }").find("nested"), std::string::npos);
  EXPECT_NE(message("vg { a = 99999999999999999999 }").find("out of range"), std::string::npos);
  EXPECT_NE(message("}").find("unexpected"), std::string::npos);
  std::string deep;
  for (int i = 0; i < 40; ++i) deep += "s" + std::to_string(i) + " {";
  EXPECT_NE(message(deep).find("too deeply"), std::string::npos);
}

TEST(LvmMetadata, CrcIsLvmsOwn) {
  // CRC-32 from 0xf597a6cf without final inversion; the labels and areas lvm2
  // writes (LvmDisk below) check against it too.
  const std::string digits = "123456789";
  EXPECT_EQ(lvm::lvm_crc(std::span(reinterpret_cast<const uint8_t*>(digits.data()), digits.size())), 0x4991cf02u);
  EXPECT_EQ(lvm::lvm_crc({}), 0xf597a6cfu);
}

class LvmDisk : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::is_root()) GTEST_SKIP() << "lvm2 needs loop devices (root) to make its PVs";
    make_fixture({"stage", stage});
    vg = make_fixture({"lvm", disk, stage});
  }
  test::TempDir dir;
  std::string stage = dir.file("stage"), disk = dir.file("lvm.img"), vg;
};

TEST_F(LvmDisk, LinearAndStripedVolumesReadBackAndOthersAreRefused) {
  std::unique_ptr<Tree> tree = explore_sandboxed({{"lvm.img", open_raw(disk)}});
  const auto& v = tree->volumes();
  const VolumeInfo& p1 = v[volume_index(*tree, "p1")];
  EXPECT_EQ(p1.content, "LVM2_member");
  EXPECT_EQ(p1.type_name, "Linux LVM");
  EXPECT_FALSE(p1.browsable);
  EXPECT_NE(p1.unsupported.find(vg + "/LV"), std::string::npos) << p1.unsupported;
  const VolumeInfo& g = v[volume_index(*tree, vg)];
  EXPECT_EQ(g.kind, VolumeKind::volume_group);
  EXPECT_EQ(g.pvs, (std::vector<std::string>{"lvm.img p1", "lvm.img p2"}));

  const size_t root = volume_index(*tree, vg + "/root");
  EXPECT_EQ(v[root].type_name, "linear");
  EXPECT_EQ(v[root].content, "ext4");
  EXPECT_EQ(v[root].label, "lvroot");
  EXPECT_EQ(v[root].size, 200u << 20);
  testing::Compare how;
  how.ignore = {"lost+found"};
  EXPECT_GE(expect_same_tree(tree->filesystem(root), "/", stage, how), 7u);
  Location l = resolve(*tree, 0, vg + "/root/home/kunde/wichtig.txt");
  EXPECT_EQ(l.volume, root);

  const size_t stripe = volume_index(*tree, vg + "/stripe");
  EXPECT_EQ(v[stripe].type_name, "striped");
  EXPECT_EQ(v[stripe].label, "streifen");
  expect_same_tree(tree->filesystem(stripe), "/", dir.file("stripe-tree"), how);

  const size_t data = volume_index(*tree, vg + "/data");
  EXPECT_EQ(v[data].content, "xfs");
  EXPECT_EQ(v[data].label, "xfsdaten");
  EXPECT_GE(expect_same_tree(tree->filesystem(data), "/", stage, testing::Compare{}), 7u);

  auto refused = [&](const std::string& name, const std::string& words) {
    const VolumeInfo& lv = v[volume_index(*tree, vg + "/" + name)];
    EXPECT_FALSE(lv.browsable) << name;
    EXPECT_NE(lv.unsupported.find(words), std::string::npos) << name << ": " << lv.unsupported;
    try {
      tree->filesystem(volume_index(*tree, vg + "/" + name));
      ADD_FAILURE() << name << " opened";
    } catch (const Error& e) {
      EXPECT_EQ(e.category(), ErrorCategory::unsupported);
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
  };
  refused("spiegel", "RAID volume (type raid1");
  refused("pool", "thin pool");
  refused("duenn", "thin volume");
  refused("schnapp", "snapshot of stripe");
  // Sub-volumes (RAID images, pool metadata, snapshotN) are not listed.
  for (const VolumeInfo& x : v) {
    EXPECT_EQ(x.name.find("rimage"), std::string::npos);
    EXPECT_EQ(x.name.find("tmeta"), std::string::npos);
    EXPECT_EQ(x.name.find("snapshot0"), std::string::npos);
  }
}

TEST_F(LvmDisk, DamagedMetadataFallsBackToTheOtherPv) {
  // Spoil the text in the first PV's metadata area; the second PV has a copy.
  std::shared_ptr<image::BlockDevice> dev = open_raw(disk);
  std::unique_ptr<Tree> before = explore({{"lvm.img", dev}});
  const VolumeInfo& p1 = before->volumes()[volume_index(*before, "p1")];
  auto pv = std::make_shared<SliceDevice>(dev, p1.offset, p1.size, "p1");
  std::optional<lvm::PvLabel> label = lvm::read_pv_label(*pv);
  ASSERT_TRUE(label);
  ASSERT_FALSE(label->metadata_areas.empty());
  std::vector<uint8_t> header(512);
  pv->read(label->metadata_areas[0].offset, header);
  const uint64_t text = label->metadata_areas[0].offset + load_le64(header.data() + 40);
  {
    File f = File::open(disk, OpenMode::read_write);
    std::vector<uint8_t> junk(64, 'X');
    f.write_all(p1.offset + text + 100, junk);
  }
  std::unique_ptr<Tree> tree = explore({{"lvm.img", open_raw(disk)}});
  const size_t root = volume_index(*tree, vg + "/root");
  EXPECT_TRUE(tree->volumes()[root].browsable);
  bool noted = false;
  for (const std::string& n : tree->volumes()[volume_index(*tree, "p1")].notes)
    noted |= n.find("fails its CRC") != std::string::npos;
  EXPECT_TRUE(noted);
  EXPECT_EQ(tree->filesystem(root).stat("/home/kunde/wichtig.txt").size, 25u);
}

TEST(LvmTwoDisks, AVolumeGroupAcrossTwoImages) {
  if (!test::is_root()) GTEST_SKIP() << "lvm2 needs loop devices (root) to make its PVs";
  test::TempDir dir;
  const std::string a = dir.file("a.img"), b = dir.file("b.img");
  const std::string vg = make_fixture({"lvm-two", a, b});
  std::unique_ptr<Tree> tree = explore_sandboxed({{"a.img", open_raw(a)}, {"b.img", open_raw(b)}});
  const size_t wide = volume_index(*tree, vg + "/wide");
  EXPECT_EQ(tree->volumes()[wide].content, "ext4");
  testing::Compare how;
  how.ignore = {"lost+found"};
  expect_same_tree(tree->filesystem(wide), "/", dir.file("wide-tree"), how);
  // Addressed from either disk.
  EXPECT_EQ(resolve(*tree, 1, vg + "/wide/a/b/gross.bin").volume, wide);

  // With only one of the images, the LV says which PV is missing.
  std::unique_ptr<Tree> half = explore({{"a.img", open_raw(a)}});
  const VolumeInfo& lv = half->volumes()[volume_index(*half, vg + "/wide")];
  EXPECT_FALSE(lv.browsable);
  EXPECT_NE(lv.unsupported.find("not on these disks"), std::string::npos) << lv.unsupported;
}

}  // namespace
}  // namespace arche::volume
