#include "backup/store_sftp.h"

#include <libssh/sftp.h>

#include <algorithm>

#include "backup/remote_url.h"
#include "backup/sftp_client.h"
#include "backup/sftp_objects.h"
#include "backup/sftp_requests.h"
#include "core/log.h"

namespace arche::backup {

using namespace sftp;  // the client, its requests (sftp_requests.h) and objects (sftp_objects.h)

bool is_sftp_temporary(std::string_view base_name) {
  return base_name.starts_with(".") && base_name.find(kTempMarker) != std::string_view::npos;
}

SftpOptions SftpOptions::from_environment() {
  SftpOptions o;
  o.ssh = sftp::SshOptions::from_environment();
  o.retry = RetryPolicy::from_environment();
  return o;
}

SftpStore::SftpStore(const std::string& url, SftpOptions options) : options_(std::move(options)) {
  const RemoteUrl u = parse_remote_url(url);
  if (u.scheme != "sftp") fail(ErrorCategory::usage, "{}: not an sftp:// URL", url);
  endpoint_.user = u.user;
  endpoint_.host = u.host;
  endpoint_.port = u.port;
  std::string path = u.path;
  while (path.size() > 1 && path.ends_with("/")) path.pop_back();
  if (path.empty()) fail(ErrorCategory::usage, "{}: no path in the URL (sftp://host/path, or sftp://host/~/path)", url);
  location_ = "sftp://" + (u.user.empty() ? "" : u.user + "@") + u.authority() + path;
  endpoint_.label = location_;
  // "/~/repo" is relative to the login directory, as in the sftp URI draft.
  if (path == "/~") {
    root_ = "";
  } else if (path.starts_with("/~/")) {
    root_ = path.substr(3);
  } else {
    root_ = path;
  }
  if (!root_.empty() && root_ != "/") check_object_name(root_.starts_with("/") ? root_.substr(1) : root_, location_);
}

std::unique_ptr<SftpStore> SftpStore::from_url(const std::string& url) {
  return std::make_unique<SftpStore>(url, SftpOptions::from_environment());
}

SftpStore::~SftpStore() = default;

std::string SftpStore::remote_path(std::string_view name) const {
  check_object_name(name, location_);
  if (root_.empty()) return std::string(name);
  return root_ == "/" ? "/" + std::string(name) : root_ + "/" + std::string(name);
}

std::shared_ptr<SftpClient> SftpStore::client() {
  std::lock_guard lock(connect_mutex_);
  if (client_ && client_->alive()) return client_;
  client_.reset();
  try {
    auto connection = std::make_unique<sftp::SshConnection>(endpoint_, options_.ssh, secrets_);
    client_ = std::make_shared<SftpClient>(std::move(connection), location_, options_.stall_timeout);
  } catch (const ConnectionLost&) {
    throw;
  } catch (const Error& e) {
    // Cannot connect (yet): worth retrying. A refused host key or failed
    // authentication is not.
    if (e.category() == ErrorCategory::io) throw ConnectionLost(e.what());
    throw;
  }
  return client_;
}

void SftpStore::connect() { retrying("connecting", [](const std::shared_ptr<SftpClient>&) {}); }

void SftpStore::retrying(std::string_view what, const std::function<void(const std::shared_ptr<SftpClient>&)>& fn) {
  const RetryPolicy& policy = options_.retry;
  for (unsigned attempt = 1;; ++attempt) {
    try {
      fn(client());
      return;
    } catch (const ConnectionLost& e) {
      if (attempt >= policy.attempts) {
        // e names the store already.
        fail(ErrorCategory::io, "{} ({}; gave up after {} attempt{})", e.what(), what, policy.attempts,
             policy.attempts == 1 ? "" : "s");
      }
      const auto delay = policy.delay(attempt);
      note("{} ({}); retrying in {} ms ({} of {})", e.what(), what, delay.count(), attempt + 1, policy.attempts);
      backoff_sleep(delay);
    }
  }
}

void SftpStore::make_parents(SftpClient& c, const std::string& path) {
  // Called when an open found no directory: everything from the top, each MKDIR
  // allowed to find its directory there already (made meanwhile by another writer).
  std::vector<std::string> dirs;
  for (std::string dir = path; !dir.empty() && dir != "/" && dir != "."; dir = parent_of(dir)) dirs.push_back(dir);
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
    const uint32_t id = c.next_id();
    const Reply reply = c.send(id, Request(SSH_FXP_MKDIR, id).string(*it).attrs(kDirMode).finish()).get();
    if (status_code(reply) != SSH_FX_OK && !stat_path(c, *it, location_ + ": " + *it)) {
      sftp::check_status(reply, location_ + ": creating directory " + *it);
    }
  }
}

void SftpStore::fail_write(SftpClient& c, const Error& error, const std::string& path) {
  // SFTP v3 has no "disk full" status (OpenSSH answers ENOSPC with a plain failure):
  // the file system's free space says whether that was it.
  if (error.category() == ErrorCategory::io && c.has_extension("statvfs@openssh.com")) {
    try {
      const Reply reply = send_extended(c, "statvfs@openssh.com", path).get();
      if (reply.type == SSH_FXP_EXTENDED_REPLY) {
        const sftp::StatVfs vfs = sftp::parse_statvfs(reply);
        if (vfs.available_blocks * std::max<uint64_t>(vfs.fragment_size, 1) < (1u << 20)) {
          fail(ErrorCategory::no_space, "{} (the server's file system is full)", error.what());
        }
      }
    } catch (const ConnectionLost&) {
    }
  }
  throw error;
}

StoreCapabilities SftpStore::capabilities() const {
  StoreCapabilities caps;
  // Without posix-rename a replacement is remove + rename. Whether the server has it
  // takes a session to know; it does not change, so it is asked once.
  {
    std::lock_guard lock(capabilities_mutex_);
    if (!posix_rename_) {
      auto* self = const_cast<SftpStore*>(this);
      self->retrying("connecting", [&](const std::shared_ptr<SftpClient>& c) {
        posix_rename_ = c->has_extension("posix-rename@openssh.com");
      });
    }
    caps.atomic_rename = *posix_rename_;
  }
  caps.exclusive_create = true;  // SSH_FXF_EXCL, and RENAME that refuses an existing target
  caps.consistent_listing = true;  // one server's file system
  caps.local = false;
  caps.parallelism = options_.parallelism;
  return caps;
}

std::vector<ObjectInfo> SftpStore::walk(std::string_view prefix, bool temporaries) {
  std::string_view dir_part = prefix.substr(0, prefix.rfind('/') == std::string_view::npos ? 0 : prefix.rfind('/'));
  if (!dir_part.empty()) check_object_name(dir_part, location_);
  std::vector<ObjectInfo> out;
  retrying("listing " + std::string(prefix), [&](const std::shared_ptr<SftpClient>& cp) {
    SftpClient& c = *cp;
    out.clear();
    // Breadth first; every directory of a level is read at the same time.
    struct Dir {
      std::string relative;  // "" or "data/ab"
      std::string handle;
      std::future<Reply> reply;
    };
    std::vector<std::string> level = {std::string(dir_part)};
    while (!level.empty()) {
      std::vector<Dir> open;
      for (std::string& rel : level) {
        const std::string path = rel.empty() ? (root_.empty() ? "." : root_) : remote_path(rel);
        open.push_back({rel, "", send_path(c, SSH_FXP_OPENDIR, path)});
      }
      std::vector<Dir> reading;
      for (Dir& d : open) {
        const Reply reply = d.reply.get();
        if (reply.type == SSH_FXP_STATUS) {
          if (status_code(reply) == SSH_FX_NO_SUCH_FILE) continue;  // nothing there (yet)
          sftp::check_status(reply, location_ + ": listing " + d.relative);
        }
        d.handle = sftp::parse_handle(reply);
        reading.push_back(std::move(d));
      }
      std::vector<std::string> next_level;
      while (!reading.empty()) {
        for (Dir& d : reading) d.reply = send_handle(c, SSH_FXP_READDIR, d.handle);
        std::vector<Dir> still;
        for (Dir& d : reading) {
          const Reply reply = d.reply.get();
          if (reply.type == SSH_FXP_STATUS) {
            if (status_code(reply) != SSH_FX_EOF) sftp::check_status(reply, location_ + ": listing " + d.relative);
            send_handle(c, SSH_FXP_CLOSE, d.handle);  // the reply needs no waiting for
            continue;
          }
          for (sftp::NameEntry& e : sftp::parse_names(reply)) {
            // Names the repository never makes (".", control characters) are not its objects.
            if (e.name == "." || e.name == ".." || e.name.empty() ||
                std::any_of(e.name.begin(), e.name.end(), [](unsigned char ch) { return ch < 0x20 || ch == '/' || ch == 0x7f; })) {
              continue;
            }
            std::string rel = d.relative.empty() ? e.name : d.relative + "/" + e.name;
            if (e.attrs.is_directory()) {
              // Only directories the prefix can reach into.
              if (rel.starts_with(prefix) || std::string_view(prefix).starts_with(rel + "/")) next_level.push_back(std::move(rel));
            } else if (e.attrs.is_regular() && rel.starts_with(prefix) && is_sftp_temporary(e.name) == temporaries) {
              out.push_back({std::move(rel), e.attrs.size.value_or(0), e.attrs.mtime.value_or(0)});
            }
          }
          still.push_back(std::move(d));
        }
        reading = std::move(still);
      }
      level = std::move(next_level);
    }
  });
  return out;
}

std::vector<ObjectInfo> SftpStore::list(std::string_view prefix) { return walk(prefix, false); }

std::vector<ObjectInfo> SftpStore::temporaries(std::string_view prefix) { return walk(prefix, true); }

size_t SftpStore::remove_temporaries(std::string_view prefix, std::chrono::seconds older_than) {
  const int64_t now = std::time(nullptr);
  size_t removed = 0;
  for (const ObjectInfo& t : temporaries(prefix)) {
    if (t.mtime && now - t.mtime < older_than.count()) continue;
    remove(t.name);
    ++removed;
  }
  return removed;
}

std::optional<ObjectInfo> SftpStore::stat(std::string_view name) {
  const std::string path = remote_path(name);
  std::optional<ObjectInfo> out;
  retrying(name, [&](const std::shared_ptr<SftpClient>& c) {
    out.reset();
    const std::optional<sftp::Attrs> attrs = stat_path(*c, path, location_ + ": " + std::string(name));
    if (attrs) out = ObjectInfo{std::string(name), attrs->size.value_or(0), attrs->mtime.value_or(0)};
  });
  return out;
}

std::vector<uint8_t> SftpStore::read(std::string_view name) {
  const std::unique_ptr<ObjectReader> reader = open_reader(*this, std::string(name));
  std::vector<uint8_t> out(reader->size());
  reader->read(0, out);
  return out;
}

std::vector<uint8_t> SftpStore::read_range(std::string_view name, uint64_t offset, uint64_t length) {
  std::vector<uint8_t> out(length);
  open_reader(*this, std::string(name))->read(offset, out);
  return out;
}

std::unique_ptr<ObjectReader> SftpStore::open(std::string_view name) {
  return open_reader(*this, std::string(name));
}

void SftpStore::write(std::string_view name, std::span<const uint8_t> data, WriteMode mode) {
  const std::unique_ptr<ObjectWriter> writer = open_writer(*this, std::string(name), mode);
  writer->append(data);
  writer->commit();
}

std::unique_ptr<ObjectWriter> SftpStore::create(std::string_view name, WriteMode mode) {
  return open_writer(*this, std::string(name), mode);
}

void SftpStore::remove(std::string_view name) {
  const std::string path = remote_path(name);
  retrying(name, [&](const std::shared_ptr<SftpClient>& c) {
    const Reply reply = send_path(*c, SSH_FXP_REMOVE, path).get();
    if (status_code(reply) != SSH_FX_NO_SUCH_FILE) sftp::check_status(reply, location_ + ": " + std::string(name));
  });
}

}  // namespace arche::backup
