// An XFS volume made by another mkfs.xfs (e2fsprogs' f_detect_xfs test image,
// ../shared/fixtures/real-images): v4, the label e2fsprogs' tools report, and the
// tree xfs_db shows. Skipped, with the reason, where absent.
#include <gtest/gtest.h>

#include <boost/filesystem.hpp>

#include "tests/volume/xfs_fixture.h"
#include "volume/readers.h"

namespace arche::test {
namespace {

TEST(XfsRealImages, E2fsprogsDetectXfsImageOpensWithItsLabel) {
  const std::string dir = real_images_dir();
  const std::string packed = dir + "/tytso__e2fsprogs/tests/f_detect_xfs/image.bz2";
  if (dir.empty() || !boost::filesystem::exists(packed))
    GTEST_SKIP() << "real image f_detect_xfs absent (../shared/fixtures/real-images)";
  ARCHE_REQUIRE_PROGRAM("bzcat");
  TempDir tmp;
  const std::string image = tmp.file("xfs.img");
  write_file(image, [&] {
    const std::string raw = run_ok({"bzcat", packed}).out;
    return std::vector<uint8_t>(raw.begin(), raw.end());
  }());
  auto fs = volume::open_xfs(open_raw(image));
  EXPECT_EQ(fs->type(), "xfs");
  EXPECT_EQ(fs->label(), "test_filsys");  // what the image's expect file says
  std::string uuid = run_ok({"blkid", "-p", "-s", "UUID", "-o", "value", image}).out;
  EXPECT_EQ(fs->uuid() + "\n", uuid);
  EXPECT_EQ(xfs_db_field(image, "/", "core.version"), "2");
  // xfs_db lists the root as empty; so does the reader, and its used ranges are
  // what xfs_db does not count free.
  EXPECT_TRUE(fs->list("/").empty());
  const std::string freesp = xfs_db(image, {"freesp -s"});
  const uint64_t free_blocks = std::stoull(freesp.substr(freesp.find("total free blocks ") + 18));
  EXPECT_LE(total_length(fs->used_ranges()), (4096 - free_blocks + 8) * 4096);  // + the AGFL's reserve
  EXPECT_GE(total_length(fs->used_ranges()), (4096 - free_blocks) * 4096);
}

}  // namespace
}  // namespace arche::test
