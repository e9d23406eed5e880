// Issue 11, acceptance 2: real images made by other products (Windows' VHD, the
// images of e2fsprogs' own test suite; ../shared/fixtures/real-images/README.md),
// backed up, then listed and read through `backup ls` and `backup restore-file` as
// the README says a reader must see them. Skips when the folder is absent.
#include <boost/filesystem.hpp>
#include <cstdlib>

#include <gtest/gtest.h>

#include "core/json.h"
#include "tests/backup/backup_test_util.h"

namespace arche::backup::test {
namespace {

std::string real_images() {
  if (const char* env = std::getenv("ARCHE_REAL_IMAGES")) return env;
  for (const char* up : {"/../shared/fixtures/real-images", "/../../shared/fixtures/real-images"})
    if (boost::filesystem::is_directory(std::string(ARCHE_SOURCE_DIR) + up)) return std::string(ARCHE_SOURCE_DIR) + up;
  return std::string(ARCHE_SOURCE_DIR) + "/../shared/fixtures/real-images";
}

class RealImagesBackedUp : public RepositoryTest {
 protected:
  // Decompresses `rel` into the test's directory as `name`.
  std::string unpack(const std::string& rel, const std::string& name) {
    const std::string src = real_images() + "/" + rel, out = dir.file(name);
    const std::string tool = rel.ends_with(".gz") ? "gzip" : "bzip2";
    CommandResult r = arche::test::run({"sh", "-c", tool + " -dc '" + src + "' > '" + out + "'"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return out;
  }
  Json ls(const std::string& path) {
    return Json::parse(backup_ok({"ls", "--json", repo + "::real", path}).out);
  }
  static bool noted(const Json& notes, const std::string& words) {
    for (const Json& n : notes)
      if (n.get<std::string>().find(words) != std::string::npos) return true;
    return false;
  }
};

TEST_F(RealImagesBackedUp, ListedAndReadAsTheirReadmeSays) {
  if (!boost::filesystem::is_directory(real_images())) GTEST_SKIP() << real_images() << " is absent (not part of a clone)";
  const std::string e2 = "tytso__e2fsprogs/tests/";
  const std::vector<std::pair<std::string, std::string>> images{
      {"fox-it__dissect.hypervisor/tests/_data/disk/vhd/fixed.vhd.gz", "windows.vhd"},
      {e2 + "f_uninit_cat/image.gz", "uninit.img"},
      {e2 + "j_recover_csum3_64bit/image.bz2", "journal.img"},
      {e2 + "f_zero_super/image.gz", "zero-super.img"},
      {e2 + "f_inlinedata_repair/image.gz", "inline.img"},
      {e2 + "f_detect_xfs/image.bz2", "xfs.img"},
  };
  std::vector<std::string> args{"create", repo + "::real"};
  for (const auto& [rel, name] : images) {
    args.push_back("--image");
    args.push_back(unpack(rel, name));
  }
  backup_ok(args);

  // Windows 10's VHD: an MBR with one NTFS partition, labelled by Windows' default.
  Json vhd = ls("windows.vhd")["image"];
  bool ntfs = false;
  for (const Json& v : vhd["volumes"])
    if (v["address"] == "windows.vhd/p1") {
      EXPECT_EQ(v["fs"], "ntfs");
      EXPECT_EQ(v["label"], "New Volume");
      ntfs = true;
    }
  EXPECT_TRUE(ntfs) << vhd.dump();
  EXPECT_TRUE(ls("windows.vhd/p1/")["entries"].empty()) << "system files are not listed";

  // Uninitialised extents read as zeros (debugfs' "cat /a" in e2fsprogs' expect):
  // through restore-file, from a whole-disk file system (IMAGE/PATH).
  const std::string to = dir.file("to");
  backup_ok({"restore-file", repo + "::real", "uninit.img/a", "--to", to});
  std::vector<uint8_t> a = arche::test::read_file(to + "/a");
  ASSERT_EQ(a.size(), 3072u);
  for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], i >= 1024 && i < 2048 ? 'x' : 0) << i;

  // A journal to recover: replayed in memory (never into the backup); /a/b after it.
  Json journal = ls("journal.img/a");
  ASSERT_EQ(journal["entries"].size(), 1u);
  EXPECT_EQ(journal["entries"][0]["name"], "b");
  EXPECT_TRUE(noted(ls("journal.img")["image"]["volumes"][0]["notes"], "2 transactions"));

  // The primary superblock zeroed: the backup superblock is used.
  EXPECT_EQ(ls("zero-super.img/issue")["entries"][0]["size"], 63u);
  // Inline-data symbolic links.
  Json link = ls("inline.img/1")["entries"][0];
  EXPECT_EQ(link["type"], "symlink");
  EXPECT_FALSE(link["target"].get<std::string>().empty());
  // An XFS file system is named as such.
  Json xfs = ls("xfs.img")["image"]["volumes"][0];
  EXPECT_EQ(xfs["fs"], "xfs");
  EXPECT_EQ(xfs["label"], "test_filsys");
}

}  // namespace
}  // namespace arche::backup::test
