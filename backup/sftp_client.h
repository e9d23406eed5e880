// The SFTP protocol over one SshConnection, with many requests in flight at once from
// any number of threads. libssh sessions are not thread-safe, so one I/O thread owns
// the session: callers hand it finished request packets (send) and wait on futures;
// the thread writes them as the channel window allows (non-blocking), reads replies
// as they come (channel callback) and completes the future of each by its request id.
// SFTP servers answer requests in any order, so reads and writes of many objects
// share the link without waiting for each other: that is how uploads run in parallel
// over one session.
//
// When the connection drops (or no reply comes within the stall timeout while requests
// are outstanding), every outstanding and later future fails with ConnectionLost, and
// the client stays dead: SftpStore opens a new one and repeats what may be repeated.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <libssh/callbacks.h>

#include "backup/sftp_packet.h"
#include "core/error.h"

namespace arche::backup::sftp {

class SshConnection;

// The link is gone; the request may or may not have been carried out.
class ConnectionLost : public Error {
 public:
  explicit ConnectionLost(const std::string& message) : Error(ErrorCategory::io, message) {}
};

class SftpClient {
 public:
  // Runs the INIT/VERSION exchange (and limits@openssh.com when offered) before it returns.
  SftpClient(std::unique_ptr<SshConnection> connection, std::string label, std::chrono::seconds stall_timeout);
  ~SftpClient();
  SftpClient(const SftpClient&) = delete;
  SftpClient& operator=(const SftpClient&) = delete;

  uint32_t next_id() { return next_id_.fetch_add(1, std::memory_order_relaxed); }
  // Queues a packet built with Request(type, id); its reply completes the future.
  // Blocks while too many bytes wait to be written (back pressure on fast producers).
  std::future<Reply> send(uint32_t id, std::vector<uint8_t> packet);

  bool alive() const { return !lost_.load(); }
  bool has_extension(const std::string& name) const { return version_.extensions.count(name) > 0; }
  uint32_t max_read() const { return max_read_; }
  uint32_t max_write() const { return max_write_; }
  const std::string& label() const { return label_; }

 private:
  void run();
  void stop();
  void wake();
  void queue(std::vector<uint8_t> packet);
  void write_queued();
  void dispatch(Reply reply);
  void lose(const std::string& reason);
  static int on_data(ssh_session session, ssh_channel channel, void* data, uint32_t len, int is_stderr, void* self);

  std::unique_ptr<SshConnection> connection_;
  std::string label_;
  std::chrono::seconds stall_timeout_;
  int wake_fd_ = -1;  // eventfd: a packet is queued, or stop

  std::atomic<uint32_t> next_id_{1};
  std::atomic<bool> lost_{false};
  std::atomic<bool> stopping_{false};

  std::mutex mutex_;  // guards everything below
  std::condition_variable room_;
  std::string lost_reason_;
  std::deque<std::vector<uint8_t>> queue_;
  size_t queued_bytes_ = 0;
  size_t front_written_ = 0;  // of queue_.front()
  std::unordered_map<uint32_t, std::promise<Reply>> pending_;
  std::promise<Reply> version_reply_;
  bool version_seen_ = false;
  std::chrono::steady_clock::time_point last_reply_;

  ReplyParser parser_;  // I/O thread only
  ssh_channel_callbacks_struct callbacks_{};
  Version version_;
  uint32_t max_read_ = kDefaultTransfer;
  uint32_t max_write_ = kDefaultTransfer;
  std::thread thread_;
};

// The reply of a request that has one status: throws the matching arche::Error (not
// found, permission, ...) naming `what`, or returns normally on SSH_FX_OK.
void check_status(const Reply& reply, const std::string& what);
// The category a status code means.
ErrorCategory status_category(uint32_t code);

}  // namespace arche::backup::sftp
