// The repository itself: init, key slots, locks, the chunk store.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/filesystem.hpp>

#include "backup/chunk_store.h"
#include "backup/lock.h"
#include "backup/object.h"
#include "core/error.h"
#include "core/json.h"
#include "tests/backup/backup_test_util.h"

namespace fs = boost::filesystem;

namespace arche::backup::test {
namespace {

class BackupRepository : public RepositoryTest {};

TEST_F(BackupRepository, InitMakesTheLayoutAndRefusesToOverwrite) {
  for (const char* sub : {"config", "keys", "data/00", "data/ff", "index", "snapshots", "locks"})
    EXPECT_TRUE(fs::exists(repo + "/" + sub)) << sub;
  EXPECT_EQ(std::distance(fs::directory_iterator(repo + "/keys"), fs::directory_iterator()), 1);
  CommandResult again = backup({"init", repo});
  EXPECT_EQ(again.exit_code, 73) << again.err;
  CommandResult not_repo = backup({"list", dir.path()});
  EXPECT_EQ(not_repo.exit_code, 65) << not_repo.err;
  EXPECT_NE(not_repo.err.find("not an arche repository"), std::string::npos);
  CommandResult missing = backup({"list", dir.file("nothing")});
  EXPECT_EQ(missing.exit_code, 66);
  // No stray files next to the repository from building it under a temporary name.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

TEST_F(BackupRepository, PassphraseComesFromEnvironmentFileOrCommandNeverTheCommandLine) {
  const std::string file = dir.file("pass");
  arche::test::write_file(file, std::vector<uint8_t>(kPassphrase, kPassphrase + std::strlen(kPassphrase)));
  ::unsetenv("ARCHE_PASSPHRASE");
  backup_ok({"list", repo, "--passphrase-file", file});
  backup_ok({"list", repo, "--passphrase-command", std::string("printf '%s\\n' '") + kPassphrase + "'"});
  CommandResult none = backup({"list", repo});
  EXPECT_EQ(none.exit_code, 64);
  EXPECT_NE(none.err.find("ARCHE_PASSPHRASE"), std::string::npos) << none.err;
  CommandResult failing = backup({"list", repo, "--passphrase-command", "exit 3"});
  EXPECT_EQ(failing.exit_code, 64) << failing.err;
  CommandResult on_line = backup({"list", repo, "--passphrase", kPassphrase});
  EXPECT_EQ(on_line.exit_code, 64) << "there is no option to give it on the command line";
  use_passphrase();
}

TEST_F(BackupRepository, KeySlotsAddChangeAndRemove) {
  ::setenv("ARCHE_NEW_PASSPHRASE", "second passphrase", 1);
  backup_ok({"key", "add", repo, "--kdf-memory", "8M", "--kdf-ops", "1"});
  Json slots = Json::parse(backup_ok({"key", "list", repo, "--json"}).out);
  ASSERT_EQ(slots.size(), 2u);
  use_passphrase("second passphrase");
  backup_ok({"list", repo});
  // Change the second passphrase: the old one stops working, the first still works.
  ::setenv("ARCHE_NEW_PASSPHRASE", "third passphrase", 1);
  backup_ok({"key", "change-passphrase", repo, "--kdf-memory", "8M", "--kdf-ops", "1"});
  EXPECT_EQ(backup({"list", repo}).exit_code, 81);
  use_passphrase("third passphrase");
  backup_ok({"list", repo});
  use_passphrase();
  slots = Json::parse(backup_ok({"key", "list", repo, "--json"}).out);
  ASSERT_EQ(slots.size(), 2u);
  std::string other;
  for (const Json& s : slots)
    if (!s["current"].get<bool>()) other = s["slot"];
  backup_ok({"key", "remove", repo, other});
  use_passphrase("third passphrase");
  EXPECT_EQ(backup({"list", repo}).exit_code, 81);
  use_passphrase();
  Json last = Json::parse(backup_ok({"key", "list", repo, "--json"}).out);
  CommandResult refuse = backup({"key", "remove", repo, last[0]["slot"]});
  EXPECT_EQ(refuse.exit_code, 64) << "the last key slot stays";
  ::unsetenv("ARCHE_NEW_PASSPHRASE");
}

// Writes a lock file as another process would have.
void plant_lock(Repository& r, const LockInfo& l) {
  r.write_named_file("locks", l.name, seal_object(r.keys(), "ARCHELCK", {1, 0}, encode_lock_payload(l), false), false);
}

TEST_F(BackupRepository, LocksOfDeadProcessesAreClearedLiveOnesBlock) {
  auto r = open_repo(repo);
  write_random_file(dir.file("d"), 1000, 61);
  {
    // A live exclusive lock (this test process) blocks a backup, which says who holds it.
    RepoLock held(*r, LockMode::exclusive, "test holds it");
    CommandResult busy = backup({"create", repo + "::x", dir.file("d")});
    EXPECT_EQ(busy.exit_code, 75) << busy.err;
    EXPECT_NE(busy.err.find("test holds it"), std::string::npos) << busy.err;
    EXPECT_NE(busy.err.find(std::to_string(::getpid())), std::string::npos) << busy.err;
    // unlock leaves a live lock alone.
    backup_ok({"unlock", repo});
    EXPECT_EQ(backup({"create", repo + "::x", dir.file("d")}).exit_code, 75);
    // Shared locks do not block each other.
  }
  {
    RepoLock shared(*r, LockMode::shared, "another backup");
    backup_ok({"create", repo + "::shared-ok", dir.file("d")});
    // prune runs beside backups (it deletes in two phases); check needs the repository alone.
    backup_ok({"prune", repo, "--keep-last", "5"});
    EXPECT_EQ(backup({"check", repo}).exit_code, 75) << "check needs the repository alone";
  }
  // A lock of a process that has exited (this host): stale, removed by the next user.
  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  LockInfo dead;
  dead.name = "00000000000000000000000000000001";
  dead.host = host;
  dead.boot_id = arche::test::run({"cat", "/proc/sys/kernel/random/boot_id"}).out;
  dead.boot_id.erase(dead.boot_id.find_last_not_of('\n') + 1);
  dead.pid = static_cast<uint32_t>(child);
  dead.exclusive = true;
  dead.command = "backup prune";
  dead.created = dead.refreshed = static_cast<uint64_t>(::time(nullptr));
  plant_lock(*r, dead);
  CommandResult after = backup_ok({"create", repo + "::after-dead", dir.file("d")});
  EXPECT_NE(after.err.find("removing stale lock"), std::string::npos) << after.err;
  EXPECT_FALSE(fs::exists(repo + "/locks/" + dead.name));
  // Another host's lock: only abandoned (no refresh for 30 min) ones go, and only by unlock.
  LockInfo remote = dead;
  remote.name = "00000000000000000000000000000002";
  remote.host = "other-host";
  remote.refreshed = static_cast<uint64_t>(::time(nullptr)) - 3600;
  plant_lock(*r, remote);
  CommandResult blocked = backup({"create", repo + "::remote", dir.file("d")});
  EXPECT_EQ(blocked.exit_code, 75);
  EXPECT_NE(blocked.err.find("arche backup unlock"), std::string::npos) << "says how to clear it: " << blocked.err;
  backup_ok({"unlock", repo});
  backup_ok({"create", repo + "::remote", dir.file("d")});
  // A fresh lock of another host stays until --all.
  remote.refreshed = static_cast<uint64_t>(::time(nullptr));
  plant_lock(*r, remote);
  backup_ok({"unlock", repo});
  EXPECT_TRUE(fs::exists(repo + "/locks/" + remote.name));
  backup_ok({"unlock", repo, "--all"});
  EXPECT_TRUE(fs::is_empty(repo + "/locks"));
}

TEST_F(BackupRepository, ChunkStoreDeduplicatesAndRotatesPacks) {
  TempDir d2;
  const std::string small_packs = d2.file("repo");
  init_repo(small_packs, {"--pack-size", "1M"});
  auto r = open_repo(small_packs);
  r->load_index(true);
  std::vector<PackInfo> packs;
  {
    ChunkStore store(*r, 3);
    std::vector<std::vector<uint8_t>> blobs;
    for (int i = 0; i < 40; ++i) blobs.push_back(arche::test::random_bytes(100000, 100 + i));
    std::vector<Id> ids;
    for (const auto& b : blobs) ids.push_back(store.store(BlobKind::data, b));
    for (const auto& b : blobs) EXPECT_EQ(store.store(BlobKind::data, b), r->keys().chunk_id(b));
    EXPECT_EQ(store.stats().blobs, 80u);
    EXPECT_EQ(store.stats().new_blobs, 40u);
    packs = store.finish();
    EXPECT_GE(packs.size(), 4u) << "1 MiB packs hold about ten 100 KB blobs";
    size_t entries = 0;
    for (const PackInfo& p : packs) {
      entries += p.entries.size();
      EXPECT_LE(p.size, (1u << 20) + 200000);
      EXPECT_TRUE(fs::exists(small_packs + "/" + pack_relative_path(p.id)));
    }
    EXPECT_EQ(entries, 40u);
    // Everything stored reads back.
    for (size_t i = 0; i < blobs.size(); ++i) EXPECT_EQ(r->read_blob(ids[i], "t"), blobs[i]);
  }
  // Not indexed yet: the next session adopts them (what a killed backup leaves).
  r->load_index(true);
  EXPECT_EQ(r->unindexed_packs().size(), packs.size());
  EXPECT_EQ(r->index().size(), 40u);
}

}  // namespace
}  // namespace arche::backup::test
