// Repository locks (locks/<random id>): who uses the repository and how.
//   shared    backup, restore, check of a snapshot: any number at once
//   exclusive prune, repair, check: nobody else
// A lock is an encrypted object ("ARCHELCK" v1) naming host, boot id, pid and the
// process's start time, written before the work starts and removed after it; a
// thread refreshes it every few minutes. A lock whose process is gone (same host:
// another boot, no such pid, or a pid reused by a younger process) is stale and is
// removed by whoever meets it; a lock of another host counts as stale only when it
// has not been refreshed for 30 minutes, and then only `arche backup unlock` removes it.
// A lock file that cannot be read (damaged) names no holder: it blocks exclusive
// commands, shared ones warn about it, and `unlock` removes it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "backup/repository.h"

namespace arche::backup {

enum class LockMode { shared, exclusive };

struct LockInfo {
  std::string name;  // file name under locks/
  std::string host;
  std::string boot_id;
  uint32_t pid = 0;
  uint64_t process_start = 0;  // clock ticks after boot (/proc/PID/stat field 22)
  uint64_t created = 0;        // unix seconds
  uint64_t refreshed = 0;
  bool exclusive = false;
  std::string command;
  // Filled by list_locks:
  bool stale = false;      // its process is certainly gone (this host)
  bool abandoned = false;  // another host's lock not refreshed for 30 minutes
  std::string damaged;     // why the file could not be read; the fields above are then unknown
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

 private:
  void refresh_loop();

  const Repository& repo_;
  LockInfo info_;
  bool only_local_ = true;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread refresher_;
};

}  // namespace arche::backup
