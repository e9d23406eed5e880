// Issue 12, acceptance 1: the part of the backup suite that does not depend on where
// the repository lives, run against every store factory (store_factories.h): the
// Store contract itself, a backup/restore/check round trip, damage found, prune and
// repair, locks, copy into a replica and re-encrypted. The CLI suites run against
// local directories as before.
#include <gtest/gtest.h>

#include <boost/filesystem.hpp>

#include <algorithm>

#include "backup/check.h"
#include "backup/copy.h"
#include "backup/create.h"
#include "backup/lock.h"
#include "backup/prune.h"
#include "backup/repair.h"
#include "backup/restore.h"
#include "backup/snapshot.h"
#include "core/error.h"
#include "tests/backup/backup_test_util.h"
#include "tests/backup/memory_store.h"
#include "tests/backup/store_factories.h"

namespace fs = boost::filesystem;

namespace arche::backup::test {
namespace {

std::span<const uint8_t> pass() { return {reinterpret_cast<const uint8_t*>(kPassphrase), std::strlen(kPassphrase)}; }

std::vector<uint8_t> bytes(const std::string& s) { return {s.begin(), s.end()}; }

ErrorCategory category_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.category();
  }
  return ErrorCategory::internal;
}

class StoreSuite : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override {
    store = GetParam().make(dir.path());
    src = dir.file("src");
    fs::create_directories(src + "/d");
    write_random_file(src + "/a", 200000, 1001);  // below the smallest chunk: one chunk
    write_random_file(src + "/d/b", 2u << 20, 1002);
    write_random_file(dir.file("disk.raw"), 3u << 20, 1003);
  }

  // A cheap key derivation: the tests are about the store, not the KDF.
  static InitOptions init_options(uint32_t pack_size = 1u << 20) {
    InitOptions o;
    o.kdf.memlimit = 8u << 20;
    o.kdf.opslimit = 1;
    o.settings.pack_size = pack_size;
    return o;
  }

  std::unique_ptr<Repository> make_repository(uint32_t pack_size = 1u << 20) {
    Repository::init(*store, pass(), init_options(pack_size));
    return Repository::open(store, pass());
  }

  Snapshot backup(Repository& repo, const std::string& name, std::vector<std::string> paths,
                  std::vector<std::string> images = {}) {
    CreateOptions o;
    o.name = name;
    o.paths = std::move(paths);
    o.images = std::move(images);
    o.threads = 2;
    return create_snapshot(repo, o);
  }

  void restore(Repository& repo, const std::string& name, const std::string& to, const std::string& image = "") {
    RestoreRequest r;
    r.snapshot = name;
    r.image = image;
    r.to = to;
    restore_snapshot(repo, r);
  }

  // The source of the copy tests, in memory: snapshot "one" of the tree and
  // disk.raw, "two" of the tree with a new file c; the tree holds d/marker.txt, made
  // of `marker` over and over.
  std::unique_ptr<Repository> copy_source(const std::string& marker, uint64_t seed) {
    std::string text;
    for (int i = 0; i < 2000; ++i) text += marker + " line " + std::to_string(i) + "\n";
    arche::test::write_file(src + "/d/marker.txt", bytes(text));
    auto source_store = std::make_shared<MemoryStore>();
    Repository::init(*source_store, pass(), init_options());
    auto source = Repository::open(source_store, pass());
    backup(*source, "one", {src}, {dir.file("disk.raw")});
    write_random_file(src + "/c", 300000, seed);
    backup(*source, "two", {src});
    return source;
  }

  // The copy on this store restores as the source does, `check --read-data` finds it
  // clean, and no object of the store holds `marker` (no plaintext travelled).
  void expect_copy_restores_clean_without(const std::string& marker) {
    auto fresh = Repository::open(store, pass());
    restore(*fresh, "one", dir.file("disk.out"), "disk.raw");
    EXPECT_TRUE(same_content(dir.file("disk.raw"), dir.file("disk.out")));
    restore(*fresh, "two", dir.file("out"));
    for (const char* f : {"/a", "/c", "/d/b", "/d/marker.txt"})
      EXPECT_TRUE(same_content(src + f, dir.file("out") + src + f)) << f;
    CheckOptions c;
    c.read_data = true;
    CheckReport r = check_repository(*fresh, c);
    EXPECT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0]);
    for (const ObjectInfo& obj : store->list("")) {
      const std::vector<uint8_t> data = store->read(obj.name);
      EXPECT_EQ(std::search(data.begin(), data.end(), marker.begin(), marker.end()), data.end()) << obj.name;
    }
  }

  TempDir dir;
  std::shared_ptr<Store> store;
  std::string src;
};

TEST_P(StoreSuite, ObjectsFollowTheContract) {
  store->write("index/aaaa", bytes("first"), WriteMode::create);
  EXPECT_EQ(category_of([&] { store->write("index/aaaa", bytes("other"), WriteMode::create); }), ErrorCategory::exists);
  EXPECT_EQ(store->read("index/aaaa"), bytes("first"));
  store->write("index/aaaa", bytes("second!"), WriteMode::replace);
  EXPECT_EQ(store->read("index/aaaa"), bytes("second!"));
  EXPECT_EQ(store->read_range("index/aaaa", 1, 3), bytes("eco"));
  EXPECT_EQ(category_of([&] { store->read_range("index/aaaa", 5, 10); }), ErrorCategory::format);
  std::optional<ObjectInfo> info = store->stat("index/aaaa");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->size, 7u);
  EXPECT_FALSE(store->stat("index/nope"));
  EXPECT_EQ(category_of([&] { store->read("index/nope"); }), ErrorCategory::not_found);
  store->remove("index/nope");  // removing a missing object is not an error

  // A writer's object appears only when committed; dropped, it leaves nothing.
  std::vector<uint8_t> big = arche::test::random_bytes(5u << 20, 1004);
  {
    std::unique_ptr<ObjectWriter> w = store->create("data/ab/abcd", WriteMode::create);
    w->append(std::span(big).first(1u << 20));
    w->append(std::span(big).subspan(1u << 20));
    EXPECT_EQ(w->bytes_written(), big.size());
    EXPECT_FALSE(store->stat("data/ab/abcd"));
    w->commit();
  }
  {
    std::unique_ptr<ObjectWriter> w = store->create("data/cd/cdef", WriteMode::create);
    w->append(std::span(big).first(1000));
  }
  EXPECT_FALSE(store->stat("data/cd/cdef"));
  std::unique_ptr<ObjectReader> r = store->open("data/ab/abcd");
  EXPECT_EQ(r->size(), big.size());
  std::vector<uint8_t> part(4096);
  r->read(3u << 20, part);
  EXPECT_TRUE(std::equal(part.begin(), part.end(), big.begin() + (3u << 20)));

  // Listings by prefix, recursive, without temporaries.
  store->write("snapshots/0001", bytes("s"), WriteMode::create);
  auto names = [&](std::string_view prefix) {
    std::vector<std::string> out;
    for (const ObjectInfo& o : store->list(prefix)) out.push_back(o.name);
    std::sort(out.begin(), out.end());
    return out;
  };
  // Eventually consistent stores list a write a moment later.
  std::this_thread::sleep_for(std::chrono::milliseconds(store->capabilities().listing_delay_ms));
  EXPECT_EQ(names("data/"), (std::vector<std::string>{"data/ab/abcd"}));
  EXPECT_EQ(names("snapshots/"), (std::vector<std::string>{"snapshots/0001"}));
  EXPECT_EQ(names("index/"), (std::vector<std::string>{"index/aaaa"}));
  EXPECT_EQ(names("").size(), 3u);
  store->remove("snapshots/0001");
  EXPECT_FALSE(store->stat("snapshots/0001"));
  EXPECT_TRUE(store->list_temporaries().empty());
}

TEST_P(StoreSuite, BackupRestoreAndCheckRoundTrip) {
  auto repo = make_repository();
  Snapshot s = backup(*repo, "one", {src}, {dir.file("disk.raw")});
  EXPECT_EQ(s.stats.files, 2u);
  write_random_file(src + "/c", 5000, 1005);
  Snapshot t = backup(*repo, "two", {src});
  EXPECT_EQ(t.stats.unchanged_files, 2u) << "the parent's files are not read again";
  restore(*repo, "one", dir.file("out"));
  EXPECT_TRUE(same_content(src + "/d/b", dir.file("out") + src + "/d/b"));
  restore(*repo, "one", dir.file("disk.out"), "disk.raw");
  EXPECT_TRUE(same_content(dir.file("disk.raw"), dir.file("disk.out")));
  restore(*repo, "latest", dir.file("out2"));
  EXPECT_TRUE(same_content(src + "/c", dir.file("out2") + src + "/c"));
  CheckOptions c;
  c.read_data = true;
  CheckReport r = check_repository(*repo, c);
  EXPECT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0]);
  EXPECT_EQ(r.snapshots, 2u);
  EXPECT_GT(r.bytes_verified, 5u << 20);
  // A second opening sees the same repository.
  auto again = Repository::open(store, pass());
  EXPECT_EQ(again->id(), repo->id());
  EXPECT_EQ(load_snapshots(*again).size(), 2u);
}

TEST_P(StoreSuite, DamageIsFoundAndNamed) {
  auto repo = make_repository();
  backup(*repo, "one", {src});
  repo->load_index(false);
  std::vector<uint8_t> content = arche::test::read_file(src + "/a");
  auto where = repo->index().find(repo->keys().chunk_id(content));
  ASSERT_TRUE(where) << "a is one chunk";
  const std::string pack = pack_relative_path(repo->index().pack_id(where->pack));
  std::vector<uint8_t> data = store->read(pack);
  data[where->offset + where->length / 2] ^= 0x10;
  store->write(pack, data, WriteMode::replace);
  CheckOptions c;
  c.read_data = true;
  CheckReport r = check_repository(*repo, c);
  ASSERT_EQ(r.damaged.size(), 1u);
  ASSERT_FALSE(r.damaged[0].affects.empty());
  EXPECT_NE(r.damaged[0].affects[0].find(src + "/a"), std::string::npos) << r.damaged[0].affects[0];
  auto fresh = Repository::open(store, pass());
  EXPECT_EQ(category_of([&] { restore(*fresh, "one", dir.file("out")); }), ErrorCategory::corrupt);
  EXPECT_FALSE(fs::exists(dir.file("out") + src + "/a")) << "the damaged file is not left looking restored";
  EXPECT_TRUE(same_content(src + "/d/b", dir.file("out") + src + "/d/b"));
}

TEST_P(StoreSuite, PruneFreesTheSpaceAndRepairRebuildsTheIndex) {
  auto repo = make_repository();
  for (int i = 0; i < 3; ++i) {
    write_random_file(src + "/own", 2u << 20, 1010 + i);
    backup(*repo, "s" + std::to_string(i), {src});
  }
  uint64_t before = 0;
  for (const PackObject& p : repo->list_packs()) before += p.size;
  PruneOptions o;
  o.policy.last = 1;
  PruneReport r = prune(*repo, o);
  EXPECT_GE(r.packs_deleted, 2u);
  EXPECT_EQ(r.packs_waiting, 0u) << "nobody ran beside it: deleted at once";
  uint64_t after = 0;
  for (const PackObject& p : repo->list_packs()) after += p.size;
  EXPECT_LT(after + (3u << 20), before) << "two snapshots' own 2 MiB are gone";
  EXPECT_TRUE(repo->list_files("deletions").empty());
  restore(*repo, "s2", dir.file("out"));
  EXPECT_TRUE(same_content(src + "/own", dir.file("out") + src + "/own"));

  for (const std::string& name : repo->list_files("index")) repo->remove_file("index", name);
  EXPECT_EQ(category_of([&] { restore(*repo, "s2", dir.file("lost")); }), ErrorCategory::corrupt);
  RepairReport rep = repair_index(*repo);
  EXPECT_GE(rep.packs, 1u);
  restore(*repo, "s2", dir.file("out2"));
  EXPECT_TRUE(same_content(src + "/own", dir.file("out2") + src + "/own"));
  CheckOptions c;
  c.read_data = true;
  EXPECT_TRUE(check_repository(*repo, c).ok());
}

TEST_P(StoreSuite, LocksConflictAsTheirModesSay) {
  auto repo = make_repository();
  {
    RepoLock exclusive(*repo, LockMode::exclusive, "test exclusive");
    EXPECT_EQ(category_of([&] { RepoLock shared(*repo, LockMode::shared, "test shared"); }), ErrorCategory::busy);
  }
  {
    RepoLock shared(*repo, LockMode::shared, "a backup");
    RepoLock maintain(*repo, LockMode::maintain, "a prune");  // beside backups
    RepoLock another_shared(*repo, LockMode::shared, "another backup");
    EXPECT_EQ(category_of([&] { RepoLock second(*repo, LockMode::maintain, "a second prune"); }), ErrorCategory::busy);
    EXPECT_EQ(category_of([&] { RepoLock check(*repo, LockMode::exclusive, "a check"); }), ErrorCategory::busy);
    EXPECT_EQ(list_locks(*repo).size(), 3u);
  }
  EXPECT_TRUE(list_locks(*repo).empty()) << "locks go with their holders";
  // A damaged lock object blocks exclusive and maintenance work; unlock removes it.
  store->write("locks/0123456789abcdef0123456789abcdef", arche::test::random_bytes(100, 1020), WriteMode::create);
  std::this_thread::sleep_for(std::chrono::milliseconds(store->capabilities().listing_delay_ms));
  EXPECT_EQ(category_of([&] { RepoLock check(*repo, LockMode::exclusive, "check"); }), ErrorCategory::busy);
  { RepoLock shared(*repo, LockMode::shared, "backup"); }
  EXPECT_EQ(remove_locks(*repo, false).size(), 1u);
  RepoLock check(*repo, LockMode::exclusive, "check");
}

// A replica on this store (init_same_key) filled by copy from a local memory
// repository: the snapshots restore there, a second copy sends nothing, and no store
// object holds the plaintext.
TEST_P(StoreSuite, CopyIntoAReplicaOnThisStore) {
  const std::string marker = "Rechnung 2026-0815 Kunde Mueller";
  auto source = copy_source(marker, 1030);
  Repository::init_same_key(*store, *source, pass(), init_options().kdf);
  auto replica = Repository::open(store, pass());
  EXPECT_EQ(replica->id(), source->id());
  CopyOptions only_first;
  only_first.snapshots = {"one"};
  CopyReport first = copy_snapshots(*source, *replica, only_first);
  ASSERT_EQ(first.snapshots.size(), 1u);
  EXPECT_GT(first.packs, 0u);
  CopyReport rest = copy_snapshots(*source, *replica, CopyOptions{});
  ASSERT_EQ(rest.snapshots.size(), 2u);
  EXPECT_TRUE(rest.snapshots[0].present);
  EXPECT_FALSE(rest.snapshots[1].present);
  EXPECT_LT(rest.missing_blobs, rest.needed_blobs) << "what 'one' brought is not sent again";
  CopyReport again = copy_snapshots(*source, *replica, CopyOptions{});
  EXPECT_EQ(again.packs, 0u);
  EXPECT_EQ(again.missing_blobs, 0u);
  expect_copy_restores_clean_without(marker);
}

// A repository of its own on this store (another key, other settings) filled by
// copy from a local memory repository: the chunks are re-encrypted, the snapshots
// restore there, a second copy sends nothing, and no store object holds plaintext.
TEST_P(StoreSuite, CopyReencryptedOntoThisStore) {
  const std::string marker = "Gutschrift 2026-4711 Kundin Schulze";
  auto source = copy_source(marker, 1031);
  auto target = make_repository(/*pack_size=*/2u << 20);
  EXPECT_NE(target->id(), source->id());
  CopyReport first = copy_snapshots(*source, *target, CopyOptions{});
  EXPECT_TRUE(first.reencrypted);
  ASSERT_EQ(first.snapshots.size(), 2u);
  EXPECT_GT(first.packs, 0u);
  CopyReport again = copy_snapshots(*source, *target, CopyOptions{});
  EXPECT_EQ(again.packs, 0u);
  EXPECT_EQ(again.missing_blobs, 0u);
  for (const CopiedSnapshot& s : again.snapshots) EXPECT_TRUE(s.present) << s.name;
  expect_copy_restores_clean_without(marker);
}

std::string factory_name(const ::testing::TestParamInfo<StoreFactory>& info) { return info.param.name; }

INSTANTIATE_TEST_SUITE_P(Stores, StoreSuite, ::testing::ValuesIn(store_factories()), factory_name);

}  // namespace
}  // namespace arche::backup::test
