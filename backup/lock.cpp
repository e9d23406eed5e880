#include "backup/lock.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <ctime>
#include <fstream>
#include <sstream>

#include "backup/object.h"
#include "core/bytes.h"
#include "core/error.h"
#include "core/log.h"

namespace arche::backup {

namespace {

constexpr std::string_view kLockMagic = "ARCHELCK";
constexpr RecordVersion kLockVersion{1, 0};
constexpr auto kRefreshInterval = std::chrono::minutes(5);
constexpr uint64_t kAbandonedAfter = 30 * 60;

uint64_t now_seconds() { return static_cast<uint64_t>(std::time(nullptr)); }

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

std::string boot_id() {
  std::ifstream f("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(f, id);
  return id;
}

// Field 22 of /proc/PID/stat: when the process started, in clock ticks after boot.
// Together with the pid it names one process: a reused pid has another start time.
uint64_t process_start_time(uint32_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(f, line)) return 0;
  size_t close = line.rfind(')');  // the command name may contain spaces and parentheses
  if (close == std::string::npos) return 0;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22 && rest >> field; ++i)
    if (i == 22) return std::stoull(field);
  return 0;
}

void classify(LockInfo& l, const std::string& my_host, const std::string& my_boot) {
  if (l.host == my_host) {
    if (l.boot_id != my_boot) {
      l.stale = true;  // written before the last reboot
    } else if (::kill(static_cast<pid_t>(l.pid), 0) != 0 && errno == ESRCH) {
      l.stale = true;
    } else {
      uint64_t start = process_start_time(l.pid);
      l.stale = start != 0 && start != l.process_start;
    }
  } else {
    l.abandoned = now_seconds() > l.refreshed + kAbandonedAfter;
  }
}

std::string format_time(uint64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  localtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

}  // namespace

std::string LockInfo::describe() const {
  if (!damaged.empty()) return fmt::format("an unreadable lock file {} ({})", name, damaged);
  return fmt::format("{} lock of '{}' (pid {} on {}, since {}){}", exclusive ? "an exclusive" : "a shared", command, pid,
                     host, format_time(created),
                     stale       ? " — its process is gone"
                     : abandoned ? " — not refreshed for over 30 minutes"
                                 : "");
}

std::vector<uint8_t> encode_lock_payload(const LockInfo& l) {
  ByteWriter w;
  auto str = [&](const std::string& s) {
    w.le16(static_cast<uint16_t>(std::min<size_t>(s.size(), 65535)));
    w.string(std::string_view(s).substr(0, 65535));
  };
  str(l.host);
  str(l.boot_id);
  w.le32(l.pid);
  w.le64(l.process_start);
  w.le64(l.created);
  w.le64(l.refreshed);
  w.u8(l.exclusive ? 1 : 0);
  str(l.command);
  return w.take();
}

LockInfo decode_lock_payload(std::span<const uint8_t> data, const std::string& what) {
  ByteReader r(data, what);
  LockInfo l;
  l.host = r.string(r.le16());
  l.boot_id = r.string(r.le16());
  l.pid = r.le32();
  l.process_start = r.le64();
  l.created = r.le64();
  l.refreshed = r.le64();
  uint8_t mode = r.u8();
  if (mode > 1) fail(ErrorCategory::corrupt, "{}: bad lock mode {}", what, mode);
  l.exclusive = mode == 1;
  l.command = r.string(r.le16());
  return l;
}

std::vector<LockInfo> list_locks(const Repository& repo) {
  std::vector<LockInfo> locks;
  const std::string host = host_name(), boot = boot_id();
  for (const std::string& name : repo.list_files("locks")) {
    const std::string what = "lock " + name;
    try {
      OpenedObject o = open_object(repo.keys(), repo.read_file("locks", name), kLockMagic, kLockVersion.major, what,
                                   1 << 20);
      LockInfo l = decode_lock_payload(o.payload, what);
      l.name = name;
      classify(l, host, boot);
      locks.push_back(std::move(l));
    } catch (const Error& e) {
      if (e.category() == ErrorCategory::not_found) continue;  // released meanwhile
      LockInfo l;
      l.name = name;
      l.damaged = e.what();
      locks.push_back(std::move(l));
    }
  }
  return locks;
}

std::vector<LockInfo> remove_locks(const Repository& repo, bool everything) {
  std::vector<LockInfo> removed;
  for (LockInfo& l : list_locks(repo)) {
    if (!everything && !l.stale && !l.abandoned && l.damaged.empty()) continue;
    repo.remove_file("locks", l.name);
    removed.push_back(std::move(l));
  }
  return removed;
}

RepoLock::RepoLock(const Repository& repo, LockMode mode, std::string command) : repo_(repo) {
  info_.host = host_name();
  info_.boot_id = boot_id();
  info_.pid = static_cast<uint32_t>(::getpid());
  info_.process_start = process_start_time(info_.pid);
  info_.created = info_.refreshed = now_seconds();
  info_.exclusive = mode == LockMode::exclusive;
  info_.command = std::move(command);
  info_.name = Id::random().hex().substr(0, 32);
  repo_.write_named_file("locks", info_.name,
                         seal_object(repo_.keys(), kLockMagic, kLockVersion, encode_lock_payload(info_), false), false);
  // Written first, then look: of two processes racing for conflicting locks, at least
  // one sees the other and backs off.
  try {
    for (LockInfo& other : list_locks(repo_)) {
      if (other.name == info_.name) continue;
      if (!other.damaged.empty()) {
        // Whose it was is unknown: it may be an exclusive lock. Exclusive work waits
        // until someone who knows that nobody else uses the repository removes it.
        if (info_.exclusive)
          fail(ErrorCategory::busy,
               "repository {} is locked by {}; if no other arche uses the repository: arche backup unlock {}",
               repo_.root(), other.describe(), repo_.root());
        warn("{} in {} (arche backup unlock removes it)", other.describe(), repo_.root());
        continue;
      }
      if (other.stale) {
        warn("removing stale lock: {}", other.describe());
        repo_.remove_file("locks", other.name);
        continue;
      }
      if (other.host != info_.host) only_local_ = false;
      if (other.exclusive || info_.exclusive)
        fail(ErrorCategory::busy, "repository {} is locked: {}{}", repo_.root(), other.describe(),
             other.abandoned ? "; if that process is gone: arche backup unlock " + repo_.root() : "");
    }
  } catch (...) {
    repo_.remove_file("locks", info_.name);
    throw;
  }
  refresher_ = std::thread([this] { refresh_loop(); });
}

RepoLock::~RepoLock() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (refresher_.joinable()) refresher_.join();
  try {
    repo_.remove_file("locks", info_.name);
  } catch (const Error& e) {
    warn("could not remove lock {}: {}", info_.name, e.what());
  }
}

void RepoLock::refresh_loop() {
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, kRefreshInterval, [this] { return stopping_; })) {
    info_.refreshed = now_seconds();
    try {
      repo_.write_named_file("locks", info_.name,
                             seal_object(repo_.keys(), kLockMagic, kLockVersion, encode_lock_payload(info_), false),
                             true);
    } catch (const Error& e) {
      warn("could not refresh lock {}: {}", info_.name, e.what());
    }
  }
}

}  // namespace arche::backup
