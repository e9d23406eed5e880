// Issue 9, points 4 and 9: one damaged file must not block the rest. A damaged
// snapshot manifest beside intact ones; a corrupt lock file; a deleted or truncated
// index file; what a full disk leaves.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <boost/filesystem.hpp>

#include "backup/lock.h"
#include "core/file.h"
#include "core/json.h"
#include "tests/backup/backup_test_util.h"

namespace fs = boost::filesystem;

namespace arche::backup::test {
namespace {

class BackupDamage : public RepositoryTest {
 protected:
  void SetUp() override {
    RepositoryTest::SetUp();
    src = dir.file("src");
    fs::create_directories(src);
    write_random_file(src + "/a", 300000, 301);
    write_random_file(dir.file("disk.raw"), 2u << 20, 302);
    for (const char* name : {"one", "two", "three"}) {
      Json j = Json::parse(backup_ok({"create", repo + "::" + name, src, "--image", dir.file("disk.raw"), "--json"}).out);
      ids[name] = j["id"];
    }
  }
  std::string src;
  std::map<std::string, std::string> ids;
};

void flip_byte(const std::string& path, uint64_t offset) {
  File f = File::open(path, OpenMode::read_write);
  uint8_t b;
  f.read_exact(offset, std::span(&b, 1));
  b ^= 0x40;
  f.write_all(offset, std::span(&b, 1));
}

TEST_F(BackupDamage, ADamagedManifestIsListedAsSuchAndBlocksNothingElse) {
  const std::string damaged = ids["two"];
  flip_byte(repo + "/snapshots/" + damaged, 60);
  arche::test::write_file(repo + "/snapshots/stray-file", {'n', 'o', 'p', 'e'});

  CommandResult list = backup({"list", repo});
  EXPECT_EQ(list.exit_code, 2) << list.err;
  EXPECT_NE(list.out.find("one"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("three"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find(damaged.substr(0, 8)), std::string::npos) << "the damaged one is listed: " << list.out;
  EXPECT_NE(list.out.find("DAMAGED"), std::string::npos) << list.out;
  Json j = Json::parse(backup({"list", repo, "--json"}).out);
  ASSERT_EQ(j.size(), 4u);
  size_t damaged_entries = 0;
  for (const Json& s : j) {
    if (s["damaged"].is_null()) continue;
    ++damaged_entries;
    EXPECT_TRUE(s["name"].is_null()) << s.dump();
  }
  EXPECT_EQ(damaged_entries, 2u);

  // The intact snapshots restore, files and images; the damaged one says what it is.
  backup_ok({"restore", repo + "::three", "--to", dir.file("out")});
  EXPECT_TRUE(same_content(src + "/a", dir.file("out") + src + "/a"));
  backup_ok({"restore", repo + "::one", "--image", "disk.raw", "--to", dir.file("disk.out")});
  EXPECT_TRUE(same_content(dir.file("disk.raw"), dir.file("disk.out")));
  CommandResult bad = backup({"restore", repo + "::" + damaged.substr(0, 8), "--to", dir.file("bad")});
  EXPECT_EQ(bad.exit_code, 80) << bad.err;
  EXPECT_NE(bad.err.find("damaged"), std::string::npos) << bad.err;
  backup_ok({"info", repo + "::one"});
  backup_ok({"diff", repo + "::one", "three"});
  backup_ok({"create", repo + "::four", src});
  EXPECT_EQ(backup({"check", repo}).exit_code, 2);
  CommandResult prune = backup({"prune", repo, "--keep-last", "1"});
  EXPECT_EQ(prune.exit_code, 80) << "its data would count as unused";
  EXPECT_NE(prune.err.find("repair snapshots"), std::string::npos) << prune.err;

  // forget removes the damaged manifest by its id; repair snapshots the rest.
  backup_ok({"forget", repo + "::" + damaged.substr(0, 8)});
  EXPECT_FALSE(fs::exists(repo + "/snapshots/" + damaged));
  Json dry = Json::parse(backup_ok({"repair", "snapshots", repo, "--dry-run", "--json"}).out);
  ASSERT_EQ(dry["removed"].size(), 1u);
  EXPECT_EQ(dry["removed"][0]["id"], "stray-file");
  EXPECT_TRUE(fs::exists(repo + "/snapshots/stray-file"));
  Json rep = Json::parse(backup_ok({"repair", "snapshots", repo, "--json"}).out);
  EXPECT_EQ(rep["removed"].size(), 1u);
  EXPECT_EQ(rep["intact"], 3u);
  backup_ok({"list", repo});
  CommandResult check = backup({"check", "--read-data", repo});
  EXPECT_EQ(check.exit_code, 0) << check.out;
  backup_ok({"prune", repo, "--keep-last", "1"});
}

TEST_F(BackupDamage, ACorruptLockBlocksExclusiveWorkUntilUnlockRemovesIt) {
  const std::string lock = repo + "/locks/0123456789abcdef0123456789abcdef";
  arche::test::write_file(lock, arche::test::random_bytes(200, 303));
  CommandResult check = backup({"check", repo});
  EXPECT_EQ(check.exit_code, 75) << check.out << check.err;
  EXPECT_NE(check.err.find("unreadable lock file 0123456789abcdef"), std::string::npos) << check.err;
  EXPECT_NE(check.err.find("arche backup unlock"), std::string::npos) << check.err;
  EXPECT_EQ(backup({"prune", repo, "--keep-last", "1"}).exit_code, 75);
  // Shared work goes on, and says so.
  CommandResult create = backup_ok({"create", repo + "::beside-it", src});
  EXPECT_NE(create.err.find("unreadable lock file"), std::string::npos) << create.err;
  // unlock removes it, counts it, and warns about nothing it then leaves out.
  CommandResult unlock = backup_ok({"unlock", repo});
  EXPECT_NE(unlock.out.find("1 lock removed"), std::string::npos) << unlock.out;
  EXPECT_EQ(unlock.err.find("warning"), std::string::npos) << unlock.err;
  EXPECT_FALSE(fs::exists(lock));
  backup_ok({"check", repo});
  Json none = Json::parse(backup_ok({"unlock", repo, "--json"}).out);
  EXPECT_EQ(none["removed"].size(), 0u);
}

TEST_F(BackupDamage, ALostIndexFileSaysRepairIndexNotLostPack) {
  for (const auto& e : fs::directory_iterator(repo + "/index")) fs::remove(e.path());
  CommandResult image = backup({"restore", repo + "::one", "--image", "disk.raw", "--to", dir.file("o.raw")});
  EXPECT_EQ(image.exit_code, 80) << image.err;
  EXPECT_NE(image.err.find("run `arche backup repair index`"), std::string::npos) << image.err;
  EXPECT_EQ(image.err.find("lost pack"), std::string::npos) << image.err;
  CommandResult files = backup({"restore", repo + "::one", "--to", dir.file("o")});
  EXPECT_NE(files.exit_code, 0);
  EXPECT_NE(files.err.find("repair index"), std::string::npos) << files.err;
  backup_ok({"repair", "index", repo});
  backup_ok({"restore", repo + "::one", "--image", "disk.raw", "--to", dir.file("o.raw")});

  // A truncated index file: the same advice; a backup still works beside it.
  std::string index;
  for (const auto& e : fs::directory_iterator(repo + "/index")) index = e.path().string();
  ASSERT_EQ(::truncate(index.c_str(), 60), 0);
  CommandResult truncated = backup({"restore", repo + "::two", "--image", "disk.raw", "--to", dir.file("t.raw")});
  EXPECT_EQ(truncated.exit_code, 80) << truncated.err;
  EXPECT_NE(truncated.err.find("repair index"), std::string::npos) << truncated.err;
  backup_ok({"create", repo + "::after", src});
  backup_ok({"repair", "index", repo});
  CommandResult check = backup({"check", "--read-data", repo});
  EXPECT_EQ(check.exit_code, 0) << check.out;
}

TEST_F(BackupDamage, AfterAFullDiskCheckNamesTheCompletePacksAndTheNextBackupReusesThem) {
  ARCHE_SKIP_UNLESS_ROOT();
  const std::string small = dir.file("small");
  fs::create_directories(small);
  ASSERT_EQ(::mount("tmpfs", small.c_str(), "tmpfs", 0, "size=20m"), 0) << std::strerror(errno);
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{small};
  const std::string small_repo = small + "/repo";
  init_repo(small_repo, {"--pack-size", "2M"});
  const std::string big = dir.file("big.raw");
  write_random_file(big, 40u << 20, 304);
  CommandResult full = backup({"create", small_repo + "::big", "--image", big, "-j", "1"});
  ASSERT_EQ(full.exit_code, 83) << full.err;
  CommandResult check = backup({"check", small_repo});
  EXPECT_EQ(check.exit_code, 0) << check.out;
  EXPECT_NE(check.out.find("not in the index"), std::string::npos) << check.out;
  EXPECT_NE(check.out.find("the next backup reuses"), std::string::npos) << check.out;
  // The first 8 MiB of the same data, backed up next: its chunks were in those packs.
  const std::string head = dir.file("head.raw");
  {
    std::vector<uint8_t> data(8u << 20);
    File::open(big, OpenMode::read_only).read_exact(0, data);
    arche::test::write_file(head, data);
  }
  Json next = Json::parse(backup_ok({"create", small_repo + "::head", "--image", head, "--json"}).out);
  EXPECT_LT(next["stats"]["new-bytes"].get<uint64_t>(), 8u << 20) << "complete packs of the failed run were reused";
  CommandResult after = backup({"check", "--read-data", small_repo});
  EXPECT_EQ(after.exit_code, 0) << after.out;
}

}  // namespace
}  // namespace arche::backup::test
