// The raw driver: sparse files (holes are zero extents, discard punches holes,
// zero writes deallocate) and block devices (a loop device, when root).
#include <gtest/gtest.h>
#include <unistd.h>

#include "core/error.h"
#include "core/file.h"
#include "image/format.h"
#include "tests/image/image_test_util.h"

namespace arche::test {
namespace {

std::unique_ptr<image::BlockDevice> open_raw(const std::string& path, bool writable) {
  image::OpenOptions o;
  o.writable = writable;
  o.format = "raw";
  return image::open_image(path, o);
}

TEST(RawImage, HolesAreReportedAsZeroAndDiscardPunches) {
  TempDir dir;
  std::string f = dir.file("disk.raw");
  {
    File file = File::open(f, OpenMode::create_new);
    file.truncate(16 << 20);
    file.write_all(4 << 20, random_bytes(1 << 20, 1));
  }
  auto dev = open_raw(f, true);
  std::vector<image::Extent> map = dev->map();
  ASSERT_EQ(map.size(), 3u);
  EXPECT_EQ(map[0].kind, image::ExtentKind::zero);
  EXPECT_EQ(map[1].kind, image::ExtentKind::data);
  EXPECT_EQ(map[1].offset, 4u << 20);
  EXPECT_EQ(map[1].length, 1u << 20);
  EXPECT_EQ(map[2].kind, image::ExtentKind::zero);

  // Discard drops whole 4 KiB blocks only: the unaligned edges keep their data.
  std::vector<uint8_t> before(8192);
  dev->read((4 << 20) + 4096, before);
  dev->discard((4 << 20) + 100, 3 * 4096);
  std::vector<uint8_t> after(8192);
  dev->read((4 << 20) + 4096, after);
  EXPECT_EQ(std::vector<uint8_t>(after.begin(), after.begin() + 4096), std::vector<uint8_t>(4096, 0));
  std::vector<uint8_t> edge(100);
  dev->read(4 << 20, edge);
  EXPECT_NE(edge, std::vector<uint8_t>(100, 0)) << "the partial block before the range must stay";

  dev->write_zeroes(4 << 20, 1 << 20, true);
  EXPECT_TRUE(dev->known_zero(0, dev->size()));
  EXPECT_LT(File::open(f, OpenMode::read_only).allocated_bytes(), 64u << 10);
}

TEST(RawImage, ReadOnlyRefusesWritesAndBoundsAreChecked) {
  TempDir dir;
  write_file(dir.file("r.raw"), std::vector<uint8_t>(4096, 1));
  auto dev = open_raw(dir.file("r.raw"), false);
  std::vector<uint8_t> buf(512);
  EXPECT_THROW(dev->write(0, buf), Error);
  EXPECT_THROW(dev->read(4000, buf), Error);
  dev->read(3584, buf);
  EXPECT_EQ(buf[0], 1);
}

TEST(RawImage, SecondWriterIsRefused) {
  TempDir dir;
  write_file(dir.file("r.raw"), std::vector<uint8_t>(4096, 1));
  auto first = open_raw(dir.file("r.raw"), true);
  try {
    open_raw(dir.file("r.raw"), true);
    FAIL() << "two writers on one image";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::busy);
  }
  CommandResult r = arche({"image", "info", dir.file("r.raw")});
  EXPECT_EQ(r.exit_code, 75) << "a reader must not silently read an image being written: " << r.err;
  EXPECT_EQ(arche({"image", "info", "-U", dir.file("r.raw")}).exit_code, 0);
}

TEST(RawImage, LoopBlockDevice) {
  ARCHE_SKIP_UNLESS_ROOT();
  if (::access("/dev/loop-control", F_OK) != 0) GTEST_SKIP() << "no loop devices";
  TempDir dir;
  std::vector<uint8_t> data = random_bytes(8 << 20, 4);
  write_file(dir.file("backing.img"), data);
  CommandResult l = run({"losetup", "-f", "--show", dir.file("backing.img")});
  ASSERT_EQ(l.exit_code, 0) << l.err;
  std::string loop = l.out.substr(0, l.out.find('\n'));
  {
    auto dev = open_raw(loop, true);
    EXPECT_EQ(dev->size(), data.size());
    EXPECT_EQ(read_all(*dev), data);
    std::vector<uint8_t> patch = random_bytes(65536, 5);
    dev->write(1 << 20, patch);
    std::copy(patch.begin(), patch.end(), data.begin() + (1 << 20));
    dev->write_zeroes(2 << 20, 1 << 20, false);
    std::fill(data.begin() + (2 << 20), data.begin() + (3 << 20), 0);
    dev->flush();
    EXPECT_EQ(read_all(*dev), data);
    // A qcow2 converted from the device holds the same bytes.
    CommandResult c = arche({"image", "convert", "-U", "-O", "qcow2", loop, dir.file("dev.qcow2")});
    EXPECT_EQ(c.exit_code, 0) << c.err;
  }
  run({"losetup", "-d", loop});
  EXPECT_EQ(read_file(dir.file("backing.img")), data);
  EXPECT_EQ(read_all_arche(dir.file("dev.qcow2")), data);
}

}  // namespace
}  // namespace arche::test
