#include "backup/sftp_client.h"

#include <libssh/sftp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>

#include "backup/sftp_session.h"

namespace arche::backup::sftp {
namespace {

// Bytes queued for the I/O thread before send() makes the caller wait.
constexpr size_t kMaxQueued = 16u << 20;
// The SFTP version we speak (and OpenSSH does).
constexpr uint32_t kVersion = 3;

int on_wake(socket_t fd, int, void*) {
  uint64_t count = 0;
  [[maybe_unused]] ssize_t n = ::read(fd, &count, sizeof count);
  return 0;
}

}  // namespace

ErrorCategory status_category(uint32_t code) {
  switch (code) {
    case SSH_FX_NO_SUCH_FILE:
    case SSH_FX_NO_SUCH_PATH: return ErrorCategory::not_found;
    case SSH_FX_PERMISSION_DENIED:
    case SSH_FX_WRITE_PROTECT: return ErrorCategory::permission;
    case SSH_FX_FILE_ALREADY_EXISTS: return ErrorCategory::exists;
    case SSH_FX_OP_UNSUPPORTED: return ErrorCategory::unsupported;
    case SSH_FX_EOF: return ErrorCategory::format;
    default: return ErrorCategory::io;
  }
}

void check_status(const Reply& reply, const std::string& what) {
  const Status status = parse_status(reply);
  if (status.code == SSH_FX_OK) return;
  std::string server;
  if (!status.message.empty() && status.message != status_name(status.code)) {
    for (char c : status.message) server.push_back(static_cast<unsigned char>(c) < 0x20 ? ' ' : c);
    server = " (server: " + server + ")";
  }
  fail(status_category(status.code), "{}: {}{}", what, status_name(status.code), server);
}

SftpClient::SftpClient(std::unique_ptr<SshConnection> connection, std::string label, std::chrono::seconds stall_timeout)
    : connection_(std::move(connection)), label_(std::move(label)), stall_timeout_(stall_timeout) {
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) throw_errno(errno, "eventfd");
  ssh_callbacks_init(&callbacks_);
  callbacks_.userdata = this;
  callbacks_.channel_data_function = &SftpClient::on_data;
  ssh_set_channel_callbacks(connection_->channel(), &callbacks_);
  ssh_set_blocking(connection_->session(), 0);
  last_reply_ = std::chrono::steady_clock::now();
  std::future<Reply> version = version_reply_.get_future();
  thread_ = std::thread(&SftpClient::run, this);

  try {
    queue(Request::init(kVersion).finish());
    if (version.wait_for(stall_timeout_) != std::future_status::ready) {
      lose("no SFTP version reply");
    }
    version_ = parse_version(version.get());
    if (version_.version < kVersion) {
      fail(ErrorCategory::unsupported, "{}: the server speaks SFTP version {}, arche needs {}", label_, version_.version, kVersion);
    }
    if (has_extension("limits@openssh.com")) {
      const uint32_t id = next_id();
      const Reply reply = send(id, Request(SSH_FXP_EXTENDED, id).string("limits@openssh.com").finish()).get();
      if (reply.type == SSH_FXP_EXTENDED_REPLY) {
        const Limits limits = parse_limits(reply);
        // A WRITE carries about 300 bytes of header and handle besides its data.
        const uint64_t packet = limits.max_packet ? std::min<uint64_t>(limits.max_packet, kMaxPacket) : kMaxPacket;
        auto bound = [&](uint64_t limit) {
          return static_cast<uint32_t>(std::clamp<uint64_t>(limit ? limit : kDefaultTransfer, kDefaultTransfer, packet - 1024));
        };
        max_read_ = bound(limits.max_read);
        max_write_ = bound(limits.max_write);
      }
    }
  } catch (...) {
    stop();
    throw;
  }
}

SftpClient::~SftpClient() { stop(); }

void SftpClient::stop() {
  if (thread_.joinable()) {
    stopping_ = true;
    wake();
    thread_.join();
  }
  lose("the client was closed");
  if (connection_) {
    ssh_remove_channel_callbacks(connection_->channel(), &callbacks_);
    connection_.reset();
  }
  if (wake_fd_ >= 0) {
    ::close(wake_fd_);
    wake_fd_ = -1;
  }
}

void SftpClient::wake() {
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
}

void SftpClient::queue(std::vector<uint8_t> packet) {
  {
    std::unique_lock lock(mutex_);
    room_.wait(lock, [&] { return lost_.load() || queued_bytes_ < kMaxQueued; });
    if (lost_) throw ConnectionLost(lost_reason_);
    queued_bytes_ += packet.size();
    queue_.push_back(std::move(packet));
  }
  wake();
}

std::future<Reply> SftpClient::send(uint32_t id, std::vector<uint8_t> packet) {
  std::future<Reply> reply;
  {
    std::lock_guard lock(mutex_);
    if (lost_) throw ConnectionLost(lost_reason_);
    // The stall clock starts when something is first awaited, not at the last reply.
    if (pending_.empty()) last_reply_ = std::chrono::steady_clock::now();
    reply = pending_[id].get_future();
  }
  try {
    queue(std::move(packet));
  } catch (...) {
    std::lock_guard lock(mutex_);
    pending_.erase(id);
    throw;
  }
  return reply;
}

void SftpClient::run() {
  ssh_session session = connection_->session();
  ssh_channel channel = connection_->channel();
  ssh_event event = ssh_event_new();
  ssh_event_add_session(event, session);
  ssh_event_add_fd(event, wake_fd_, POLLIN, on_wake, this);
  while (!stopping_ && !lost_) {
    write_queued();
    if (lost_) break;
    if (ssh_event_dopoll(event, 200) == SSH_ERROR) {
      lose(std::string("connection lost: ") + ssh_get_error(session));
      break;
    }
    if (!ssh_is_connected(session) || ssh_channel_is_closed(channel) || ssh_channel_is_eof(channel)) {
      lose("connection closed by the server");
      break;
    }
    bool stalled = false;
    {
      std::lock_guard lock(mutex_);
      stalled = !pending_.empty() && std::chrono::steady_clock::now() - last_reply_ > stall_timeout_;
    }
    if (stalled) lose("no reply for " + std::to_string(stall_timeout_.count()) + " s");
  }
  ssh_event_remove_fd(event, wake_fd_);
  ssh_event_remove_session(event, session);
  ssh_event_free(event);
}

void SftpClient::write_queued() {
  ssh_channel channel = connection_->channel();
  for (;;) {
    const std::vector<uint8_t>* front = nullptr;
    size_t offset = 0;
    {
      std::lock_guard lock(mutex_);
      if (queue_.empty()) return;
      front = &queue_.front();  // only this thread removes elements: the reference stays valid
      offset = front_written_;
    }
    // Non-blocking: writes what the peer's window takes, maybe nothing.
    const int n = ssh_channel_write(channel, front->data() + offset, static_cast<uint32_t>(front->size() - offset));
    if (n == SSH_ERROR) {
      lose(std::string("connection lost: ") + ssh_get_error(connection_->session()));
      return;
    }
    const size_t written = n > 0 ? static_cast<size_t>(n) : 0;
    {
      std::lock_guard lock(mutex_);
      if (lost_ || queue_.empty()) return;
      front_written_ += written;
      if (front_written_ == queue_.front().size()) {
        queued_bytes_ -= queue_.front().size();
        queue_.pop_front();
        front_written_ = 0;
        room_.notify_all();
      }
    }
    // Nothing written: the window is full. libssh may have read the server's window
    // adjust during this very call, so ask before waiting for the socket.
    if (written == 0 && ssh_channel_window_size(channel) == 0) return;
  }
}

int SftpClient::on_data(ssh_session, ssh_channel, void* data, uint32_t len, int is_stderr, void* self_pointer) {
  auto* self = static_cast<SftpClient*>(self_pointer);
  if (is_stderr) return static_cast<int>(len);
  try {
    self->parser_.feed(std::span(static_cast<const uint8_t*>(data), len));
    while (std::optional<Reply> reply = self->parser_.next()) self->dispatch(std::move(*reply));
  } catch (const Error& e) {
    self->lose(std::string("bad reply from the server: ") + e.what());
  }
  return static_cast<int>(len);
}

void SftpClient::dispatch(Reply reply) {
  std::lock_guard lock(mutex_);
  last_reply_ = std::chrono::steady_clock::now();
  if (reply.type == SSH_FXP_VERSION) {
    if (!version_seen_) version_reply_.set_value(std::move(reply));
    version_seen_ = true;
    return;
  }
  auto it = pending_.find(reply.id);
  if (it == pending_.end()) return;  // not ours (a server bug): ignored
  it->second.set_value(std::move(reply));
  pending_.erase(it);
}

void SftpClient::lose(const std::string& reason) {
  std::lock_guard lock(mutex_);
  if (lost_) return;
  lost_reason_ = label_ + ": " + reason;
  lost_ = true;
  for (auto& [id, promise] : pending_) promise.set_exception(std::make_exception_ptr(ConnectionLost(lost_reason_)));
  pending_.clear();
  if (!version_seen_) {
    version_reply_.set_exception(std::make_exception_ptr(ConnectionLost(lost_reason_)));
    version_seen_ = true;
  }
  // The queue stays: the I/O thread may be writing its front; nothing is queued
  // any more (send() and queue() refuse once lost_ is set).
  room_.notify_all();
}

}  // namespace arche::backup::sftp
