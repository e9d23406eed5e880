// A repository on an SFTP server (OpenSSH, a NAS, a rented storage box), through
// libssh for the SSH transport and arche's own SFTP v3 client (sftp_client.h) for the
// file protocol. docs/storage.md "SFTP" says what it guarantees; in short:
//
//   URL         sftp://[user@]host[:port]/absolute/path
//               sftp://[user@]host[:port]/~/path     relative to the login directory
//   auth        host key from known_hosts only; agent, key files, or a password from the
//               passphrase sources (sftp_session.h)
//   writes      to ".NAME.arche-tmp-RANDOM" in the object's directory, opened with
//               SSH_FXF_CREAT|SSH_FXF_EXCL, many WRITE requests in flight; then
//               fsync@openssh.com (when offered) so the bytes are on the server's disk,
//               then the rename: for WriteMode::create the protocol's own RENAME, which
//               refuses an existing target (OpenSSH: link(2) + unlink(2)); for
//               WriteMode::replace posix-rename@openssh.com, rename(2), which replaces
//               atomically. Temporary objects are never listed.
//   dropped     the request is retried with backoff over a new session; a writer
//   connection  reopens its temporary object and resends what was not acknowledged,
//               so an upload resumes where it was; when the server stays away, one io
//               error, and the object is not visible under its final name
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "backup/remote_retry.h"
#include "backup/sftp_session.h"
#include "core/error.h"
#include "backup/store.h"

namespace arche::backup {

namespace sftp {
class SftpClient;
}

struct SftpOptions {
  sftp::SshOptions ssh;
  RetryPolicy retry;
  // A connection with requests outstanding and no reply for this long is dropped.
  std::chrono::seconds stall_timeout{60};
  unsigned parallelism = 8;           // capabilities().parallelism
  unsigned writes_in_flight = 16;     // WRITE requests one writer keeps outstanding
  unsigned reads_in_flight = 16;      // READ requests one read keeps outstanding

  static SftpOptions from_environment();
};

class SftpStore : public Store {
 public:
  SftpStore(const std::string& url, SftpOptions options);
  static std::unique_ptr<SftpStore> from_url(const std::string& url);  // options from the environment
  ~SftpStore() override;

  std::string location() const override { return location_; }
  StoreCapabilities capabilities() const override;

  std::vector<ObjectInfo> list(std::string_view prefix) override;
  std::optional<ObjectInfo> stat(std::string_view name) override;
  std::vector<uint8_t> read(std::string_view name) override;
  std::vector<uint8_t> read_range(std::string_view name, uint64_t offset, uint64_t length) override;
  std::unique_ptr<ObjectReader> open(std::string_view name) override;
  void write(std::string_view name, std::span<const uint8_t> data, WriteMode mode) override;
  std::unique_ptr<ObjectWriter> create(std::string_view name, WriteMode mode) override;
  void remove(std::string_view name) override;

  // Temporary objects of writers that never finished (a killed process, a server that
  // went away), below `prefix`; and their removal when older than `older_than` (a
  // grace period that leaves running uploads alone). Returns how many went.
  std::vector<ObjectInfo> temporaries(std::string_view prefix);
  size_t remove_temporaries(std::string_view prefix, std::chrono::seconds older_than);

  // Connects now (errors: cannot connect, host key refused, authentication failed)
  // rather than at the first request.
  void connect();

  // For the writer and reader classes: the live session (a new one when the last
  // dropped), and `fn` retried with backoff over new sessions while the connection
  // drops; other errors pass through.
  std::shared_ptr<sftp::SftpClient> client();
  void retrying(std::string_view what, const std::function<void(const std::shared_ptr<sftp::SftpClient>&)>& fn);
  std::string remote_path(std::string_view name) const;
  void make_parents(sftp::SftpClient& client, const std::string& path);
  const SftpOptions& options() const { return options_; }
  // The error a failed write means; no_space when the server's file system is full.
  [[noreturn]] void fail_write(sftp::SftpClient& client, const Error& error, const std::string& path);

 private:
  std::vector<ObjectInfo> walk(std::string_view prefix, bool temporaries);

  std::string location_;
  sftp::Endpoint endpoint_;
  std::string root_;  // "/srv/repo", or "repo" relative to the login directory, or ""
  SftpOptions options_;
  sftp::SshSecrets secrets_;
  std::mutex connect_mutex_;
  std::shared_ptr<sftp::SftpClient> client_;
  mutable std::mutex capabilities_mutex_;
  mutable std::optional<bool> posix_rename_;
};

// True for the name of a writer's temporary object (".NAME.arche-tmp-...").
bool is_sftp_temporary(std::string_view base_name);

}  // namespace arche::backup
