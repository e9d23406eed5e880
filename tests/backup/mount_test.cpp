// Issue 11, acceptance 4: `arche backup mount` (FUSE 3). ls, cat and cp through the
// mount give the bytes that were backed up — a raw image, files inside its ext4
// partition, files of a file backup — and both `fusermount3 -u` and SIGTERM end the
// mount cleanly: the process exits 0, nothing stays mounted, its lock is gone.
#include <signal.h>
#include <unistd.h>

#include <boost/filesystem.hpp>
#include <chrono>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "tests/backup/backup_test_util.h"
#include "tests/volume/volume_test_util.h"

namespace arche::backup::test {
namespace {

namespace fs = boost::filesystem;

bool mounted(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  const std::string needle = " " + fs::canonical(path).string() + " ";
  while (std::getline(in, line))
    if (line.find(needle) != std::string::npos) return true;
  return false;
}

std::vector<std::string> names(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

class BackupMount : public RepositoryTest {
 protected:
  void SetUp() override {
    if (::access("/dev/fuse", R_OK | W_OK) != 0) GTEST_SKIP() << "no /dev/fuse";
    RepositoryTest::SetUp();
    stage = dir.file("stage");
    disk = dir.file("disk.raw");
    volume::testing::make_fixture({"stage", stage});
    volume::testing::make_fixture({"gpt-ext4", disk, stage});
    backup_ok({"create", repo + "::nightly", "--image", disk, stage});
    mnt = dir.file("mnt");
    fs::create_directory(mnt);
  }

  // Starts the mount and waits until the snapshot's directory shows (or the
  // process has ended: then the test fails with its stderr).
  std::unique_ptr<Background> start() {
    auto m = std::make_unique<Background>(std::vector<std::string>{"backup", "mount", repo, mnt}, dir.path());
    for (int i = 0; i < 600 && !fs::exists(mnt + "/nightly"); ++i) {
      if (m->finished()) {
        ADD_FAILURE() << "backup mount ended: " << m->err();
        return m;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_TRUE(fs::exists(mnt + "/nightly")) << "not mounted after a minute: " << m->err();
    return m;
  }

  // A failed test must not leave a mount behind (the temporary directory would stay).
  void TearDown() override {
    if (!mnt.empty() && mounted(mnt)) arche::test::run({"fusermount3", "-u", "-z", mnt});
  }

  std::string stage, disk, mnt;
};

TEST_F(BackupMount, LsCatAndCpGiveTheBackedUpBytesAndFusermountEndsIt) {
  std::unique_ptr<Background> m = start();
  ASSERT_TRUE(mounted(mnt));
  EXPECT_EQ(names(mnt), std::vector<std::string>{"nightly"});
  EXPECT_EQ(names(mnt + "/nightly"), (std::vector<std::string>{"disk.raw", "disk.raw.d", "files"}));
  EXPECT_EQ(names(mnt + "/nightly/disk.raw.d"), std::vector<std::string>{"p1"}) << "swap holds no file system";

  const std::string kunde = mnt + "/nightly/disk.raw.d/p1/home/kunde";
  EXPECT_EQ(names(kunde), names(stage + "/home/kunde"));
  CommandResult cat = arche::test::run({"cat", kunde + "/wichtig.txt"});
  EXPECT_EQ(cat.out, "Kundendaten Mueller GmbH\n");
  EXPECT_EQ(fs::read_symlink(kunde + "/link-zu-wichtig"), "wichtig.txt");
  EXPECT_EQ(fs::last_write_time(kunde + "/wichtig.txt"), fs::last_write_time(stage + "/home/kunde/wichtig.txt"));

  const std::string out = dir.file("out");
  fs::create_directory(out);
  CommandResult cp = arche::test::run({"cp", "-a", kunde, out + "/"});
  EXPECT_EQ(cp.exit_code, 0) << cp.err;
  CommandResult diff = arche::test::run({"diff", "-r", "--no-dereference", stage + "/home/kunde", out + "/kunde"});
  EXPECT_EQ(diff.exit_code, 0) << diff.out << diff.err;
  EXPECT_TRUE(same_content(disk, mnt + "/nightly/disk.raw")) << "the raw image reads as backed up";
  EXPECT_TRUE(same_content(stage + "/home/kunde/gross.bin", mnt + "/nightly/files" + stage + "/home/kunde/gross.bin"));

  // Read-only.
  EXPECT_NE(arche::test::run({"touch", kunde + "/neu.txt"}).exit_code, 0);
  EXPECT_FALSE(std::ofstream(kunde + "/wichtig.txt").is_open());

  CommandResult u = arche::test::run({"fusermount3", "-u", mnt});
  EXPECT_EQ(u.exit_code, 0) << u.err;
  EXPECT_EQ(m->wait(), 0) << m->err();
  EXPECT_FALSE(mounted(mnt));
  EXPECT_TRUE(fs::is_empty(dir.file("repo/locks"))) << "the mount's lock is gone";
}

TEST_F(BackupMount, SigtermUnmountsCleanly) {
  std::unique_ptr<Background> m = start();
  ASSERT_TRUE(mounted(mnt));
  EXPECT_EQ(arche::test::run({"cat", mnt + "/nightly/disk.raw.d/p1/etc/app/config.ini"}).out, "[app]\nport = 8080\n");
  ASSERT_TRUE(m->signal(SIGTERM));
  EXPECT_EQ(m->wait(), 0) << m->err();
  EXPECT_FALSE(mounted(mnt));
  EXPECT_TRUE(fs::is_empty(dir.file("repo/locks")));
  EXPECT_TRUE(fs::is_empty(mnt)) << "the directory is an empty directory again";
}

}  // namespace
}  // namespace arche::backup::test
