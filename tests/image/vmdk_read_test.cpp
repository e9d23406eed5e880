// VMDKs made by qemu-img, in every subformat it writes, read by arche exactly as
// qemu-img reads them; parent (differencing) chains; what info and map report.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/filesystem.hpp>
#include <cstring>

#include "core/json.h"
#include "core/units.h"
#include "image/format.h"
#include "tests/image/vmdk_test_util.h"

namespace arche::test {
namespace {

// Just over 2 GiB and not a grain multiple: the split subformats get two extents,
// data crosses the extent boundary, and the disk ends in a short grain.
constexpr uint64_t kSize = (2ull << 30) + (5 << 20) + 512;
const std::vector<uint64_t> kExtra = {(2ull << 30) - (32 << 10), (2ull << 30) + (3 << 20)};

class QemuMadeVmdk : public ::testing::TestWithParam<std::string> {};

TEST_P(QemuMadeVmdk, ReadsLikeQemu) {
  ARCHE_REQUIRE_PROGRAM("qemu-img");
  const std::string subformat = GetParam();
  TempDir dir;
  const std::string src = dir.file("src.raw"), vmdk = dir.file("disk.vmdk");
  make_source(src, kSize, kExtra);
  must({"qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=" + subformat, src, vmdk});
  must({"qemu-img", "convert", "-f", "vmdk", "-O", "raw", vmdk, dir.file("qemu.raw")});

  // Through the CLI, against qemu's reading of the same file.
  CommandResult c = arche({"image", "convert", "-O", "raw", vmdk, dir.file("arche.raw")});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  must({"qemu-img", "compare", "-f", "raw", "-F", "raw", dir.file("qemu.raw"), dir.file("arche.raw")});
  must({"qemu-img", "compare", "-f", "raw", "-F", "raw", src, dir.file("arche.raw")});

  // Through the BlockDevice, across the extent boundary and at the very end.
  auto dev = image::open_image(vmdk);
  ASSERT_EQ(dev->format(), "vmdk");
  ASSERT_EQ(dev->size(), kSize);
  File raw = File::open(src, OpenMode::read_only);
  for (uint64_t at : {uint64_t{0}, uint64_t{(1 << 20) + 100}, kExtra[0] + 1000, kExtra[1] - 7, kSize - 70000}) {
    std::vector<uint8_t> want(65536), got(65536);
    raw.read_exact(at, want);
    dev->read(at, got);
    EXPECT_EQ(want, got) << "at " << at;
  }

  // info names the subformat and the extents.
  CommandResult info = arche({"image", "info", "--json", vmdk});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  Json j = Json::parse(info.out);
  EXPECT_EQ(j["format"], "vmdk");
  EXPECT_EQ(j["virtual-size"], kSize);
  EXPECT_EQ(j["format-specific"]["data"]["subformat"], subformat);
  EXPECT_EQ(j["format-specific"]["data"]["create-type"], subformat);
  const size_t extents = j["format-specific"]["data"]["extents"].size();
  EXPECT_EQ(extents, subformat.rfind("twoGb", 0) == 0 ? 2u : 1u);

  // Sparse subformats say where nothing is stored; holes are not data.
  if (subformat.find("Sparse") != std::string::npos || subformat == "streamOptimized") {
    uint64_t data = 0;
    for (const image::Extent& e : dev->map())
      if (e.kind == image::ExtentKind::data) data += e.length;
    EXPECT_LT(data, 16u << 20);  // ~7 MiB of data in a 2 GiB disk
    EXPECT_GE(data, 5u << 20);
  }
}

INSTANTIATE_TEST_SUITE_P(Subformats, QemuMadeVmdk,
                         ::testing::Values("monolithicSparse", "monolithicFlat", "twoGbMaxExtentSparse",
                                           "twoGbMaxExtentFlat", "streamOptimized"));

TEST(VmdkRead, ChildDiskFallsThroughToItsParent) {
  ARCHE_REQUIRE_PROGRAM("qemu-img");
  ARCHE_REQUIRE_PROGRAM("qemu-io");
  TempDir dir;
  const std::string base = dir.file("base.vmdk"), child = dir.file("child.vmdk");
  must({"qemu-img", "create", "-q", "-f", "vmdk", base, "64M"});
  must({"qemu-io", "-f", "vmdk", "-c", "write -P 0xaa 0 4M", "-c", "write -P 0xbb 10M 1M", base});
  must({"qemu-img", "create", "-q", "-f", "vmdk", "-o", "zeroed_grain=on", "-b", "base.vmdk", "-F", "vmdk", child});
  must({"qemu-io", "-f", "vmdk", "-c", "write -P 0xcc 1M 100k", "-c", "write -z 10M 64k", child});
  must({"qemu-img", "convert", "-O", "raw", child, dir.file("qemu.raw")});
  ASSERT_EQ(arche({"image", "convert", "-O", "raw", child, dir.file("arche.raw")}).exit_code, 0);
  must({"qemu-img", "compare", "-f", "raw", "-F", "raw", dir.file("qemu.raw"), dir.file("arche.raw")});

  auto dev = image::open_image(child);
  ASSERT_NE(dev->backing(), nullptr);
  EXPECT_EQ(dev->info().backing_file.value_or(""), "base.vmdk");
  // Exact layer status: the child's own grains, its zeroed grain, and unallocated
  // grains that fall through to the parent.
  image::LayerStatus own = dev->layer_status(1 << 20, 64 << 10);
  EXPECT_EQ(own.kind, image::ExtentKind::data);
  image::LayerStatus zeroed = dev->layer_status(10 << 20, 64 << 10);
  EXPECT_EQ(zeroed.kind, image::ExtentKind::zero);
  image::LayerStatus below = dev->layer_status(0, 64 << 10);
  EXPECT_EQ(below.kind, image::ExtentKind::unallocated);
  std::vector<uint8_t> buf(65536);
  dev->read(10 << 20, buf);
  EXPECT_TRUE(std::all_of(buf.begin(), buf.end(), [](uint8_t b) { return b == 0; }));
  dev->read((10 << 20) + (64 << 10), buf);
  EXPECT_TRUE(std::all_of(buf.begin(), buf.end(), [](uint8_t b) { return b == 0xbb; }));
  bool saw_parent = false;
  for (const image::Extent& e : dev->map())
    if (e.depth == 1 && e.kind == image::ExtentKind::data) saw_parent = true;
  EXPECT_TRUE(saw_parent);
}

TEST(VmdkRead, ChildOfAChangedParentIsRefused) {
  ARCHE_REQUIRE_PROGRAM("qemu-img");
  TempDir dir;
  const std::string base = dir.file("base.vmdk"), child = dir.file("child.vmdk");
  must({"qemu-img", "create", "-q", "-f", "vmdk", base, "8M"});
  must({"qemu-img", "create", "-q", "-f", "vmdk", "-b", "base.vmdk", "-F", "vmdk", child});
  ASSERT_EQ(arche({"image", "compare", base, child}).exit_code, 0);
  // Writing to the parent gives it a new content ID: the child no longer matches.
  ASSERT_EQ(arche({"image", "write", base, "0", "--pattern", "0x11", "--length", "4096"}).exit_code, 0);
  CommandResult r = arche({"image", "convert", "-O", "raw", child, dir.file("out.raw")});
  EXPECT_ONE_CLEAR_ERROR(r);
  EXPECT_NE(r.err.find("parentCID"), std::string::npos) << r.err;
  EXPECT_FALSE(boost::filesystem::exists(dir.file("out.raw")));
}

TEST(VmdkRead, ProbedAndListedAsVmdk) {
  ARCHE_REQUIRE_PROGRAM("qemu-img");
  TempDir dir;
  must({"qemu-img", "create", "-q", "-f", "vmdk", "-o", "subformat=monolithicFlat", dir.file("f.vmdk"), "1M"});
  must({"qemu-img", "create", "-q", "-f", "vmdk", dir.file("s.vmdk"), "1M"});
  EXPECT_EQ(image::probe_format(dir.file("f.vmdk")), "vmdk");  // the descriptor file
  EXPECT_EQ(image::probe_format(dir.file("s.vmdk")), "vmdk");
  EXPECT_EQ(image::probe_format(dir.file("f-flat.vmdk")), "raw");
  auto names = image::format_names();
  EXPECT_NE(std::find(names.begin(), names.end(), "vmdk"), names.end());
}

}  // namespace
}  // namespace arche::test
