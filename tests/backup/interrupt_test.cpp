// Issue 9, points 3 and 5: a backup or a restore stopped by SIGINT or SIGTERM removes
// its temporary files, releases its lock, says in one line what was left as it was
// and exits 130/143; stopped by SIGKILL at any moment it leaves nothing that looks
// valid: the repository checks clean, restored files are complete or absent (their
// temporaries are removed by the next restore), and a rerun completes.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <boost/filesystem.hpp>
#include <chrono>
#include <random>
#include <sstream>
#include <thread>

#include "core/json.h"
#include "tests/backup/backup_test_util.h"

namespace fs = boost::filesystem;

namespace arche::backup::test {
namespace {

using namespace std::chrono_literals;

size_t count_packs(const std::string& repo) {
  size_t n = 0;
  for (const std::string& f : files_below(repo + "/data")) n += fs::path(f).filename().string()[0] != '.';
  return n;
}

std::vector<std::string> temporaries_below(const std::string& dir) {
  std::vector<std::string> out;
  for (const std::string& f : files_below(dir))
    if (f.find(".arche-tmp-") != std::string::npos) out.push_back(f);
  return out;
}

size_t lines(const std::string& text) { return static_cast<size_t>(std::count(text.begin(), text.end(), '\n')); }

// Waits until `ready` holds or the process ends; false when it ended first.
template <typename F>
bool wait_until(Background& p, F ready) {
  for (int i = 0; i < 30000; ++i) {
    if (ready()) return true;
    if (p.finished()) return false;
    std::this_thread::sleep_for(5ms);
  }
  return false;
}

class BackupInterrupt : public ::testing::Test {
 protected:
  void SetUp() override {
    use_passphrase();
    repo = dir.file("repo");
    init_repo(repo, {"--pack-size", "2M"});
    write_random_file(dir.file("small.raw"), 2u << 20, 401);
    backup_ok({"create", repo + "::one", "--image", dir.file("small.raw")});
    big = dir.file("big.raw");
    write_random_file(big, 160u << 20, 402);
  }

  // The repository after a stopped backup: as before, checks clean, takes a rerun.
  void expect_repository_sound(const std::string& context) {
    CommandResult check = backup({"check", repo});
    EXPECT_EQ(check.exit_code, 0) << context << "\n" << check.out << check.err;
    backup_ok({"restore", repo + "::one", "--image", "small.raw", "--to", dir.file("check.raw"), "--overwrite"});
    EXPECT_TRUE(same_content(dir.file("small.raw"), dir.file("check.raw"))) << context;
  }

  TempDir dir;
  std::string repo, big;
};

TEST_F(BackupInterrupt, SigintAndSigtermStopABackupCleanly) {
  for (auto [sig, code] : {std::pair{SIGINT, 130}, std::pair{SIGTERM, 143}}) {
    const size_t before = count_packs(repo);
    Background p({"backup", "create", repo + "::two", "--image", big, "-j", "1"}, dir.path());
    ASSERT_TRUE(wait_until(p, [&] { return count_packs(repo) >= before + 2; })) << "the backup ended too soon";
    p.signal(sig);
    EXPECT_EQ(p.wait(), code) << p.err();
    const std::string err = p.err();
    EXPECT_EQ(lines(err), 1u) << err;
    EXPECT_NE(err.find(sig == SIGINT ? "interrupted by SIGINT" : "interrupted by SIGTERM"), std::string::npos) << err;
    EXPECT_NE(err.find("no snapshot was made; the repository is as it was"), std::string::npos) << err;
    EXPECT_TRUE(fs::is_empty(repo + "/locks")) << "the lock is released";
    EXPECT_TRUE(temporaries_below(repo).empty()) << "temporary files are removed";
    EXPECT_EQ(Json::parse(backup_ok({"list", repo, "--json"}).out).size(), 1u);
    expect_repository_sound(err);
  }
  // The rerun completes and reuses what the stopped runs finished.
  Json again = Json::parse(backup_ok({"create", repo + "::two", "--image", big, "--json"}).out);
  EXPECT_LT(again["stats"]["new-bytes"].get<uint64_t>(), 160u << 20);
  backup_ok({"restore", repo + "::two", "--image", "big.raw", "--to", dir.file("big.out")});
  EXPECT_TRUE(same_content(big, dir.file("big.out")));
}

TEST_F(BackupInterrupt, SigkillOrSigintAtRandomPointsOfABackupLeaveASoundRepository) {
  std::mt19937 random(::testing::UnitTest::GetInstance()->random_seed());
  for (int round = 0; round < 6; ++round) {
    const int sig = round % 2 ? SIGINT : SIGKILL;
    const auto delay = std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 2500)(random));
    const std::string context = fmt::format("round {}: signal {} after {} ms", round, sig, delay.count());
    Background p({"backup", "create", repo + "::two", "--image", big}, dir.path());
    std::this_thread::sleep_for(delay);
    const bool sent = p.signal(sig);
    const int code = p.wait();
    if (!sent || code == 0) {
      // It finished first: a complete snapshot, which is fine; forget it for the next round.
      EXPECT_EQ(code, 0) << context << p.err();
      backup_ok({"forget", repo + "::two"});
      continue;
    }
    EXPECT_EQ(code, 128 + sig) << context << p.err();
    if (sig == SIGINT) {
      EXPECT_TRUE(fs::is_empty(repo + "/locks")) << context;
    }
    EXPECT_EQ(Json::parse(backup_ok({"list", repo, "--json"}).out).size(), 1u) << context << ": no half snapshot";
    expect_repository_sound(context);
  }
  backup_ok({"create", repo + "::two", "--image", big});
  CommandResult check = backup({"check", "--read-data", repo});
  EXPECT_EQ(check.exit_code, 0) << check.out;
}

class BackupRestoreInterrupt : public ::testing::Test {
 protected:
  void SetUp() override {
    use_passphrase();
    repo = dir.file("repo");
    init_repo(repo);
    src = dir.file("src");
    fs::create_directories(src + "/d");
    for (int i = 0; i < 60; ++i) write_random_file(fmt::format("{}/d/f{:03}", src, i), 100000 + i * 7919, 500 + i);
    for (int i = 0; i < 6; ++i) write_random_file(fmt::format("{}/big{}", src, i), 12u << 20, 600 + i);
    backup_ok({"create", repo + "::files", src});
  }

  // Every regular file below the restore target is a complete copy of its source, or
  // a temporary file that does not look like one; returns how many are complete.
  size_t expect_nothing_half_written(const std::string& out, const std::string& context) {
    size_t complete = 0;
    for (const std::string& f : files_below(out)) {
      const std::string name = fs::path(f).filename().string();
      if (name.find(".arche-tmp-") != std::string::npos) {
        EXPECT_EQ(name[0], '.') << context << ": " << f;
        continue;
      }
      const std::string original = f.substr(out.size());
      EXPECT_TRUE(same_content(original, f)) << context << ": " << f << " is at its name with wrong content";
      ++complete;
    }
    return complete;
  }

  TempDir dir;
  std::string repo, src;
};

TEST_F(BackupRestoreInterrupt, StoppedFileRestoresLeaveOnlyCompleteFiles) {
  std::mt19937 random(::testing::UnitTest::GetInstance()->random_seed());
  const std::string out = dir.file("out");
  for (int round = 0; round < 6; ++round) {
    const int sig = round % 3 == 0 ? SIGINT : round % 3 == 1 ? SIGKILL : SIGTERM;
    const auto delay = std::chrono::milliseconds(std::uniform_int_distribution<int>(20, 1500)(random));
    const std::string context = fmt::format("round {}: signal {} after {} ms", round, sig, delay.count());
    Background p({"backup", "restore", repo + "::files", "--to", out, "--overwrite", "-j", "1"}, dir.path());
    if (sig != SIGKILL) p.wait_until_catching(sig);  // a random point of the restore, not of arche's start
    std::this_thread::sleep_for(delay);
    const bool sent = p.signal(sig);
    const int code = p.wait();
    if (!sent || code == 0) {
      EXPECT_EQ(code, 0) << context << p.err();
    } else {
      EXPECT_EQ(code, 128 + sig) << context << p.err();
      if (sig != SIGKILL) {
        // One line about the stop, besides notes on leftovers of earlier SIGKILLs it
        // removed: their temporary files and their locks.
        auto leftover_of_a_kill = [](const std::string& line) {
          return line.find("left by an interrupted restore") != std::string::npos ||
                 (line.find("removing stale lock:") != std::string::npos &&
                  line.find("its process is gone") != std::string::npos);
        };
        size_t stop_lines = 0, other_lines = 0;
        std::istringstream err(p.err());
        for (std::string line; std::getline(err, line);)
          (line.find("restore stopped") != std::string::npos ? stop_lines : other_lines) += !leftover_of_a_kill(line);
        EXPECT_EQ(stop_lines, 1u) << p.err();
        EXPECT_EQ(other_lines, 0u) << p.err();
        for (const std::string& t : temporaries_below(out))
          EXPECT_EQ(t.find(fmt::format(".arche-tmp-{}-", p.pid())), std::string::npos)
              << context << ": its own temporary files are removed on SIGINT/SIGTERM: " << t;
        EXPECT_TRUE(fs::is_empty(repo + "/locks")) << context;
      }
    }
    if (fs::exists(out)) expect_nothing_half_written(out, context);
  }
  // A last, complete run: everything restores, and no temporary file stays.
  backup_ok({"restore", repo + "::files", "--to", out, "--overwrite"});
  EXPECT_EQ(expect_nothing_half_written(out, "final run"), 66u);
  EXPECT_TRUE(temporaries_below(out).empty());
  CommandResult check = backup({"check", repo});
  EXPECT_EQ(check.exit_code, 0) << check.out;
}

TEST_F(BackupRestoreInterrupt, LeftoversOfKilledRestoresAreRemovedAndNamed) {
  // What a SIGKILLed image restore leaves: its full-size temporary file.
  write_random_file(dir.file("disk.raw"), 3u << 20, 700);
  backup_ok({"create", repo + "::disk", "--image", dir.file("disk.raw")});
  const pid_t gone = dead_pid();
  const std::string image_leftover = dir.file(fmt::format(".disk.out.arche-tmp-{}-1a2b", gone));
  arche::test::write_file(image_leftover, std::vector<uint8_t>(1u << 20, 7));
  Json r = Json::parse(
      backup_ok({"restore", repo + "::disk", "--image", "disk.raw", "--to", dir.file("disk.out"), "--json"}).out);
  EXPECT_EQ(r["removed-temporaries"], 1u);
  EXPECT_FALSE(fs::exists(image_leftover));
  EXPECT_TRUE(same_content(dir.file("disk.raw"), dir.file("disk.out")));

  // In a directory a file restore writes into.
  const std::string out = dir.file("out");
  fs::create_directories(out + src + "/d");
  const std::string file_leftover = out + src + "/d/" + fmt::format(".f001.arche-tmp-{}-9", gone);
  arche::test::write_file(file_leftover, std::vector<uint8_t>(1000, 1));
  CommandResult files = backup_ok({"restore", repo + "::files", "--to", out});
  EXPECT_NE(files.err.find("left by an interrupted restore"), std::string::npos) << files.err;
  EXPECT_FALSE(fs::exists(file_leftover));

  // In the repository: check names them, the next backup removes them.
  const std::string repo_leftover = repo + "/index/" + fmt::format(".abcd.arche-tmp-{}-5", gone);
  arche::test::write_file(repo_leftover, std::vector<uint8_t>(100, 2));
  Json check = Json::parse(backup({"check", repo, "--json"}).out);
  EXPECT_TRUE(check["ok"].get<bool>());
  ASSERT_EQ(check["temporary-files"].size(), 1u) << check.dump();
  EXPECT_EQ(check["temporary-files"][0], "index/" + fs::path(repo_leftover).filename().string());
  CommandResult text = backup_ok({"check", repo});
  EXPECT_NE(text.out.find(fs::path(repo_leftover).filename().string()), std::string::npos) << text.out;
  backup_ok({"create", repo + "::more", src + "/d"});
  EXPECT_FALSE(fs::exists(repo_leftover));
}

TEST_F(BackupRestoreInterrupt, SigintDuringAnImageRestoreLeavesNoFile) {
  write_random_file(dir.file("disk.raw"), 200u << 20, 701);
  backup_ok({"create", repo + "::disk", "--image", dir.file("disk.raw")});
  Background p({"backup", "restore", repo + "::disk", "--image", "disk.raw", "--to", dir.file("disk.out"), "-j", "1"},
               dir.path());
  ASSERT_TRUE(wait_until(p, [&] { return !temporaries_below(dir.path()).empty(); })) << p.err();
  p.signal(SIGINT);
  EXPECT_EQ(p.wait(), 130) << p.err();
  EXPECT_NE(p.err().find("is as it was (the partial file was removed)"), std::string::npos) << p.err();
  EXPECT_FALSE(fs::exists(dir.file("disk.out")));
  EXPECT_TRUE(temporaries_below(dir.path()).empty());
  EXPECT_TRUE(fs::is_empty(repo + "/locks"));
}

}  // namespace
}  // namespace arche::backup::test
