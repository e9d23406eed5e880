// Repository locks (locks/<random id>): who uses the repository and how.
//   shared     create, restore, list, info, diff: any number at once, and beside
//              a prune (which never deletes what a running backup may refer to)
//   maintain   prune, forget, repair snapshots: beside shared locks, one at a time
//   exclusive  check, repair index: nobody else
// A lock is an encrypted object ("ARCHELCK" v1.1) naming host, boot id, pid and the
// process's start time, written before the work starts and removed after it; a
// thread refreshes it every 5 minutes. A lock whose process is gone (same host:
// another boot, no such pid, or a pid reused by a younger process) is stale and is
// removed by whoever meets it; a lock of another host counts as abandoned when it
// has not been refreshed for 30 minutes, and then only `arche backup unlock` removes
// it. A process whose lock could not be refreshed for 15 minutes stops before it
// writes what a prune may no longer expect (ensure_fresh). A lock file that cannot be
// read (damaged) names no holder: it blocks exclusive commands, the others warn, and
// `unlock` removes it.
//
// Taking a lock: write it, then (on a store whose listings lag, for the store's
// listing delay) wait, then list the others. Of two processes racing for
// conflicting locks at least one sees the other and backs off, on any store: neither
// atomic rename nor exclusive create is needed (docs/storage.md "Locks").
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "backup/repository.h"

namespace arche::backup {

enum class LockMode { shared, maintain, exclusive };

// How often locks are refreshed and when they count as abandoned; tests shorten them.
struct LockTiming {
  std::chrono::milliseconds refresh{5 * 60 * 1000};
  std::chrono::milliseconds retry{30 * 1000};            // after a failed refresh
  std::chrono::milliseconds max_unrefreshed{15 * 60 * 1000};  // then ensure_fresh() fails
  uint64_t abandoned_after_s = 30 * 60;
};
LockTiming& lock_timing();

struct LockInfo {
  std::string name;  // file name under locks/
  std::string host;
  std::string boot_id;
  uint32_t pid = 0;
  uint64_t process_start = 0;  // clock ticks after boot (/proc/PID/stat field 22)
  uint64_t created = 0;        // unix seconds
  uint64_t refreshed = 0;
  bool exclusive = false;      // the mode byte: set for maintain and exclusive locks
  bool maintain = false;       // an exclusive-looking lock that allows shared ones (v1.1)
  std::string command;
  // Filled by list_locks:
  bool stale = false;      // its process is certainly gone (this host)
  bool abandoned = false;  // another host's lock not refreshed for 30 minutes
  std::string damaged;     // why the file could not be read; the fields above are then unknown
  LockMode mode() const { return !exclusive ? LockMode::shared : maintain ? LockMode::maintain : LockMode::exclusive; }
  // True when this lock and one of `other` mode cannot be held at once.
  bool conflicts_with(LockMode other) const;
  std::string describe() const;
};

std::vector<uint8_t> encode_lock_payload(const LockInfo& lock);
LockInfo decode_lock_payload(std::span<const uint8_t> data, const std::string& what);

// Every lock in the repository, damaged lock files included (with `damaged` set).
std::vector<LockInfo> list_locks(const Repository& repo);
// Removes stale, abandoned and damaged locks (all locks with `everything`); returns them.
std::vector<LockInfo> remove_locks(const Repository& repo, bool everything);

class RepoLock {
 public:
  // Takes the lock or throws a busy error that names the holder.
  RepoLock(const Repository& repo, LockMode mode, std::string command);
  ~RepoLock();
  RepoLock(const RepoLock&) = delete;
  RepoLock& operator=(const RepoLock&) = delete;

  const std::string& name() const { return info_.name; }
  // True when every other lock is from this host (then temp files of dead pids can go).
  bool only_local_holders() const { return only_local_; }
  // Throws a busy error when the lock could not be refreshed for max_unrefreshed: by
  // then a prune elsewhere may have taken this process for dead. Called before
  // writing what the repository must be able to rely on (a backup's index and
  // manifest, a prune's deletions).
  void ensure_fresh() const;
  // True when another process holds a maintenance or exclusive lock now (a prune).
  bool maintenance_beside() const;

 private:
  void refresh_loop();
  void write_lock(bool replace);

  const Repository& repo_;
  LockInfo info_;
  bool only_local_ = true;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::chrono::steady_clock::time_point refreshed_at_;
  bool lapsed_ = false;  // once went unrefreshed for max_unrefreshed: may have been taken for dead
  std::thread refresher_;
};

}  // namespace arche::backup
