// Acceptance 4: a backup killed with SIGKILL in the middle leaves a repository that
// checks clean, restores every earlier snapshot, and takes the next backup (which
// reuses the complete packs the killed one left).
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <boost/filesystem.hpp>
#include <chrono>
#include <thread>

#include "core/json.h"
#include "tests/backup/backup_test_util.h"

extern char** environ;

namespace fs = boost::filesystem;

namespace arche::backup::test {
namespace {

size_t count_packs(const std::string& repo) {
  size_t n = 0;
  for (const std::string& f : files_below(repo + "/data")) n += fs::path(f).filename().string()[0] != '.';
  return n;
}

TEST(BackupCrash, SigkillDuringABackupLeavesTheRepositoryUsable) {
  use_passphrase();
  TempDir dir;
  const std::string repo = dir.file("repo");
  init_repo(repo, {"--pack-size", "2M"});
  const std::string small = dir.file("small.raw"), big = dir.file("big.raw"), files = dir.file("files");
  write_random_file(small, 4u << 20, 51);
  fs::create_directories(files);
  write_random_file(files + "/a", 300000, 52);
  backup_ok({"create", repo + "::one", "--image", small, files});
  write_random_file(big, 160u << 20, 53);
  const size_t before = count_packs(repo);

  // Start the backup and kill it once a few of its packs are complete.
  std::vector<std::string> args{arche::test::arche_binary(), "backup", "create", repo + "::two", "--image", big, "-j", "1"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  ASSERT_EQ(::posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ), 0);
  bool killed = false;
  for (int i = 0; i < 6000; ++i) {
    if (count_packs(repo) >= before + 3) {
      ::kill(pid, SIGKILL);
      killed = true;
      break;
    }
    int status;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      pid = 0;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (pid) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(killed && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the backup ended before the kill";
  } else {
    FAIL() << "the backup finished before it could be killed; make the image bigger";
  }
  EXPECT_FALSE(fs::is_empty(repo + "/locks")) << "the killed process leaves its lock behind";

  // check: clean (the stale lock of the dead process is recognised and removed).
  CommandResult check = backup({"check", repo});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  EXPECT_NE(check.out.find("not in the index"), std::string::npos) << "the killed run's packs are noted: " << check.out;
  EXPECT_NE(check.err.find("stale lock"), std::string::npos) << check.err;
  CommandResult list = backup_ok({"list", repo, "--json"});
  EXPECT_EQ(Json::parse(list.out).size(), 1u) << "no half snapshot";

  // Every earlier snapshot restores.
  backup_ok({"restore", repo + "::one", "--image", "small.raw", "--to", dir.file("small.out")});
  EXPECT_TRUE(same_content(small, dir.file("small.out")));
  backup_ok({"restore", repo + "::one", "--to", dir.file("f")});
  EXPECT_TRUE(same_content(files + "/a", dir.file("f") + files + "/a"));

  // The next backup works, and does not store again what the killed one completed.
  CommandResult again = backup_ok({"create", repo + "::two", "--image", big, "--json"});
  Json j = Json::parse(again.out);
  // (2 MiB packs hold one 1 MiB chunk each: at least three chunks were complete.)
  EXPECT_LE(j["stats"]["new-bytes"].get<uint64_t>(), (160u << 20) - (3u << 20) + (64u << 10))
      << "complete packs of the killed run are reused";
  backup_ok({"restore", repo + "::two", "--image", "big.raw", "--to", dir.file("big.out")});
  EXPECT_TRUE(same_content(big, dir.file("big.out")));
  check = backup({"check", "--read-data", repo});
  EXPECT_EQ(check.exit_code, 0) << check.out;
  EXPECT_EQ(check.out.find("temporary"), std::string::npos) << "leftover temporary files were cleaned: " << check.out;
  EXPECT_EQ(check.out.find("not in the index"), std::string::npos) << check.out;
}

}  // namespace
}  // namespace arche::backup::test
