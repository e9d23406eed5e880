// `arche backup copy` into a replica and `backup init --same-key-as` through the CLI
// on local repositories (issue 12): what is copied, what is refused, and that a damaged or
// interrupted copy leaves the destination as it was. The same copy onto every store
// is StoreSuite.CopyIntoAReplicaOnThisStore; local → SFTP → S3 → local is
// RemoteCopy in store_remote_tests.
#include <gtest/gtest.h>

#include <boost/filesystem.hpp>

#include <cstring>
#include <thread>

#include "backup/copy.h"
#include "backup/create.h"
#include "backup/pack.h"
#include "backup/restore.h"
#include "core/json.h"
#include "tests/backup/backup_test_util.h"
#include "tests/backup/memory_store.h"

namespace fs = boost::filesystem;

namespace arche::backup::test {
namespace {

const std::string kMarker = "Lohnabrechnung Januar Kanzlei Schmidt";

class BackupCopy : public RepositoryTest {
 protected:
  void SetUp() override {
    RepositoryTest::SetUp();
    data = dir.file("data");
    fs::create_directories(data + "/docs");
    std::string text;
    for (int i = 0; i < 3000; ++i) text += kMarker + " " + std::to_string(i) + "\n";
    arche::test::write_file(data + "/docs/payroll.txt", {text.begin(), text.end()});
    write_random_file(data + "/big.bin", 3u << 20, 4001);
    make_test_image(dir.file("disk.raw"), "32M", kMarker);
    backup_ok({"create", repo + "::mon", data, "--image", dir.file("disk.raw")});
    write_random_file(data + "/tue.bin", 1u << 20, 4002);
    backup_ok({"create", repo + "::tue", data});
    write_random_file(data + "/wed.bin", 1u << 20, 4003);
    backup_ok({"create", repo + "::wed", data});
    replica = dir.file("replica");
    backup_ok({"init", replica, "--same-key-as", repo, "--kdf-memory", "8M", "--kdf-ops", "1"});
  }

  Json copy_json(std::vector<std::string> args) {
    args.insert(args.begin(), "copy");
    args.push_back("--json");
    return Json::parse(backup_ok(args).out);
  }

  std::string data, replica;
};

TEST_F(BackupCopy, ReplicaRestoresEverySnapshotAndASecondCopySendsNothing) {
  Json first = copy_json({repo, replica});
  EXPECT_EQ(first["snapshots"].size(), 3u);
  EXPECT_GT(first["packs"].get<uint64_t>(), 0u);
  Json again = copy_json({repo, replica});
  EXPECT_EQ(again["packs"].get<uint64_t>(), 0u);
  for (const Json& s : again["snapshots"]) EXPECT_TRUE(s["present"].get<bool>()) << s.dump();

  backup_ok({"restore", replica + "::mon", "--image", "disk.raw", "--to", dir.file("disk.out")});
  EXPECT_TRUE(same_content(dir.file("disk.raw"), dir.file("disk.out")));
  backup_ok({"restore", replica + "::wed", "--to", dir.file("out")});
  for (const char* f : {"/docs/payroll.txt", "/big.bin", "/tue.bin", "/wed.bin"})
    EXPECT_TRUE(same_content(data + f, dir.file("out") + data + f)) << f;
  CommandResult check = backup({"check", replica, "--read-data"});
  EXPECT_EQ(check.exit_code, 0) << check.err;
  for (const std::string& f : files_below(replica)) EXPECT_FALSE(file_contains(f, kMarker)) << f;
  // The packs travelled as they are: the replica holds the same pack files.
  for (const std::string& f : files_below(replica + "/data"))
    EXPECT_TRUE(same_content(f, repo + f.substr(replica.size()))) << f;
}

TEST_F(BackupCopy, NamedSnapshotsLastNAndDryRun) {
  Json dry = copy_json({repo, replica, "--dry-run"});
  EXPECT_TRUE(dry["dry-run"].get<bool>());
  EXPECT_GT(dry["pack-bytes"].get<uint64_t>(), 0u);
  EXPECT_TRUE(files_below(replica + "/data").empty()) << "a dry run sends nothing";
  EXPECT_TRUE(files_below(replica + "/snapshots").empty());

  Json named = copy_json({repo + "::tue", repo + "::mon", replica});
  ASSERT_EQ(named["snapshots"].size(), 2u);
  EXPECT_EQ(named["snapshots"][0]["name"], "mon") << "oldest first";
  EXPECT_EQ(named["snapshots"][1]["name"], "tue");
  Json last = copy_json({repo, replica, "--last", "1"});
  ASSERT_EQ(last["snapshots"].size(), 1u);
  EXPECT_EQ(last["snapshots"][0]["name"], "wed");
  EXPECT_FALSE(last["snapshots"][0]["present"].get<bool>());
  Json list = Json::parse(backup_ok({"list", replica, "--json"}).out);
  EXPECT_EQ(list.size(), 3u) << list.dump();
}

// Not a replica: the other way (copy_reencrypt_test.cpp), never packs of another key.
TEST_F(BackupCopy, ARepositoryWithAnotherKeyGetsTheChunksReencrypted) {
  const std::string other = dir.file("other");
  init_repo(other);
  Json r = copy_json({repo + "::tue", other});
  EXPECT_EQ(r["mode"], "re-encrypted");
  const std::vector<std::string> packs = files_below(other + "/data");
  ASSERT_FALSE(packs.empty());
  for (const std::string& f : packs) EXPECT_FALSE(fs::exists(repo + f.substr(other.size()))) << f;
  EXPECT_EQ(copy_json({repo + "::tue", replica})["mode"], "replica");
}

TEST_F(BackupCopy, ADamagedSourcePackIsNotCopiedAndLeavesNoSnapshot) {
  std::vector<std::string> packs = files_below(repo + "/data");
  ASSERT_FALSE(packs.empty());
  for (const std::string& p : packs) {
    std::vector<uint8_t> bytes = arche::test::read_file(p);
    bytes[kPackHeaderSize + 100] ^= 0x40;  // inside the first frame: the trailer's CRC no longer matches
    arche::test::write_file(p, bytes);
  }
  CommandResult r = backup({"copy", repo, replica});
  EXPECT_EQ(r.exit_code, 80) << r.err;
  EXPECT_NE(r.err.find("checksum mismatch"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
  EXPECT_TRUE(files_below(replica + "/data").empty()) << "nothing half-copied is left looking valid";
  EXPECT_TRUE(files_below(replica + "/snapshots").empty());
}

TEST_F(BackupCopy, AnotherSnapshotOfTheSameNameIsRefused) {
  copy_json({repo + "::mon", replica});
  backup_ok({"create", replica + "::tue", data + "/docs"});
  CommandResult r = backup({"copy", repo, replica});
  EXPECT_EQ(r.exit_code, 73) << r.err;  // exists
  EXPECT_NE(r.err.find("'tue'"), std::string::npos) << r.err;
  Json list = Json::parse(backup_ok({"list", replica, "--json"}).out);
  EXPECT_EQ(list.size(), 2u) << "nothing was copied";
}

TEST_F(BackupCopy, BandwidthLimitIsHonoured) {
  Json dry = copy_json({repo + "::mon", replica, "--dry-run"});
  const uint64_t bytes = dry["pack-bytes"].get<uint64_t>();
  ASSERT_GT(bytes, 2u << 20);
  const auto start = std::chrono::steady_clock::now();
  copy_json({repo + "::mon", replica, "--bwlimit", std::to_string(bytes / 2)});
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GE(seconds, 1.8) << "at half the bytes per second it takes two seconds at least";
}

// Packs travel several at once, and never more than the destination store takes: a
// gate holds every pack's commit, so a copy that sent one pack at a time would never
// have more than one waiting there.
TEST(BackupCopyParallel, SeveralPacksTravelAtOnceAndNoMoreThanTheStoreTakes) {
  using namespace std::chrono_literals;
  TempDir dir;
  const std::span<const uint8_t> pass(reinterpret_cast<const uint8_t*>(kPassphrase), std::strlen(kPassphrase));
  fs::create_directories(dir.file("src"));
  write_random_file(dir.file("src/a"), 6u << 20, 4101);
  auto source_store = std::make_shared<MemoryStore>();
  InitOptions init;
  init.kdf.memlimit = 8u << 20;
  init.kdf.opslimit = 1;
  init.settings.pack_size = 1u << 20;  // five packs or more (chunk boundaries decide)
  Repository::init(*source_store, pass, init);
  auto source = Repository::open(source_store, pass);
  CreateOptions create;
  create.name = "one";
  create.paths = {dir.file("src")};
  create.threads = 2;
  create_snapshot(*source, create);

  MemoryStore::Options o;
  o.capabilities.consistent_listing = true;
  o.capabilities.parallelism = 3;
  auto replica_store = std::make_shared<MemoryStore>(o);
  Repository::init_same_key(*replica_store, *source, pass, init.kdf);
  auto replica = Repository::open(replica_store, pass);
  replica_store->close_gate("data/");
  std::optional<CopyReport> report;
  std::exception_ptr failure;
  std::thread copy([&] {
    try {
      report = copy_snapshots(*source, *replica, CopyOptions{});
    } catch (...) {
      failure = std::current_exception();
    }
  });
  const bool three_at_once = replica_store->wait_at_gate(120s, 3);
  replica_store->open_gate();
  copy.join();
  ASSERT_FALSE(failure) << "the copy failed";
  ASSERT_TRUE(report);
  EXPECT_TRUE(three_at_once) << "never three packs in flight at once";
  EXPECT_GE(report->packs, 4u);
  EXPECT_LE(replica_store->peak_open_writers(), 3u) << "more sends than the store takes";

  auto fresh = Repository::open(replica_store, pass);
  RestoreRequest r;
  r.snapshot = "one";
  r.to = dir.file("out");
  restore_snapshot(*fresh, r);
  EXPECT_TRUE(same_content(dir.file("src/a"), dir.file("out") + dir.file("src/a")));
}

}  // namespace
}  // namespace arche::backup::test
