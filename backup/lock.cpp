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
// 1.1: a byte after the command says a lock with the exclusive mode byte is a
// maintenance lock (older readers take it for exclusive: the safe side).
constexpr RecordVersion kLockVersion{1, 1};

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
    l.abandoned = now_seconds() > l.refreshed + lock_timing().abandoned_after_s;
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

LockTiming& lock_timing() {
  static LockTiming timing;
  return timing;
}

bool LockInfo::conflicts_with(LockMode other) const {
  const LockMode mine = mode();
  if (mine == LockMode::exclusive || other == LockMode::exclusive) return true;
  return mine == LockMode::maintain && other == LockMode::maintain;
}

std::string LockInfo::describe() const {
  if (!damaged.empty()) return fmt::format("an unreadable lock file {} ({})", name, damaged);
  const char* kind = mode() == LockMode::shared ? "a shared" : mode() == LockMode::maintain ? "a maintenance" : "an exclusive";
  return fmt::format("{} lock of '{}' (pid {} on {}, since {}){}", kind, command, pid, host, format_time(created),
                     stale       ? " — its process is gone"
                     : abandoned ? fmt::format(" — not refreshed for over {} minutes", lock_timing().abandoned_after_s / 60)
                                 : std::string());
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
  w.u8(l.maintain ? 1 : 0);
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
  if (r.remaining()) l.maintain = l.exclusive && r.u8() == 1;  // v1.1
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

void RepoLock::write_lock(bool replace) {
  repo_.write_named_file("locks", info_.name,
                         seal_object(repo_.keys(), kLockMagic, kLockVersion, encode_lock_payload(info_), false), replace);
}

RepoLock::RepoLock(const Repository& repo, LockMode mode, std::string command) : repo_(repo) {
  info_.host = host_name();
  info_.boot_id = boot_id();
  info_.pid = static_cast<uint32_t>(::getpid());
  info_.process_start = process_start_time(info_.pid);
  info_.created = info_.refreshed = now_seconds();
  info_.exclusive = mode != LockMode::shared;
  info_.maintain = mode == LockMode::maintain;
  info_.command = std::move(command);
  info_.name = Id::random().hex().substr(0, 32);
  write_lock(false);
  refreshed_at_ = std::chrono::steady_clock::now();
  const std::string& where = repo_.location();
  // Written first, then look: of two processes racing for conflicting locks, at least
  // one sees the other and backs off. Where listings lag, the other's lock may take
  // that long to show: wait it out.
  try {
    const StoreCapabilities caps = repo_.store().capabilities();
    if (!caps.consistent_listing && caps.listing_delay_ms)
      std::this_thread::sleep_for(std::chrono::milliseconds(caps.listing_delay_ms));
    for (LockInfo& other : list_locks(repo_)) {
      if (other.name == info_.name) continue;
      if (!other.damaged.empty()) {
        // Whose it was is unknown: it may be an exclusive or a prune's lock. Such
        // work waits until someone who knows that nobody else uses the repository
        // removes it; shared work goes on beside it.
        if (mode != LockMode::shared)
          fail(ErrorCategory::busy,
               "repository {} is locked by {}; if no other arche uses the repository: arche backup unlock {}", where,
               other.describe(), where);
        warn("{} in {} (arche backup unlock removes it)", other.describe(), where);
        continue;
      }
      if (other.stale) {
        warn("removing stale lock: {}", other.describe());
        repo_.remove_file("locks", other.name);
        continue;
      }
      if (other.host != info_.host) only_local_ = false;
      if (other.conflicts_with(mode))
        fail(ErrorCategory::busy, "repository {} is locked: {}{}", where, other.describe(),
             other.abandoned ? "; if that process is gone: arche backup unlock " + where : "");
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

void RepoLock::ensure_fresh() const {
  std::lock_guard lock(mutex_);
  const auto unrefreshed = std::chrono::steady_clock::now() - refreshed_at_;
  if (lapsed_ || unrefreshed > lock_timing().max_unrefreshed)
    fail(ErrorCategory::busy,
         "the lock of '{}' could not be refreshed for longer than {} s (is {} reachable?); a prune elsewhere may have "
         "taken this run for dead, so it stops before writing: run it again",
         info_.command, std::chrono::duration_cast<std::chrono::seconds>(lock_timing().max_unrefreshed).count(),
         repo_.location());
}

bool RepoLock::maintenance_beside() const {
  for (const LockInfo& l : list_locks(repo_))
    if (l.name != info_.name && !l.stale && (l.mode() != LockMode::shared || !l.damaged.empty())) return true;
  return false;
}

void RepoLock::refresh_loop() {
  std::unique_lock lock(mutex_);
  bool failed = false;
  while (!wake_.wait_for(lock, failed ? lock_timing().retry : lock_timing().refresh, [this] { return stopping_; })) {
    info_.refreshed = now_seconds();
    lock.unlock();  // ensure_fresh() must not wait for a slow store
    try {
      write_lock(true);
      lock.lock();
      const auto now = std::chrono::steady_clock::now();
      lapsed_ |= now - refreshed_at_ > lock_timing().max_unrefreshed;
      refreshed_at_ = now;
      failed = false;
    } catch (const Error& e) {
      lock.lock();
      if (!failed) warn("could not refresh lock {}: {}", info_.name, e.what());
      failed = true;
    }
  }
}

}  // namespace arche::backup
