// The sandbox child: drops what it does not need, loads the seccomp filter and
// answers the parent's requests with a Tree over disks it reads through the parent.
#include <fcntl.h>
#include <grp.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <list>
#include <map>
#include <memory>
#include <new>
#include <unordered_map>

#include "core/error.h"
#include "volume/sandbox_child.h"
#include "volume/sandbox_protocol.h"
#include "volume/views.h"

namespace arche::volume::sandbox {

namespace {

constexpr int kSocketFd = 3;
constexpr uint32_t kNobody = 65534;
constexpr uint64_t kCacheChunk = 64 * 1024;
constexpr size_t kCacheChunks = 512;             // 32 MiB of recently read disk bytes
constexpr uint64_t kUncachedRead = 256 * 1024;   // larger reads (file data) go straight through

// A disk as the child sees it: bytes come from the parent, with a small cache so
// that libext2fs' and libntfs-3g's many small metadata reads do not each cross
// the socket.
class RemoteDevice final : public ReadOnlyDevice {
 public:
  RemoteDevice(uint32_t index, std::string name, uint64_t size)
      : ReadOnlyDevice(std::move(name)), index_(index), size_(size) {}

  uint64_t size() const override { return size_; }
  std::string format() const override { return "sandboxed"; }
  uint64_t granularity() const override { return 4096; }
  image::LayerStatus layer_status(uint64_t offset, uint64_t max_length) override {
    check_request(offset, 0, "status");
    return {image::ExtentKind::data, std::min(max_length, size_ - offset), {}, false};
  }

  void read(uint64_t offset, std::span<uint8_t> out) override {
    check_request(offset, out.size(), "read");
    if (out.size() >= kUncachedRead) {
      fetch(offset, out);
      return;
    }
    size_t done = 0;
    while (done < out.size()) {
      const uint64_t pos = offset + done;
      const uint64_t chunk = pos / kCacheChunk;
      const std::vector<uint8_t>& data = cached(chunk);
      const size_t within = static_cast<size_t>(pos - chunk * kCacheChunk);
      const size_t n = std::min(out.size() - done, data.size() - within);
      std::memcpy(out.data() + done, data.data() + within, n);
      done += n;
    }
  }

 private:
  void fetch(uint64_t offset, std::span<uint8_t> out) {
    for (size_t done = 0; done < out.size();) {
      const uint32_t n = static_cast<uint32_t>(std::min<size_t>(out.size() - done, kMaxRead));
      ByteWriter w;
      w.le32(index_);
      w.le64(offset + done);
      w.le32(n);
      send_message(kSocketFd, kBlockRead, w.buffer());
      Message m;
      if (!receive_message_into(kSocketFd, kBlockData, out.subspan(done, n), m)) {
        if (m.type != kBlockError) _exit(kExitProtocol);
        ByteReader r(m.payload, "block read answer");
        const uint8_t category = r.u8();
        throw Error(static_cast<ErrorCategory>(category <= static_cast<uint8_t>(ErrorCategory::interrupted) ? category : 0),
                    get_string(r));
      }
      done += n;
    }
  }

  const std::vector<uint8_t>& cached(uint64_t chunk) {
    if (auto it = index_of_.find(chunk); it != index_of_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      return it->second->second;
    }
    const uint64_t start = chunk * kCacheChunk;
    std::vector<uint8_t> data(static_cast<size_t>(std::min(kCacheChunk, size_ - start)));
    fetch(start, data);
    if (lru_.size() >= kCacheChunks) {
      index_of_.erase(lru_.back().first);
      lru_.pop_back();
    }
    lru_.emplace_front(chunk, std::move(data));
    index_of_[chunk] = lru_.begin();
    return lru_.front().second;
  }

  uint32_t index_;
  uint64_t size_;
  std::list<std::pair<uint64_t, std::vector<uint8_t>>> lru_;
  std::unordered_map<uint64_t, decltype(lru_)::iterator> index_of_;
};

// ---- confinement ----------------------------------------------------------------

#ifdef ARCHE_SANITIZE
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

bool drop_privileges() {
  if (::geteuid() != 0) return true;
  return ::setgroups(0, nullptr) == 0 && ::setresgid(kNobody, kNobody, kNobody) == 0 &&
         ::setresuid(kNobody, kNobody, kNobody) == 0;
}

bool load_filter() {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
  if (!ctx) return false;
  bool ok = true;
  auto allow = [&](int syscall) { ok = ok && seccomp_rule_add(ctx, SCMP_ACT_ALLOW, syscall, 0) == 0; };
  // Memory (never executable: no new code can be mapped), futexes, clocks, exit.
  for (int s : {SCMP_SYS(brk), SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(madvise), SCMP_SYS(futex),
                SCMP_SYS(exit), SCMP_SYS(exit_group), SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigprocmask),
                SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres), SCMP_SYS(gettimeofday), SCMP_SYS(time),
                SCMP_SYS(getpid), SCMP_SYS(gettid), SCMP_SYS(sched_yield), SCMP_SYS(nanosleep),
                SCMP_SYS(clock_nanosleep), SCMP_SYS(getrandom), SCMP_SYS(close)})
    allow(s);
  for (int s : {SCMP_SYS(mmap), SCMP_SYS(mprotect)})
    ok = ok && seccomp_rule_add(ctx, SCMP_ACT_ALLOW, s, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)) == 0;
  // Its own socket only.
  for (int s : {SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(recvfrom), SCMP_SYS(sendto)})
    ok = ok && seccomp_rule_add(ctx, SCMP_ACT_ALLOW, s, 1, SCMP_A0(SCMP_CMP_EQ, kSocketFd, 0)) == 0;
  // abort() signals itself.
  ok = ok && seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
                              SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(::getpid()), 0)) == 0;
  ok = ok && seccomp_load(ctx) == 0;
  seccomp_release(ctx);
  return ok;
}

void confine(int fd, const SandboxOptions& options) {
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE}) ::signal(sig, SIG_IGN);  // the parent decides
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::dup2(fd, kSocketFd) < 0) _exit(kExitConfinementFailed);
  int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  for (int std_fd = 0; std_fd < 3; ++std_fd) {
    if (null >= 0) ::dup2(null, std_fd);
    else ::close(std_fd);
  }
  ::close_range(kSocketFd + 1, ~0u, 0);
  struct rlimit no_core {0, 0};
  ::setrlimit(RLIMIT_CORE, &no_core);
  // AddressSanitizer maps terabytes of shadow at start: under it (make test-sanitize)
  // an address-space limit would fail the child's first allocation.
  if (options.memory_limit && !kSanitized) {
    struct rlimit as {options.memory_limit, options.memory_limit};
    ::setrlimit(RLIMIT_AS, &as);
  }
  ::prctl(PR_SET_DUMPABLE, 0);
  if (!drop_privileges() || ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || !load_filter())
    _exit(kExitConfinementFailed);
}

// ---- requests -----------------------------------------------------------------------

class Server {
 public:
  explicit Server(const SandboxOptions& options) : options_(options) {}

  void handle(const Message& m, ByteWriter& out) {
    ByteReader r(m.payload, "sandbox request");
    switch (m.type) {
      case kExplore: return explore_disks(r, out);
      case kTest: {
        if (!options_.test_hook) fail(ErrorCategory::unsupported, "test requests are disabled");
        options_.test_hook(std::string_view(reinterpret_cast<const char*>(m.payload.data()), m.payload.size()));
        return;
      }
      default: break;
    }
    if (!tree_) fail(ErrorCategory::usage, "volume sandbox: no disks yet");
    Filesystem& fs = tree_->filesystem(r.le32());
    switch (m.type) {
      case kFsInfo:
        if (options_.test_hook) options_.test_hook("opened " + fs.label());
        put_string(out, fs.type());
        put_string(out, fs.label());
        put_string(out, fs.uuid());
        out.le64(fs.size_bytes());
        out.le64(fs.used_bytes());
        put_strings(out, fs.notes());
        return;
      case kStat: put_stat(out, fs.stat(get_string(r))); return;
      case kList: {
        std::vector<DirEntry> entries = fs.list(get_string(r));
        out.le32(static_cast<uint32_t>(entries.size()));
        for (const DirEntry& e : entries) {
          put_string(out, e.name);
          put_stat(out, e.stat);
        }
        return;
      }
      case kRead: {
        const std::string path = get_string(r);
        const uint64_t offset = r.le64();
        const uint32_t length = std::min(r.le32(), kMaxRead);
        std::vector<uint8_t>& buf = out.buffer();
        buf.resize(length);
        buf.resize(fs.read(path, offset, buf));
        return;
      }
      case kReadlink: put_string(out, fs.readlink(get_string(r))); return;
      case kStreams: put_strings(out, fs.streams(get_string(r))); return;
      case kUsedRanges: {
        std::vector<ByteRange> ranges = fs.used_ranges();
        out.le32(static_cast<uint32_t>(ranges.size()));
        for (const ByteRange& b : ranges) {
          out.le64(b.offset);
          out.le64(b.length);
        }
        return;
      }
      default: fail(ErrorCategory::usage, "volume sandbox: unknown request {}", m.type);
    }
  }

 private:
  void explore_disks(ByteReader& r, ByteWriter& out) {
    if (tree_) fail(ErrorCategory::usage, "volume sandbox: the disks were given already");
    const uint32_t n = r.le32();
    std::vector<Disk> disks;
    for (uint32_t i = 0; i < n && r.remaining() > 0; ++i) {
      std::string name = get_string(r);
      const uint64_t size = r.le64();
      disks.push_back({name, std::make_shared<RemoteDevice>(i, name, size)});
    }
    tree_ = volume::explore(std::move(disks));
    const auto& volumes = tree_->volumes();
    out.le32(static_cast<uint32_t>(volumes.size()));
    for (const VolumeInfo& v : volumes) put_volume(out, v);
  }

  const SandboxOptions& options_;
  std::unique_ptr<Tree> tree_;
};

void answer(uint16_t type, std::span<const uint8_t> payload) {
  try {
    send_message(kSocketFd, type, payload);
  } catch (...) {
    _exit(0);  // the parent has gone
  }
}

}  // namespace

void run_child(int fd, const SandboxOptions& options) {
  confine(fd, options);
  Server server(options);
  // One answer buffer for the life of the child: a fresh one per kRead meant a
  // freshly faulted megabyte per request.
  ByteWriter out;
  while (true) {
    Message m;
    try {
      m = receive_message(kSocketFd);
    } catch (const Error& e) {
      _exit(e.category() == ErrorCategory::io ? 0 : kExitProtocol);
    }
    out.buffer().clear();
    try {
      server.handle(m, out);
      answer(static_cast<uint16_t>(m.type | kReplyFlag), out.buffer());
      continue;
    } catch (const Error& e) {
      out.buffer().clear();
      out.u8(static_cast<uint8_t>(e.category()));
      put_string(out, e.what());
    } catch (const std::bad_alloc&) {
      out.buffer().clear();
      out.u8(static_cast<uint8_t>(ErrorCategory::no_space));
      put_string(out, "out of memory (the volume reader's limit)");
    } catch (const std::exception& e) {
      out.buffer().clear();
      out.u8(static_cast<uint8_t>(ErrorCategory::internal));
      put_string(out, std::string("internal error: ") + e.what());
    }
    answer(kError, out.buffer());
  }
}

}  // namespace arche::volume::sandbox
