// The parent side of the sandbox (sandbox.h): forks the child, serves its block
// reads, and turns its answers back into Tree and Filesystem calls.
#include "volume/sandbox.h"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>

#include "core/error.h"
#include "core/file.h"
#include "core/interrupt.h"
#include "volume/sandbox_child.h"
#include "volume/sandbox_protocol.h"

namespace arche::volume {

using namespace sandbox;

struct Sandbox::Channel {
  pid_t pid = -1;
  UniqueFd fd;
  unsigned timeout_seconds = 300;
  unsigned request_limit_seconds = 3600;
  std::vector<Disk> disks;
  std::mutex mutex;
  std::optional<Error> dead;  // set once the child is gone: every later call throws it
  std::vector<uint8_t> block_buffer;  // serve_block_read's, kept between reads

  ~Channel() {
    fd.reset();
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
      }
    }
  }

  // Sends a request and waits for its answer, serving block reads meanwhile.
  // `what` says what was asked, for the message if the child dies.
  std::vector<uint8_t> call(uint16_t type, std::span<const uint8_t> payload, const std::string& what) {
    std::lock_guard lock(mutex);
    if (dead) throw *dead;
    Message m;
    const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(request_limit_seconds);
    try {
      send_message(fd.get(), type, payload);
      while (true) {
        wait_for_message(what);
        if (std::chrono::steady_clock::now() >= limit)
          stop(fmt::format("the volume reader took more than {} s while {}; it was stopped (a crafted or badly "
                           "damaged file system can make a reader loop)",
                           request_limit_seconds, what));
        m = receive_message(fd.get());
        if (m.type == kBlockRead) {
          serve_block_read(m, what);
          continue;
        }
        if (m.type == static_cast<uint16_t>(type | kReplyFlag) || m.type == kError) break;
        stop(fmt::format("the volume reader answered {} with a message of type {} while {}", type, m.type, what));
      }
    } catch (const Error& e) {
      if (dead) throw *dead;
      if (e.category() == ErrorCategory::interrupted) {
        stop_quietly("interrupted");
        throw;
      }
      // The socket failed or carried garbage: the child died or misbehaves.
      stop(fmt::format("the volume reader failed while {} ({})", what, e.what()));
    }
    if (m.type == kError) {
      uint8_t c = 0;
      std::string message;
      try {
        ByteReader r(m.payload, "volume reader error");
        c = r.u8();
        message = get_string(r);
      } catch (const Error&) {
        stop("the volume reader sent a malformed error while " + what);
      }
      throw Error(c <= static_cast<uint8_t>(ErrorCategory::interrupted) ? static_cast<ErrorCategory>(c)
                                                                        : ErrorCategory::internal,
                  message);
    }
    return std::move(m.payload);
  }

  void wait_for_message(const std::string& what) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
    while (true) {
      interrupt::check();
      pollfd p{fd.get(), POLLIN, 0};
      int r = ::poll(&p, 1, 250);
      if (r > 0) return;
      if (r < 0 && errno != EINTR) throw_errno(errno, "volume sandbox: poll");
      if (std::chrono::steady_clock::now() >= deadline)
        stop(fmt::format("the volume reader did not answer within {} s while {}; it was stopped (a crafted or badly "
                         "damaged file system can make a reader loop)",
                         timeout_seconds, what));
    }
  }

  void serve_block_read(const Message& m, const std::string& what) {
    uint32_t disk = 0, length = 0;
    uint64_t offset = 0;
    if (m.payload.size() != 16) stop("the volume reader sent a malformed block read while " + what);
    disk = load_le32(m.payload.data());
    offset = load_le64(m.payload.data() + 4);
    length = load_le32(m.payload.data() + 12);
    if (disk >= disks.size() || length > kMaxRead || offset > disks[disk].device->size() ||
        length > disks[disk].device->size() - offset)
      stop(fmt::format("the volume reader asked for {} bytes at {} of disk {}, which is not there", length, offset, disk));
    // One buffer for all block reads: a fresh one each time was zero-filled and
    // page-faulted anew, a large part of an extract's CPU time (issue 11).
    if (block_buffer.size() < length) block_buffer.resize(length);
    const std::span<uint8_t> data(block_buffer.data(), length);
    try {
      disks[disk].device->read(offset, data);
    } catch (const Error& e) {
      ByteWriter w;
      w.u8(static_cast<uint8_t>(e.category()));
      put_string(w, e.what());
      send_message(fd.get(), kBlockError, w.buffer());
      return;
    }
    send_message(fd.get(), kBlockData, data);
  }

  // Kills the child and remembers why; throws that error.
  [[noreturn]] void stop(const std::string& why) {
    stop_quietly(why);
    throw *dead;
  }

  void stop_quietly(const std::string& why) {
    if (dead) return;
    int status = 0;
    // Give a child that is exiting (crashed, killed by the filter) a moment to be
    // reaped with its real status; then make sure it is gone.
    pid_t r = 0;
    for (int i = 0; i < 20 && (r = ::waitpid(pid, &status, WNOHANG)) == 0; ++i) ::usleep(10000);
    if (r == 0) {
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      dead = Error(ErrorCategory::corrupt, why);
    } else {
      dead = Error(ErrorCategory::corrupt, describe(status, why));
    }
    pid = -1;
    fd.reset();
  }

  static std::string describe(int status, const std::string& why) {
    if (WIFSIGNALED(status)) {
      const int sig = WTERMSIG(status);
      if (sig == SIGSYS)
        return why + ": it was killed by its seccomp filter for a forbidden system call — the disk may be crafted "
                     "to attack arche";
      return fmt::format("{}: it crashed ({}) — the disk is damaged or crafted; nothing else is affected", why,
                         sigabbrev_np(sig) ? sigabbrev_np(sig) : "signal");
    }
    if (WIFEXITED(status)) {
      if (WEXITSTATUS(status) == kExitConfinementFailed)
        return why + ": it could not confine itself (drop privileges, load the seccomp filter)";
      return fmt::format("{}: it exited with code {}", why, WEXITSTATUS(status));
    }
    return why;
  }
};

namespace {

class RemoteFilesystem final : public Filesystem {
 public:
  RemoteFilesystem(std::shared_ptr<Sandbox::Channel> channel, uint32_t volume, std::string name)
      : channel_(std::move(channel)), volume_(volume), name_(std::move(name)) {
    std::vector<uint8_t> reply = call(kFsInfo, {}, "opening the file system of " + name_);
    ByteReader r(reply, "volume reader file system info");
    type_ = get_string(r);
    label_ = get_string(r);
    uuid_ = get_string(r);
    size_ = r.le64();
    used_ = r.le64();
    notes_ = get_strings(r);
  }

  std::string type() const override { return type_; }
  std::string label() const override { return label_; }
  std::string uuid() const override { return uuid_; }
  uint64_t size_bytes() const override { return size_; }
  uint64_t used_bytes() const override { return used_; }
  std::vector<std::string> notes() const override { return notes_; }

  FileStat stat(std::string_view path) override {
    std::vector<uint8_t> reply = call_path(kStat, path, "reading the metadata of");
    ByteReader r(reply, "volume reader stat");
    return get_stat(r);
  }

  std::vector<DirEntry> list(std::string_view path) override {
    std::vector<uint8_t> reply = call_path(kList, path, "listing");
    ByteReader r(reply, "volume reader listing");
    const uint32_t n = r.le32();
    if (n > r.remaining() / 4) fail(ErrorCategory::corrupt, "volume reader: a listing of {} entries in {} bytes", n, reply.size());
    std::vector<DirEntry> out(n);
    for (DirEntry& e : out) {
      e.name = get_string(r);
      e.stat = get_stat(r);
    }
    return out;
  }

  size_t read(std::string_view path, uint64_t offset, std::span<uint8_t> out) override {
    size_t done = 0;
    while (done < out.size()) {
      const uint32_t n = static_cast<uint32_t>(std::min<size_t>(out.size() - done, kMaxRead));
      ByteWriter w;
      put_string(w, path);
      w.le64(offset + done);
      w.le32(n);
      std::vector<uint8_t> reply = call(kRead, w.buffer(), "reading " + where(path));
      if (reply.size() > n) fail(ErrorCategory::corrupt, "volume reader: {} bytes for a read of {}", reply.size(), n);
      std::memcpy(out.data() + done, reply.data(), reply.size());
      done += reply.size();
      if (reply.size() < n) break;  // the end of the file
    }
    return done;
  }

  std::string readlink(std::string_view path) override {
    std::vector<uint8_t> reply = call_path(kReadlink, path, "reading the link");
    ByteReader r(reply, "volume reader link");
    return get_string(r);
  }

  std::vector<std::string> streams(std::string_view path) override {
    std::vector<uint8_t> reply = call_path(kStreams, path, "listing the streams of");
    ByteReader r(reply, "volume reader streams");
    return get_strings(r);
  }

  std::vector<ByteRange> used_ranges() override {
    std::vector<uint8_t> reply = call(kUsedRanges, {}, "reading the allocation of " + name_);
    ByteReader r(reply, "volume reader used ranges");
    const uint32_t n = r.le32();
    if (n > r.remaining() / 16) fail(ErrorCategory::corrupt, "volume reader: {} ranges in {} bytes", n, reply.size());
    std::vector<ByteRange> out(n);
    for (ByteRange& b : out) {
      b.offset = r.le64();
      b.length = r.le64();
    }
    return out;
  }

 private:
  std::string where(std::string_view path) const { return name_ + " " + std::string(path); }

  std::vector<uint8_t> call(uint16_t type, std::span<const uint8_t> extra, const std::string& what) {
    ByteWriter w;
    w.le32(volume_);
    w.bytes(extra);
    return channel_->call(type, w.buffer(), what);
  }

  std::vector<uint8_t> call_path(uint16_t type, std::string_view path, const char* verb) {
    ByteWriter w;
    put_string(w, path);
    return call(type, w.buffer(), std::string(verb) + " " + where(path));
  }

  std::shared_ptr<Sandbox::Channel> channel_;
  uint32_t volume_;
  std::string name_;
  std::string type_, label_, uuid_;
  uint64_t size_ = 0, used_ = 0;
  std::vector<std::string> notes_;
};

class SandboxTree final : public Tree {
 public:
  SandboxTree(std::shared_ptr<Sandbox::Channel> channel, std::vector<VolumeInfo> volumes, std::vector<std::string> names)
      : channel_(std::move(channel)), volumes_(std::move(volumes)), names_(std::move(names)) {}

  const std::vector<VolumeInfo>& volumes() const override { return volumes_; }
  const std::vector<std::string>& disk_names() const override { return names_; }

  Filesystem& filesystem(size_t index) override {
    std::lock_guard lock(mutex_);
    if (index >= volumes_.size()) fail(ErrorCategory::internal, "volume {} does not exist", index);
    auto it = open_.find(index);
    if (it != open_.end()) return *it->second;
    const VolumeInfo& v = volumes_[index];
    const std::string name = v.name.empty() ? names_[v.disk] : names_[v.disk] + " " + v.name;
    auto fs = std::make_unique<RemoteFilesystem>(channel_, static_cast<uint32_t>(index), name);
    return *open_.emplace(index, std::move(fs)).first->second;
  }

 private:
  std::shared_ptr<Sandbox::Channel> channel_;
  std::vector<VolumeInfo> volumes_;
  std::vector<std::string> names_;
  std::mutex mutex_;
  std::map<size_t, std::unique_ptr<RemoteFilesystem>> open_;
};

}  // namespace

std::unique_ptr<Sandbox> Sandbox::start(SandboxOptions options) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) throw_errno(errno, "volume sandbox: socketpair");
  UniqueFd parent_end(sv[0]), child_end(sv[1]);
  const pid_t pid = ::fork();
  if (pid < 0) throw_errno(errno, "volume sandbox: fork");
  if (pid == 0) {
    parent_end.release();  // closed by confinement, never by a destructor in the child
    sandbox::run_child(child_end.release(), options);
  }
  auto channel = std::make_shared<Channel>();
  channel->pid = pid;
  channel->fd = std::move(parent_end);
  channel->timeout_seconds = options.timeout_seconds ? options.timeout_seconds : 300;
  channel->request_limit_seconds = options.request_limit_seconds ? options.request_limit_seconds : 3600;
  return std::unique_ptr<Sandbox>(new Sandbox(std::move(channel)));
}

Sandbox::~Sandbox() = default;

std::unique_ptr<Tree> Sandbox::explore(std::vector<Disk> disks) {
  if (!channel_->disks.empty()) fail(ErrorCategory::internal, "volume sandbox: explore() called twice");
  ByteWriter w;
  w.le32(static_cast<uint32_t>(disks.size()));
  std::vector<std::string> names;
  for (const Disk& d : disks) {
    put_string(w, d.name);
    w.le64(d.device->size());
    names.push_back(d.name);
  }
  channel_->disks = std::move(disks);
  std::vector<uint8_t> reply = channel_->call(kExplore, w.buffer(), "reading the partition tables and volumes");
  ByteReader r(reply, "volume reader tree");
  const uint32_t n = r.le32();
  std::vector<VolumeInfo> volumes;
  for (uint32_t i = 0; i < n; ++i) {
    VolumeInfo v = get_volume(r);
    if (v.disk >= names.size()) fail(ErrorCategory::corrupt, "volume reader: a volume on disk {} of {}", v.disk, names.size());
    volumes.push_back(std::move(v));
  }
  return std::make_unique<SandboxTree>(channel_, std::move(volumes), std::move(names));
}

void Sandbox::test_request(std::string_view payload) {
  channel_->call(kTest, std::span(reinterpret_cast<const uint8_t*>(payload.data()), payload.size()), "running a test request");
}

std::unique_ptr<Tree> explore_sandboxed(std::vector<Disk> disks, SandboxOptions options) {
  return Sandbox::start(std::move(options))->explore(std::move(disks));
}

}  // namespace arche::volume
