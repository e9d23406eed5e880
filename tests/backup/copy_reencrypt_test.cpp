// `arche backup copy` into a repository with another key (issue 12): the chunks are
// read from the source and stored re-encrypted, the trees, lists and manifests
// written anew with the destination's ids. Through the CLI on local repositories
// (restores byte for byte, dedup against what the destination holds, the
// destination's passphrase), and in process on memory stores for what a failure or
// an interrupt half-way leaves. The replica copy is copy_test.cpp.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <boost/filesystem.hpp>

#include <csignal>
#include <cstring>
#include <thread>

#include "backup/check.h"
#include "backup/copy.h"
#include "backup/create.h"
#include "backup/restore.h"
#include "core/interrupt.h"
#include "core/json.h"
#include "tests/backup/backup_test_util.h"
#include "tests/backup/memory_store.h"

namespace fs = boost::filesystem;

namespace arche::backup::test {
namespace {

const std::string kMarker = "Mandantenakte Steuerberatung Weber";
const std::string kDstPassphrase = "offsite vault 2026 other key";

std::span<const uint8_t> bytes_of(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

void write_secret(const std::string& path, const std::string& text) {
  arche::test::write_file(path, {text.begin(), text.end()});
  ::chmod(path.c_str(), 0600);
}

// Every snapshot of `repo` by name.
std::map<std::string, Snapshot> snapshots_of(const std::string& repo, const std::string& passphrase) {
  std::map<std::string, Snapshot> out;
  for (Snapshot& s : load_snapshots(*Repository::open(repo, bytes_of(passphrase)))) out[s.name] = std::move(s);
  return out;
}

class CopyReencrypted : public RepositoryTest {
 protected:
  void SetUp() override {
    RepositoryTest::SetUp();
    data = dir.file("data");
    fs::create_directories(data + "/docs/empty");
    std::string text;
    for (int i = 0; i < 3000; ++i) text += kMarker + " " + std::to_string(i) + "\n";
    arche::test::write_file(data + "/docs/client.txt", {text.begin(), text.end()});
    write_random_file(data + "/big.bin", 3u << 20, 5001);
    fs::create_symlink("docs/client.txt", data + "/link");
    make_test_image(dir.file("disk.raw"), "32M", kMarker);
    backup_ok({"create", repo + "::mon", data, "--image", dir.file("disk.raw")});
    write_random_file(data + "/tue.bin", 1u << 20, 5002);
    backup_ok({"create", repo + "::tue", data});
    write_random_file(data + "/wed.bin", 1u << 20, 5003);
    backup_ok({"create", repo + "::wed", data});
    pass_file = dir.file("dst.pass");
    write_secret(pass_file, kDstPassphrase);
    dst = dir.file("offsite");
  }

  // DST: its own init, its own passphrase (and key); `extra`: other settings.
  void init_destination(const std::string& path, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args{"--new-passphrase-file", pass_file};
    args.insert(args.end(), extra.begin(), extra.end());
    init_repo(path, args);
  }

  Json copy_json(std::vector<std::string> args) {
    args.insert(args.begin(), "copy");
    args.insert(args.end(), {"--dst-passphrase-file", pass_file, "--json"});
    return Json::parse(backup_ok(args).out);
  }

  std::string data, pass_file, dst;
};

TEST_F(CopyReencrypted, EverySnapshotRestoresByteForByteAndASecondCopySendsNothing) {
  init_destination(dst, {"--chunk-size", "256K", "--pack-size", "1M", "--compression", "3"});
  Json first = copy_json({repo, dst});
  EXPECT_EQ(first["mode"], "re-encrypted");
  ASSERT_EQ(first["snapshots"].size(), 3u);
  for (const Json& s : first["snapshots"]) {
    EXPECT_FALSE(s["present"].get<bool>());
    EXPECT_NE(s["copy-id"], s["id"]) << "another key: another manifest";
  }
  EXPECT_GT(first["packs"].get<uint64_t>(), 4u) << "the destination's 1 MiB packs";
  EXPECT_GT(first["missing-bytes"].get<uint64_t>(), 5u << 20);

  Json again = copy_json({repo, dst});
  EXPECT_EQ(again["packs"].get<uint64_t>(), 0u);
  EXPECT_EQ(again["missing-blobs"].get<uint64_t>(), 0u);
  for (const Json& s : again["snapshots"]) EXPECT_TRUE(s["present"].get<bool>()) << s.dump();

  // The copies keep what the source's snapshots say, with the destination's ids.
  std::map<std::string, Snapshot> ours = snapshots_of(repo, kPassphrase), theirs = snapshots_of(dst, kDstPassphrase);
  ASSERT_EQ(theirs.size(), 3u);
  for (const auto& [name, s] : ours) {
    const Snapshot& c = theirs.at(name);
    EXPECT_EQ(c.time_ns, s.time_ns);
    EXPECT_EQ(c.host, s.host);
    EXPECT_EQ(c.user, s.user);
    EXPECT_EQ(c.paths, s.paths);
    EXPECT_NE(c.tree, s.tree) << "trees are written with the destination's ids";
    EXPECT_EQ(c.parent.empty(), s.parent.empty());
    if (!s.parent.empty()) {
      EXPECT_EQ(c.parent, theirs.at(name == "tue" ? "mon" : "tue").id) << name;
    }
  }
  ASSERT_EQ(theirs.at("mon").images.size(), 1u);
  EXPECT_EQ(theirs.at("mon").images[0].chunk_size, ours.at("mon").images[0].chunk_size) << "chunks keep their size";

  const std::vector<std::string> dst_pass{"--passphrase-file", pass_file};
  auto with_pass = [&](std::vector<std::string> args) {
    args.insert(args.end(), dst_pass.begin(), dst_pass.end());
    return args;
  };
  backup_ok(with_pass({"restore", dst + "::mon", "--image", "disk.raw", "--to", dir.file("disk.out")}));
  EXPECT_TRUE(same_content(dir.file("disk.raw"), dir.file("disk.out")));
  for (const char* name : {"mon", "wed"}) {
    const std::string out = dir.file(std::string("out-") + name);
    backup_ok(with_pass({"restore", dst + "::" + name, "--to", out}));
    for (const char* f : {"/docs/client.txt", "/big.bin"}) EXPECT_TRUE(same_content(data + f, out + data + f)) << f;
    EXPECT_TRUE(fs::is_directory(out + data + "/docs/empty"));
    EXPECT_EQ(fs::read_symlink(out + data + "/link").string(), "docs/client.txt");
  }
  for (const char* f : {"/tue.bin", "/wed.bin"})
    EXPECT_TRUE(same_content(data + f, dir.file("out-wed") + data + f)) << f;
  EXPECT_FALSE(fs::exists(dir.file("out-mon") + data + "/tue.bin"));

  CommandResult check = backup(with_pass({"check", dst, "--read-data"}));
  EXPECT_EQ(check.exit_code, 0) << check.err << check.out;
  for (const std::string& f : files_below(dst)) EXPECT_FALSE(file_contains(f, kMarker)) << f;
  // The source's passphrase does not open the destination, nor its key the packs.
  CommandResult wrong = backup({"list", dst});
  EXPECT_EQ(wrong.exit_code, exit_code(ErrorCategory::crypto)) << wrong.err;
}

TEST_F(CopyReencrypted, ChunksTheDestinationBackedUpItselfAreNotStoredAgain) {
  // The destination backed up the same disk itself (same chunk size: the same
  // plaintext chunks, which its own key names the same way the copy does).
  init_destination(dst);
  backup_ok({"create", dst + "::own", "--image", dir.file("disk.raw"), "--passphrase-file", pass_file});
  const std::string fresh = dir.file("fresh");
  init_destination(fresh);
  Json into_fresh = copy_json({repo + "::mon", fresh});
  Json into_dst = copy_json({repo + "::mon", dst});
  EXPECT_EQ(into_dst["needed-blobs"], into_fresh["needed-blobs"]);
  const uint64_t all = into_fresh["missing-bytes"].get<uint64_t>(), lacked = into_dst["missing-bytes"].get<uint64_t>();
  // What is left to store: the files of 'mon' (about 3.2 MiB) and the trees and lists.
  EXPECT_LT(lacked + (8u << 20), all) << "the disk's chunks were stored again";
  EXPECT_LT(lacked, 4u << 20);
  EXPECT_LT(into_dst["pack-bytes"].get<uint64_t>(), into_fresh["pack-bytes"].get<uint64_t>() / 2);
  backup_ok(
      {"restore", dst + "::mon", "--image", "disk.raw", "--to", dir.file("disk.out"), "--passphrase-file", pass_file});
  EXPECT_TRUE(same_content(dir.file("disk.raw"), dir.file("disk.out")));
  CommandResult check = backup({"check", dst, "--read-data", "--passphrase-file", pass_file});
  EXPECT_EQ(check.exit_code, 0) << check.err << check.out;
}

TEST_F(CopyReencrypted, AWrongDestinationPassphraseIsAClearErrorAndWritesNothing) {
  init_destination(dst);
  const std::vector<std::string> before = files_below(dst);
  const std::string wrong = dir.file("wrong.pass");
  write_secret(wrong, "not the offsite passphrase");
  CommandResult r = backup({"copy", repo, dst, "--dst-passphrase-file", wrong});
  EXPECT_EQ(r.exit_code, exit_code(ErrorCategory::crypto)) << r.err;
  EXPECT_NE(r.err.find("wrong passphrase"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(dst), std::string::npos) << "names the destination: " << r.err;
  // None given: the source's is tried, and the message says how to give DST's.
  CommandResult none = backup({"copy", repo, dst});
  EXPECT_EQ(none.exit_code, exit_code(ErrorCategory::crypto)) << none.err;
  EXPECT_NE(none.err.find("--dst-passphrase-file"), std::string::npos) << none.err;
  EXPECT_EQ(files_below(dst), before) << "nothing was written";
}

TEST_F(CopyReencrypted, DryRunNamedSnapshotsAndLast) {
  init_destination(dst);
  const std::vector<std::string> before = files_below(dst);
  Json dry = copy_json({repo, dst, "--dry-run"});
  EXPECT_TRUE(dry["dry-run"].get<bool>());
  EXPECT_GT(dry["missing-bytes"].get<uint64_t>(), 5u << 20);
  EXPECT_EQ(files_below(dst), before) << "a dry run writes nothing";

  Json named = copy_json({repo + "::tue", repo + "::mon", dst});
  ASSERT_EQ(named["snapshots"].size(), 2u);
  EXPECT_EQ(named["snapshots"][0]["name"], "mon") << "oldest first";
  EXPECT_EQ(named["snapshots"][1]["name"], "tue");
  Json last = copy_json({repo, dst, "--last", "1"});
  ASSERT_EQ(last["snapshots"].size(), 1u);
  EXPECT_EQ(last["snapshots"][0]["name"], "wed");
  EXPECT_FALSE(last["snapshots"][0]["present"].get<bool>());
  EXPECT_LT(last["missing-bytes"].get<uint64_t>(), 2u << 20) << "only wed.bin and the trees were new";
  EXPECT_EQ(snapshots_of(dst, kDstPassphrase).size(), 3u);
}

// Ctrl-C, then a kill, in the middle of a copy through the binary: no snapshot in the
// destination either time, and the copy after them completes and checks clean.
TEST_F(CopyReencrypted, InterruptedAndKilledCopiesLeaveNoSnapshotAndTheNextOneCompletes) {
  using namespace std::chrono_literals;
  init_destination(dst, {"--pack-size", "1M"});
  auto packs_there = [&] { return fs::exists(dst + "/data") ? files_below(dst + "/data").size() : 0; };
  for (int sig : {SIGINT, SIGKILL}) {
    const size_t before = packs_there();
    Background p({"backup", "copy", repo, dst, "--dst-passphrase-file", pass_file, "--bwlimit", "4M"}, dir.path());
    ASSERT_TRUE(p.wait_until_catching(SIGINT));
    for (int i = 0; i < 3000 && packs_there() < before + 2 && !p.finished(); ++i) std::this_thread::sleep_for(10ms);
    ASSERT_TRUE(p.signal(sig)) << "the copy ended before the signal";
    EXPECT_EQ(p.wait(), 128 + sig) << p.err();
    if (sig == SIGINT) {
      EXPECT_NE(p.err().find("no snapshot was copied"), std::string::npos) << p.err();
    }
    EXPECT_TRUE(snapshots_of(dst, kDstPassphrase).empty()) << "nothing that looks like a snapshot";
  }
  Json done = copy_json({repo, dst});
  EXPECT_EQ(done["snapshots"].size(), 3u);
  EXPECT_GT(done["adopted-packs"].get<uint64_t>(), 0u) << "the complete packs of the runs before";
  CommandResult check = backup({"check", dst, "--read-data", "--passphrase-file", pass_file});
  EXPECT_EQ(check.exit_code, 0) << check.err << check.out;
  const std::string out = dir.file("out");
  backup_ok({"restore", dst + "::wed", "--to", out, "--passphrase-file", pass_file});
  for (const char* f : {"/docs/client.txt", "/big.bin", "/tue.bin", "/wed.bin"})
    EXPECT_TRUE(same_content(data + f, out + data + f)) << f;
}

TEST_F(CopyReencrypted, AnotherSnapshotOfTheSameNameIsRefused) {
  init_destination(dst);
  backup_ok({"create", dst + "::tue", data + "/docs", "--passphrase-file", pass_file});
  CommandResult r = backup({"copy", repo, dst, "--dst-passphrase-file", pass_file});
  EXPECT_EQ(r.exit_code, exit_code(ErrorCategory::exists)) << r.err;
  EXPECT_NE(r.err.find("'tue'"), std::string::npos) << r.err;
  EXPECT_EQ(snapshots_of(dst, kDstPassphrase).size(), 1u) << "nothing was copied";
}

// --- in process, on memory stores --------------------------------------------------

class CopyReencryptedStore : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(dir.file("src/d"));
    write_random_file(dir.file("src/a"), 5u << 20, 5101);
    write_random_file(dir.file("src/d/b"), 3u << 20, 5102);
    std::string text;
    for (int i = 0; i < 2000; ++i) text += kMarker + " " + std::to_string(i) + "\n";
    arche::test::write_file(dir.file("src/d/c.txt"), {text.begin(), text.end()});
    InitOptions init;
    init.kdf.memlimit = 8u << 20;
    init.kdf.opslimit = 1;
    Repository::init(*source_store, bytes_of(kPassphrase), init);
    source = Repository::open(source_store, bytes_of(kPassphrase));
    CreateOptions create;
    create.name = "one";
    create.paths = {dir.file("src")};
    create.threads = 2;
    create_snapshot(*source, create);
    write_random_file(dir.file("src/e"), 2u << 20, 5103);
    create.name = "two";
    create_snapshot(*source, create);

    init.settings.pack_size = 1u << 20;  // many packs: a failure can come between them
    Repository::init(*dst_store, bytes_of(kDstPassphrase), init);
  }

  std::unique_ptr<Repository> destination() { return Repository::open(dst_store, bytes_of(kDstPassphrase)); }

  // Restores both snapshots from the destination and checks every chunk there.
  void expect_complete_copy() {
    auto fresh = destination();
    for (const char* name : {"one", "two"}) {
      RestoreRequest r;
      r.snapshot = name;
      r.to = dir.file(std::string("out-") + name);
      restore_snapshot(*fresh, r);
    }
    for (const char* f : {"src/a", "src/d/b", "src/d/c.txt", "src/e"})
      EXPECT_TRUE(same_content(dir.file(f), dir.file("out-two") + dir.file(f))) << f;
    EXPECT_TRUE(same_content(dir.file("src/a"), dir.file("out-one") + dir.file("src/a")));
    CheckOptions c;
    c.read_data = true;
    CheckReport report = check_repository(*fresh, c);
    EXPECT_TRUE(report.ok()) << (report.errors.empty() ? "damaged chunks" : report.errors[0]);
    EXPECT_EQ(report.snapshots, 2u);
  }

  size_t objects(const std::string& prefix) { return dst_store->list(prefix).size(); }

  TempDir dir;
  std::shared_ptr<MemoryStore> source_store = std::make_shared<MemoryStore>();
  std::shared_ptr<MemoryStore> dst_store = std::make_shared<MemoryStore>();
  std::unique_ptr<Repository> source;
};

TEST_F(CopyReencryptedStore, AFailedPackWriteLeavesNoSnapshotAndTheRerunAdoptsWhatWasComplete) {
  dst_store->fail_next("data/", 1, ErrorCategory::io, /*skip=*/3);
  {
    auto dst = destination();
    EXPECT_THROW(copy_snapshots(*source, *dst, CopyOptions{}), Error);
  }
  EXPECT_EQ(objects("snapshots/"), 0u) << "nothing that looks like a snapshot";
  EXPECT_EQ(objects("index/"), 0u);
  const size_t left = objects("data/");
  EXPECT_GE(left, 1u) << "the packs completed before the failure stay";

  auto dst = destination();
  CopyReport again = copy_snapshots(*source, *dst, CopyOptions{});
  EXPECT_TRUE(again.reencrypted);
  EXPECT_EQ(again.adopted_packs, left);
  ASSERT_EQ(again.snapshots.size(), 2u);
  EXPECT_FALSE(again.snapshots[0].present);
  expect_complete_copy();
}

TEST_F(CopyReencryptedStore, AFailedIndexWriteLeavesNoSnapshotAndTheRerunStoresNothingAgain) {
  dst_store->fail_next("index/", 1);
  {
    auto dst = destination();
    EXPECT_THROW(copy_snapshots(*source, *dst, CopyOptions{}), Error);
  }
  EXPECT_EQ(objects("snapshots/"), 0u);
  const size_t packs = objects("data/");
  EXPECT_GT(packs, 3u);
  auto dst = destination();
  CopyReport again = copy_snapshots(*source, *dst, CopyOptions{});
  EXPECT_EQ(again.adopted_packs, packs);
  EXPECT_EQ(again.packs, 0u) << "every chunk was in an adopted pack";
  EXPECT_EQ(objects("data/"), packs);
  expect_complete_copy();
}

TEST_F(CopyReencryptedStore, AnInterruptLeavesNoSnapshotAndTheRerunCompletes) {
  interrupt::install_handlers();
  interrupt::reset();
  CopyOptions o;
  size_t calls = 0;
  o.progress = [&calls](uint64_t done, uint64_t total) {
    EXPECT_LE(done, total);
    if (++calls == 8) ::kill(::getpid(), SIGINT);  // recorded; the copy notices it at its next check
  };
  try {
    auto dst = destination();
    copy_snapshots(*source, *dst, o);
    ADD_FAILURE() << "the copy ignored the interrupt";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::interrupted) << e.what();
    EXPECT_NE(std::string(e.what()).find("no snapshot was copied"), std::string::npos) << e.what();
  }
  interrupt::reset();
  EXPECT_EQ(objects("snapshots/"), 0u);
  EXPECT_EQ(objects("index/"), 0u);

  uint64_t last_done = 0, last_total = 0;
  o.progress = [&](uint64_t done, uint64_t total) {
    EXPECT_GE(done, last_done) << "progress never goes back";
    last_done = done;
    last_total = total;
  };
  auto dst = destination();
  CopyReport report = copy_snapshots(*source, *dst, o);
  EXPECT_EQ(report.snapshots.size(), 2u);
  EXPECT_GT(last_total, 10u << 20);
  EXPECT_EQ(last_done, last_total) << "the last call says all of it";
  expect_complete_copy();
}

// The nightly case: the copy of yesterday's snapshot tells which destination ids the
// unchanged chunks have, so today's copy reads only what changed — also when
// yesterday's snapshot is not among those selected.
TEST_F(CopyReencryptedStore, ALaterCopyReadsOnlyTheChunksThatChanged) {
  auto dst = destination();
  CopyOptions first;
  first.snapshots = {"one"};
  CopyReport one = copy_snapshots(*source, *dst, first);
  EXPECT_EQ(one.known_blobs, 0u);
  EXPECT_GT(one.read_bytes, 8u << 20) << "everything of 'one' was read";
  CopyOptions last;
  last.last = 1;
  CopyReport two = copy_snapshots(*source, *dst, last);
  ASSERT_EQ(two.snapshots.size(), 1u);
  EXPECT_EQ(two.snapshots[0].name, "two");
  EXPECT_GT(two.known_blobs, 4u);
  EXPECT_LT(two.read_bytes, 3u << 20) << "only src/e (2 MiB) was new";
  EXPECT_GT(two.read_blobs, 0u);
  expect_complete_copy();
  // 'two' names 'one' as its parent: in the destination, by the copy's id.
  const std::vector<Snapshot> copies = load_snapshots(*destination());
  ASSERT_EQ(copies.size(), 2u);
  EXPECT_EQ(copies[1].parent, copies[0].id);
}

// A snapshot of the destination that has the name, time and host of a source
// snapshot but another shape is not taken for its copy's ids: the chunks are read.
TEST_F(CopyReencryptedStore, ASnapshotOfAnotherShapeTeachesNothing) {
  const Snapshot one = load_snapshots(*source).front();
  auto dst = destination();
  CreateOptions fake;
  fake.name = "one";
  fake.host = one.host;
  fake.time_ns = one.time_ns;
  fake.paths = {dir.file("src/d")};
  fake.threads = 2;
  create_snapshot(*dst, fake);
  CopyOptions o;
  o.snapshots = {"two"};
  CopyReport two = copy_snapshots(*source, *dst, o);
  EXPECT_EQ(two.known_blobs, 0u);
  EXPECT_GT(two.read_bytes, 10u << 20);
  RestoreRequest r;
  r.snapshot = "two";
  r.to = dir.file("out");
  restore_snapshot(*destination(), r);
  for (const char* f : {"src/a", "src/d/b", "src/d/c.txt", "src/e"})
    EXPECT_TRUE(same_content(dir.file(f), dir.file("out") + dir.file(f))) << f;
}

TEST_F(CopyReencryptedStore, BandwidthLimitIsHonoured) {
  auto first = std::make_shared<MemoryStore>();
  InitOptions init;
  init.kdf.memlimit = 8u << 20;
  init.kdf.opslimit = 1;
  Repository::init(*first, bytes_of(kDstPassphrase), init);
  auto measure = Repository::open(first, bytes_of(kDstPassphrase));
  CopyOptions only_one;
  only_one.snapshots = {"one"};
  const uint64_t bytes = copy_snapshots(*source, *measure, only_one).pack_bytes;
  ASSERT_GT(bytes, 4u << 20);

  CopyOptions limited = only_one;
  limited.bwlimit = bytes / 2;
  auto dst = destination();
  const auto start = std::chrono::steady_clock::now();
  copy_snapshots(*source, *dst, limited);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GE(seconds, 1.7) << "at half the bytes per second it takes about two seconds";
}

}  // namespace
}  // namespace arche::backup::test
