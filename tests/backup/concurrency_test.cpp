// Issue 12: many hosts, one repository, on a store that guarantees little. Backups at
// once under shared locks; a prune beside a running backup never deletes (nor keeps
// out of the index) what that backup refers to; locks stay correct where listings
// lag; a backup whose lock could not be refreshed stops before it writes; a store
// that fails mid-backup leaves the repository sound. In memory (deterministic, with
// the fault-injecting store) and with concurrent processes on a local repository.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <barrier>
#include <boost/filesystem.hpp>
#include <set>
#include <thread>

#include "backup/check.h"
#include "backup/create.h"
#include "backup/deletions.h"
#include "backup/lock.h"
#include "backup/prune.h"
#include "backup/restore.h"
#include "core/error.h"
#include "core/json.h"
#include "tests/backup/backup_test_util.h"
#include "tests/backup/memory_store.h"
#include "tests/backup/store_factories.h"
#ifdef ARCHE_TEST_REMOTE_STORES
#include "tests/backup/rgw_fixture.h"
#endif

namespace fs = boost::filesystem;

namespace arche::backup::test {
namespace {

using namespace std::chrono_literals;

std::span<const uint8_t> pass() { return {reinterpret_cast<const uint8_t*>(kPassphrase), std::strlen(kPassphrase)}; }

std::unique_ptr<Repository> new_repository(const std::shared_ptr<Store>& store) {
  InitOptions o;
  o.kdf.memlimit = 8u << 20;
  o.kdf.opslimit = 1;
  o.settings.pack_size = 1u << 20;
  Repository::init(*store, pass(), o);
  return Repository::open(store, pass());
}

Snapshot back_up(Repository& repo, const std::string& name, const std::vector<std::string>& paths) {
  CreateOptions o;
  o.name = name;
  o.paths = paths;
  o.threads = 1;
  return create_snapshot(repo, o);
}

void restore(Repository& repo, const std::string& name, const std::string& to) {
  RestoreRequest r;
  r.snapshot = name;
  r.to = to;
  restore_snapshot(repo, r);
}

bool check_clean(Repository& repo, std::string* why = nullptr) {
  CheckOptions c;
  c.read_data = true;
  CheckReport r = check_repository(repo, c);
  if (why && !r.ok()) *why = r.errors.empty() ? "damaged chunks" : r.errors.front();
  return r.ok();
}

PruneOptions keep_last(int n) {
  PruneOptions o;
  o.policy.last = n;
  return o;
}

class BackupConcurrency : public ::testing::Test {
 protected:
  void SetUp() override {
    src = dir.file("src");
    fs::create_directories(src);
    write_random_file(src + "/data", 3u << 20, 2001);  // three 1 MiB packs' worth
  }
  TempDir dir;
  std::string src;
};

// The race prune and backup meet in: the backup relies on packs of chunks no
// snapshot needs any more (it stores the same file again), and the prune takes those
// packs out of the index while the backup is about to write its manifest.
TEST_F(BackupConcurrency, APruneBesideABackupKeepsWhatTheBackupReliesOn) {
  auto store = std::make_shared<MemoryStore>();
  auto repo = new_repository(store);
  back_up(*repo, "old", {src});
  auto maintenance = Repository::open(store, pass());
  forget_snapshot(*maintenance, "old");  // the chunks of `data` are unused now

  // The backup stops just before its manifest; the prune runs meanwhile.
  store->close_gate("snapshots/");
  std::exception_ptr failure;
  std::thread b([&] {
    try {
      auto mine = Repository::open(store, pass());
      Snapshot s = back_up(*mine, "new", {src});
      EXPECT_LT(s.stats.new_bytes, 64u << 10) << "it deduplicated against the unused chunks";
    } catch (...) {
      failure = std::current_exception();
    }
  });
  ASSERT_TRUE(store->wait_at_gate(60s));
  PruneReport first = prune(*maintenance, keep_last(5));
  EXPECT_GE(first.packs_waiting, 3u) << "marked, not deleted: a backup runs beside the prune";
  EXPECT_EQ(first.packs_deleted, 0u);
  EXPECT_EQ(load_deletion_marks(*maintenance).size(), 1u);
  store->open_gate();
  b.join();
  if (failure) std::rethrow_exception(failure);

  // The new snapshot restores at once (its backup indexed the packs again) ...
  auto reader = Repository::open(store, pass());
  restore(*reader, "new", dir.file("out"));
  EXPECT_TRUE(same_content(src + "/data", dir.file("out") + src + "/data"));
  std::string why;
  EXPECT_TRUE(check_clean(*reader, &why)) << why;
  // ... and the next prune, with the backup gone, deletes nothing it needs.
  PruneReport second = prune(*maintenance, keep_last(5));
  EXPECT_EQ(second.packs_deleted, 0u);
  EXPECT_TRUE(load_deletion_marks(*maintenance).empty());
  restore(*reader, "new", dir.file("out2"));
  EXPECT_TRUE(same_content(src + "/data", dir.file("out2") + src + "/data"));
  EXPECT_TRUE(check_clean(*reader, &why)) << why;
}

TEST_F(BackupConcurrency, MarkedPacksAreDeletedOnceTheBackupsBesideThePruneHaveEnded) {
  auto store = std::make_shared<MemoryStore>();
  auto repo = new_repository(store);
  back_up(*repo, "old", {src});
  forget_snapshot(*repo, "old");
  std::optional<RepoLock> running;
  running.emplace(*repo, LockMode::shared, "a backup of another host");
  PruneReport first = prune(*repo, keep_last(5));
  EXPECT_GE(first.packs_waiting, 3u);
  // A backup that starts now sees the mark: it adopts none of the marked packs.
  const std::vector<DeletionMark> marks = load_deletion_marks(*repo);
  ASSERT_EQ(marks.size(), 1u);
  write_random_file(dir.file("other"), 1000, 2002);
  back_up(*repo, "unrelated", {dir.file("other")});
  for (const PackInfo& p : repo->read_all_index_files())
    EXPECT_EQ(std::count(marks[0].packs.begin(), marks[0].packs.end(), p.id), 0) << "a marked pack was adopted";
  EXPECT_EQ(prune(*repo, keep_last(5)).packs_deleted, 0u) << "the backup beside the first prune still runs";
  running.reset();
  PruneReport last = prune(*repo, keep_last(5));
  EXPECT_GE(last.packs_deleted, 3u);
  EXPECT_EQ(last.packs_waiting, 0u);
  EXPECT_TRUE(load_deletion_marks(*repo).empty());
  std::string why;
  EXPECT_TRUE(check_clean(*repo, &why)) << why;
  restore(*repo, "unrelated", dir.file("out"));
}

TEST_F(BackupConcurrency, LocksHoldWhereListingsLag) {
  // Writes appear in listings 40 ms late; the store says so, and locks wait it out.
  MemoryStore::Options o;
  o.listing_lag = 40ms;
  o.capabilities.listing_delay_ms = 60;
  auto store = std::make_shared<MemoryStore>(o);
  auto repo = new_repository(store);
  for (int round = 0; round < 8; ++round) {
    std::barrier start(2);
    std::atomic<int> held{0}, overlapped{0};
    auto contender = [&](LockMode mode) {
      start.arrive_and_wait();
      try {
        RepoLock lock(*repo, mode, "contender");
        if (++held > 1) ++overlapped;
        std::this_thread::sleep_for(20ms);
        --held;
      } catch (const Error& e) {
        EXPECT_EQ(e.category(), ErrorCategory::busy);
      }
    };
    std::thread a(contender, LockMode::exclusive), b(contender, round % 2 ? LockMode::maintain : LockMode::exclusive);
    a.join();
    b.join();
    EXPECT_EQ(overlapped, 0) << "round " << round << ": conflicting locks were held at once";
    std::this_thread::sleep_for(80ms);  // let the removals show in listings
  }
}

TEST_F(BackupConcurrency, ABackupWhoseLockCannotBeRefreshedStopsBeforeItWrites) {
  LockTiming saved = lock_timing();
  lock_timing().refresh = 20ms;
  lock_timing().retry = 20ms;
  lock_timing().max_unrefreshed = 150ms;
  struct Restore {
    LockTiming t;
    ~Restore() { lock_timing() = t; }
  } restore_timing{saved};
  auto store = std::make_shared<MemoryStore>();
  auto repo = new_repository(store);
  // The backup holds at its first pack while the store refuses lock refreshes.
  store->close_gate("data/");
  std::exception_ptr failure;
  std::thread b([&] {
    try {
      back_up(*repo, "stalled", {src});
    } catch (...) {
      failure = std::current_exception();
    }
  });
  ASSERT_TRUE(store->wait_at_gate(60s));
  store->fail_next("locks/", 1000000, ErrorCategory::io);
  std::this_thread::sleep_for(400ms);
  store->fail_next("locks/", 0);
  store->open_gate();
  b.join();
  ASSERT_TRUE(failure) << "the backup went on as if its lock were fresh";
  try {
    std::rethrow_exception(failure);
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::busy);
    EXPECT_NE(std::string(e.what()).find("could not be refreshed"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(repo->list_files("snapshots").empty());
  EXPECT_TRUE(repo->list_files("index").empty()) << "nothing a prune could not expect was written";
}

TEST_F(BackupConcurrency, AStoreThatFailsMidBackupLeavesTheRepositorySound) {
  for (ErrorCategory category : {ErrorCategory::io, ErrorCategory::no_space}) {
    auto store = std::make_shared<MemoryStore>();
    auto repo = new_repository(store);
    back_up(*repo, "first", {src});
    write_random_file(dir.file("more"), 6u << 20, 2003);
    store->fail_next("data/", 1, category, /*skip=*/3);  // the fourth pack fails
    try {
      back_up(*repo, "second", {dir.file("more")});
      ADD_FAILURE() << "the failure went unnoticed";
    } catch (const Error& e) {
      EXPECT_EQ(e.category(), category) << e.what();
    }
    auto again = Repository::open(store, pass());
    std::string why;
    EXPECT_TRUE(check_clean(*again, &why)) << why;
    EXPECT_EQ(store->open_writers(), 0u) << "no upload left open";
    Snapshot s = back_up(*again, "second", {dir.file("more")});
    EXPECT_LT(s.stats.stored_bytes, 6u << 20) << "the complete packs of the failed run were reused";
    restore(*again, "second", dir.file("out"));
    EXPECT_TRUE(same_content(dir.file("more"), dir.file("out") + dir.file("more")));
    fs::remove_all(dir.file("out"));
  }
}

// Many hosts at once (threads, each with its own Repository object, as processes
// would), shared data among them, and prunes running beside them, on every store.
class BackupManyHosts : public ::testing::TestWithParam<StoreFactory> {};

TEST_P(BackupManyHosts, BackupsAtOnceBesidePrunesAllRestoreAndShareTheirData) {
  TempDir dir;
  std::shared_ptr<Store> store = GetParam().make(dir.path());
  new_repository(store);
  const std::string shared = dir.file("shared");
  write_random_file(shared, 4u << 20, 2010);
  constexpr int kHosts = 3, kRounds = 3;
  std::vector<std::string> dirs;
  for (int h = 0; h < kHosts; ++h) {
    dirs.push_back(dir.file("host" + std::to_string(h)));
    fs::create_directories(dirs.back());
  }
  std::atomic<bool> done{false};
  std::vector<std::string> errors;
  std::mutex errors_mutex;
  auto record = [&](const std::string& e) {
    std::lock_guard lock(errors_mutex);
    errors.push_back(e);
  };
  std::vector<std::thread> hosts;
  for (int h = 0; h < kHosts; ++h) {
    hosts.emplace_back([&, h] {
      try {
        auto repo = Repository::open(store, pass());
        for (int r = 0; r < kRounds; ++r) {
          write_random_file(dirs[h] + "/own", 1u << 20, 3000 + 10 * h + r);
          back_up(*repo, fmt::format("host{}-{}", h, r), {dirs[h], shared});
        }
      } catch (const std::exception& e) {
        record(fmt::format("host {}: {}", h, e.what()));
      }
    });
  }
  std::thread pruner([&] {
    auto repo = Repository::open(store, pass());
    int prunes = 0;
    while (!done || prunes < 2) {
      try {
        prune(*repo, keep_last(2));
        ++prunes;
      } catch (const Error& e) {
        if (e.category() != ErrorCategory::busy) record(std::string("prune: ") + e.what());
      }
      std::this_thread::sleep_for(30ms);
    }
  });
  for (std::thread& t : hosts) t.join();
  done = true;
  pruner.join();
  for (const std::string& e : errors) ADD_FAILURE() << e;

  auto repo = Repository::open(store, pass());
  prune(*repo, keep_last(2));  // alone now: whatever waited is decided
  std::vector<Snapshot> all = load_snapshots(*repo);
  EXPECT_EQ(all.size(), 2u * kHosts) << "one group per host's paths, two kept of each";
  for (const Snapshot& s : all) {
    const std::string out = dir.file("restored-" + s.name);
    restore(*repo, s.name, out);
    EXPECT_TRUE(same_content(shared, out + shared)) << s.name;
  }
  std::string why;
  EXPECT_TRUE(check_clean(*repo, &why)) << why;
  // The shared 4 MiB are stored once, whoever backed them up (backups at the same
  // moment may each store it; the prune keeps one copy).
  uint64_t stored = 0;
  for (const PackObject& p : repo->list_packs()) stored += p.size;
  EXPECT_LT(stored, (4u << 20) + 2 * kHosts * (1u << 20) + (2u << 20)) << "the shared data once, each kept one's own";
}

std::string factory_name(const ::testing::TestParamInfo<StoreFactory>& info) { return info.param.name; }

INSTANTIATE_TEST_SUITE_P(Stores, BackupManyHosts, ::testing::ValuesIn(store_factories()), factory_name);

// The same with processes, each as another host (a UTS namespace of its own, when
// root), and prunes by a fourth process beside them, into the repository at `repo`
// (made with 1 MiB packs).
void back_up_from_host_processes(const std::string& repo, const TempDir& dir) {
  const std::string shared = dir.file("shared");
  write_random_file(shared, 6u << 20, 2020);
  const bool other_hosts = arche::test::is_root() && arche::test::have_program("unshare");
  std::vector<std::unique_ptr<Background>> running;
  for (int h = 0; h < 3; ++h) {
    const std::string own = dir.file("own" + std::to_string(h));
    write_random_file(own, 2u << 20, 2021 + h);
    const std::string host = "host-" + std::to_string(h);
    const std::string create = "'" + arche::test::arche_binary() + "' backup create '" + repo + "::" + host + "' '" +
                               own + "' '" + shared + "'";
    const std::string script = other_hosts ? "hostname " + host + " && " + create : create;
    fs::create_directories(dir.file("log" + std::to_string(h)));
    std::vector<std::string> args{"sh", "-c", script};
    if (other_hosts) args.insert(args.begin(), {"unshare", "--uts"});
    running.push_back(std::make_unique<Background>(args, dir.file("log" + std::to_string(h)), /*program=*/true));
  }
  // Prunes beside them: each must either run or say busy, never break anything.
  int pruned = 0;
  for (int i = 0; i < 20 && pruned < 3; ++i) {
    CommandResult p = backup({"prune", repo, "--keep-last", "5"});
    EXPECT_TRUE(p.exit_code == 0 || p.exit_code == 75) << p.err;
    pruned += p.exit_code == 0;
    std::this_thread::sleep_for(50ms);
  }
  for (auto& p : running) EXPECT_EQ(p->wait(), 0) << p->err();
  backup_ok({"prune", repo, "--keep-last", "5"});
  Json list = Json::parse(backup_ok({"list", repo, "--json"}).out);
  ASSERT_EQ(list.size(), 3u);
  std::set<std::string> hosts;
  for (const Json& s : list) {
    hosts.insert(s["host"].get<std::string>());
    const std::string out = dir.file("out-" + s["name"].get<std::string>());
    backup_ok({"restore", repo + "::" + s["name"].get<std::string>(), "--to", out});
    EXPECT_TRUE(same_content(shared, out + shared));
  }
  if (other_hosts) {
    EXPECT_EQ(hosts.size(), 3u) << "each snapshot records its host";
  }
  CommandResult check = backup({"check", "--read-data", repo});
  EXPECT_EQ(check.exit_code, 0) << check.out;
  uint64_t stored = 0;
  for (const ObjectInfo& o : open_store(repo)->list("data/")) stored += o.size;
  EXPECT_LT(stored, (6u << 20) + 3 * (2u << 20) + (2u << 20)) << "the shared 6 MiB are stored once";
}

TEST(BackupManyHostProcesses, ConcurrentCreatesFromSeveralHostsAndAPruneBesideThem) {
  use_passphrase();
  TempDir dir;
  const std::string repo = dir.file("repo");
  init_repo(repo, {"--pack-size", "1M"});
  back_up_from_host_processes(repo, dir);
}

#ifdef ARCHE_TEST_REMOTE_STORES
// Issue 12, acceptance 4: the same into one S3 repository on the test's radosgw.
TEST(BackupManyHostProcesses, ConcurrentCreatesIntoOneS3RepositoryAndAPruneBesideThem) {
  use_passphrase();
  arche::test::RgwCluster& cluster = arche::test::RgwCluster::shared();
  for (const auto& [name, value] : cluster.environment()) ::setenv(name.c_str(), value.c_str(), 1);
  cluster.store("arche-hosts");
  TempDir dir;
  const std::string repo = cluster.url("arche-hosts", "repo-" + std::to_string(::time(nullptr)));
  init_repo(repo, {"--pack-size", "1M"});
  back_up_from_host_processes(repo, dir);
}
#endif

}  // namespace
}  // namespace arche::backup::test
