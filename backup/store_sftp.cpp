#include "backup/store_sftp.h"

#include <libssh/sftp.h>
#include <sys/stat.h>

#include <algorithm>
#include <deque>

#include "backup/crypto.h"
#include "backup/remote_url.h"
#include "backup/sftp_client.h"
#include "core/log.h"

namespace arche::backup {

using sftp::ConnectionLost;
using sftp::Reply;
using sftp::Request;
using sftp::SftpClient;

namespace {

constexpr uint32_t kFileMode = 0600;  // repository files hold only ciphertext, still nobody else's business
constexpr uint32_t kDirMode = 0700;
constexpr std::string_view kTempMarker = ".arche-tmp-";

std::string parent_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return "";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string base_of(std::string_view path) {
  const size_t slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

std::string random_hex(size_t bytes) {
  std::vector<uint8_t> random(bytes);
  random_fill(random);
  std::string out;
  for (uint8_t b : random) out += fmt::format("{:02x}", b);
  return out;
}

std::future<Reply> send_path(SftpClient& c, uint8_t type, const std::string& path) {
  const uint32_t id = c.next_id();
  return c.send(id, Request(type, id).string(path).finish());
}

std::future<Reply> send_handle(SftpClient& c, uint8_t type, const std::string& handle) {
  const uint32_t id = c.next_id();
  return c.send(id, Request(type, id).string(handle).finish());
}

std::future<Reply> send_extended(SftpClient& c, const char* name, const std::string& a, const std::string* b = nullptr) {
  const uint32_t id = c.next_id();
  Request r(SSH_FXP_EXTENDED, id);
  r.string(name).string(a);
  if (b) r.string(*b);
  return c.send(id, r.finish());
}

uint32_t status_code(const Reply& reply) {
  return reply.type == SSH_FXP_STATUS ? sftp::parse_status(reply).code : SSH_FX_OK;
}

std::string open_handle(SftpClient& c, const std::string& path, uint32_t flags, const std::string& what) {
  const uint32_t id = c.next_id();
  const Reply reply = c.send(id, Request(SSH_FXP_OPEN, id).string(path).u32(flags).attrs(kFileMode).finish()).get();
  if (reply.type == SSH_FXP_STATUS) sftp::check_status(reply, what);
  return sftp::parse_handle(reply);
}

std::optional<sftp::Attrs> stat_path(SftpClient& c, const std::string& path, const std::string& what) {
  const Reply reply = send_path(c, SSH_FXP_STAT, path).get();
  if (reply.type == SSH_FXP_STATUS) {
    if (status_code(reply) == SSH_FX_NO_SUCH_FILE) return std::nullopt;
    sftp::check_status(reply, what);
  }
  return sftp::parse_attrs(reply);
}

// Reads out.size() bytes at offset with up to `window` READ requests in flight. A
// server may answer a READ with fewer bytes than asked: the rest is asked again.
void read_handle(SftpClient& c, const std::string& handle, uint64_t offset, std::span<uint8_t> out, unsigned window,
                 const std::string& what) {
  const size_t chunk = c.max_read();
  struct Piece {
    size_t at;
    size_t length;
    std::future<Reply> reply;
  };
  std::deque<Piece> pieces;
  size_t next = 0;
  auto issue = [&](size_t at, size_t length) {
    const uint32_t id = c.next_id();
    pieces.push_back({at, length,
                      c.send(id, Request(SSH_FXP_READ, id).string(handle).u64(offset + at).u32(static_cast<uint32_t>(length)).finish())});
  };
  while (next < out.size() || !pieces.empty()) {
    while (next < out.size() && pieces.size() < window) {
      const size_t length = std::min(chunk, out.size() - next);
      issue(next, length);
      next += length;
    }
    Piece piece = std::move(pieces.front());
    pieces.pop_front();
    const Reply reply = piece.reply.get();
    if (reply.type == SSH_FXP_STATUS) {
      if (status_code(reply) == SSH_FX_EOF) {
        fail(ErrorCategory::format, "{}: truncated (end of object before byte {})", what, offset + piece.at);
      }
      sftp::check_status(reply, what);
      fail(ErrorCategory::format, "{}: READ answered with a success status", what);
    }
    const std::span<const uint8_t> data = sftp::parse_data(reply);
    if (data.empty() || data.size() > piece.length) fail(ErrorCategory::format, "{}: READ answered with {} bytes", what, data.size());
    std::copy(data.begin(), data.end(), out.begin() + static_cast<ptrdiff_t>(piece.at));
    if (data.size() < piece.length) issue(piece.at + data.size(), piece.length - data.size());
  }
}

void close_handle(SftpClient& c, const std::string& handle, const std::string& what) {
  sftp::check_status(send_handle(c, SSH_FXP_CLOSE, handle).get(), what);
}

// Closes without waiting, for destructors and error paths.
void close_quietly(const std::shared_ptr<SftpClient>& c, const std::string& handle) {
  if (!c || handle.empty() || !c->alive()) return;
  try {
    send_handle(*c, SSH_FXP_CLOSE, handle);
  } catch (...) {
  }
}

// A random-access reader holding one open handle; a dropped connection reopens it.
class SftpReader : public ObjectReader {
 public:
  SftpReader(SftpStore& store, std::string name) : store_(store), name_(std::move(name)), path_(store.remote_path(name_)) {
    store_.retrying(name_, [&](const std::shared_ptr<SftpClient>& c) { reopen(c); });
  }
  ~SftpReader() override { close_quietly(client_, handle_); }

  uint64_t size() const override { return size_; }

  void read(uint64_t offset, std::span<uint8_t> out) override {
    if (offset > size_ || out.size() > size_ - offset) {
      fail(ErrorCategory::format, "{}: {}: truncated (reading {} bytes at {} of a {}-byte object)", store_.location(), name_,
           out.size(), offset, size_);
    }
    store_.retrying(name_, [&](const std::shared_ptr<SftpClient>& c) {
      if (c != client_) reopen(c);
      read_handle(*c, handle_, offset, out, store_.options().reads_in_flight, what());
    });
  }

 private:
  std::string what() const { return store_.location() + ": " + name_; }
  void reopen(const std::shared_ptr<SftpClient>& c) {
    handle_ = open_handle(*c, path_, SSH_FXF_READ, what());
    client_ = c;
    const uint32_t id = c->next_id();
    const Reply reply = c->send(id, Request(SSH_FXP_FSTAT, id).string(handle_).finish()).get();
    if (reply.type == SSH_FXP_STATUS) sftp::check_status(reply, what());
    const sftp::Attrs attrs = sftp::parse_attrs(reply);
    if (!attrs.size) fail(ErrorCategory::unsupported, "{}: the server does not tell the size of objects", what());
    size_ = *attrs.size;
  }

  SftpStore& store_;
  std::string name_;
  std::string path_;
  std::shared_ptr<SftpClient> client_;
  std::string handle_;
  uint64_t size_ = 0;
};

// Writes to a temporary object with many WRITEs in flight, then fsyncs and renames it
// into place (store_sftp.h). Every WRITE keeps its bytes until the server acknowledged
// it, so after a dropped connection the writer reopens its temporary object and sends
// again exactly what may not have arrived.
class SftpWriter : public ObjectWriter {
 public:
  SftpWriter(SftpStore& store, std::string name, WriteMode mode)
      : store_(store), name_(std::move(name)), mode_(mode), final_(store.remote_path(name_)) {
    const std::string dir = parent_of(final_);
    temp_ = (dir.empty() ? "" : dir == "/" ? "/" : dir + "/") + "." + base_of(final_) + std::string(kTempMarker) + random_hex(8);
    store_.retrying(name_, [&](const std::shared_ptr<SftpClient>& c) { open_temp(c); });
  }

  ~SftpWriter() override {
    if (committed_) return;
    // Best effort, and not waiting long: the server may be why we are here.
    if (!client_ || !client_->alive()) return;
    try {
      if (!handle_.empty()) send_handle(*client_, SSH_FXP_CLOSE, handle_);
      send_path(*client_, SSH_FXP_REMOVE, temp_).wait_for(std::chrono::seconds(5));
    } catch (...) {
    }
  }

  void append(std::span<const uint8_t> data) override {
    if (committed_) fail(ErrorCategory::internal, "{}: append after commit", what());
    const size_t chunk = client_->max_write();
    while (!data.empty()) {
      const size_t n = std::min(chunk, data.size());
      InFlight piece{written_, std::vector<uint8_t>(data.begin(), data.begin() + static_cast<ptrdiff_t>(n)), {}};
      written_ += n;
      data = data.subspan(n);
      in_flight_.push_back(std::move(piece));
      // A resume resends every piece in flight, this one included once it is queued.
      with_resume([&] {
        if (!in_flight_.back().reply.valid()) send_write(in_flight_.back());
      });
      while (in_flight_.size() > store_.options().writes_in_flight) settle_front();
    }
  }

  uint64_t bytes_written() const override { return written_; }

  void commit() override {
    if (committed_) return;
    while (!in_flight_.empty()) settle_front();
    if (client_->has_extension("fsync@openssh.com")) {
      with_resume([&] { sftp::check_status(send_extended(*client_, "fsync@openssh.com", handle_).get(), what()); });
    }
    // The bytes are on the server (fsynced, or at least acknowledged): a close that
    // fails with the connection loses nothing.
    try {
      close_handle(*client_, handle_, what());
    } catch (const ConnectionLost&) {
    }
    handle_.clear();
    store_.retrying(name_, [&](const std::shared_ptr<SftpClient>& c) {
      client_ = c;
      rename_into_place();
    });
    committed_ = true;
  }

 private:
  struct InFlight {
    uint64_t offset;
    std::vector<uint8_t> data;
    std::future<Reply> reply;
  };

  std::string what() const { return store_.location() + ": " + name_; }

  void open_temp(const std::shared_ptr<SftpClient>& c) {
    const uint32_t fresh = SSH_FXF_WRITE | SSH_FXF_CREAT | SSH_FXF_EXCL;
    try {
      handle_ = open_handle(*c, temp_, fresh, what());
    } catch (const ConnectionLost&) {
      throw;
    } catch (const Error& e) {
      if (e.category() != ErrorCategory::not_found) throw;
      store_.make_parents(*c, parent_of(temp_));
      handle_ = open_handle(*c, temp_, fresh, what());
    }
    client_ = c;
  }

  void send_write(InFlight& piece) {
    const uint32_t id = client_->next_id();
    piece.reply = client_->send(id, Request(SSH_FXP_WRITE, id).string(handle_).u64(piece.offset).bytes(piece.data).finish());
  }

  // Waits for the oldest WRITE; resumes over a new session when the connection dropped.
  void settle_front() {
    with_resume([&] {
      const Reply reply = in_flight_.front().reply.get();
      try {
        sftp::check_status(reply, what());
      } catch (const ConnectionLost&) {
        throw;
      } catch (const Error& e) {
        store_.fail_write(*client_, e, temp_);
      }
      in_flight_.pop_front();
    });
  }

  // Runs `step`; when the connection drops, reconnects (with the store's backoff),
  // reopens the temporary object, resends every unacknowledged WRITE and runs it again.
  void with_resume(const std::function<void()>& step) {
    for (unsigned resumes = 0;; ++resumes) {
      try {
        step();
        return;
      } catch (const ConnectionLost& e) {
        if (resumes + 1 >= store_.options().retry.attempts) {
          fail(ErrorCategory::io, "{} (uploading {}; gave up after {} resumptions)", e.what(), name_, resumes);
        }
        note("{}; resuming the upload of {}", e.what(), name_);
        backoff_sleep(store_.options().retry.delay(resumes + 1));
        store_.retrying(name_, [&](const std::shared_ptr<SftpClient>& c) { resume(c); });
      }
    }
  }

  void resume(const std::shared_ptr<SftpClient>& c) {
    client_ = c;
    try {
      handle_ = open_handle(*c, temp_, SSH_FXF_WRITE, what());
    } catch (const ConnectionLost&) {
      throw;
    } catch (const Error& e) {
      if (e.category() == ErrorCategory::not_found) {
        fail(ErrorCategory::io, "{}: the temporary object {} vanished while the connection was down", what(), temp_);
      }
      throw;
    }
    // Everything before the oldest unacknowledged WRITE was acknowledged: it must be
    // there (a server that rebooted may have lost it, and then nothing can resume).
    const uint64_t acknowledged = in_flight_.empty() ? written_ : in_flight_.front().offset;
    const uint32_t id = c->next_id();
    const Reply reply = c->send(id, Request(SSH_FXP_FSTAT, id).string(handle_).finish()).get();
    if (reply.type == SSH_FXP_STATUS) sftp::check_status(reply, what());
    const sftp::Attrs attrs = sftp::parse_attrs(reply);
    if (attrs.size && *attrs.size < acknowledged) {
      fail(ErrorCategory::io, "{}: the server lost acknowledged data of {} ({} of {} bytes)", what(), temp_, *attrs.size,
           acknowledged);
    }
    for (InFlight& piece : in_flight_) send_write(piece);
  }

  void rename_into_place() {
    SftpClient& c = *client_;
    const bool replace = mode_ == WriteMode::replace;
    if (replace && c.has_extension("posix-rename@openssh.com")) {
      const Reply reply = send_extended(c, "posix-rename@openssh.com", temp_, &final_).get();
      if (status_code(reply) != SSH_FX_OK && !renamed_already(reply)) sftp::check_status(reply, what());
      return;
    }
    if (replace) {
      // Without posix-rename a replacement is remove + rename: not atomic (docs).
      const Reply removed = send_path(c, SSH_FXP_REMOVE, final_).get();
      if (status_code(removed) != SSH_FX_NO_SUCH_FILE) sftp::check_status(removed, what());
    }
    const uint32_t id = c.next_id();
    const Reply reply = c.send(id, Request(SSH_FXP_RENAME, id).string(temp_).string(final_).finish()).get();
    if (status_code(reply) == SSH_FX_OK || renamed_already(reply)) return;
    // The protocol's RENAME refuses an existing target: that is the create-mode check.
    if (!replace && stat_path(c, final_, what())) {
      send_path(c, SSH_FXP_REMOVE, temp_).wait_for(std::chrono::seconds(5));
      committed_ = true;  // nothing left to clean up
      fail(ErrorCategory::exists, "{} exists already", what());
    }
    sftp::check_status(reply, what());
  }

  // A rename repeated after a dropped connection may find its work done: the
  // temporary object gone and the final one of our size.
  bool renamed_already(const Reply& reply) {
    if (status_code(reply) != SSH_FX_NO_SUCH_FILE) return false;
    const std::optional<sftp::Attrs> attrs = stat_path(*client_, final_, what());
    return attrs && attrs->size == written_ && !stat_path(*client_, temp_, what());
  }

  SftpStore& store_;
  std::string name_;
  WriteMode mode_;
  std::string final_;
  std::string temp_;
  std::shared_ptr<SftpClient> client_;
  std::string handle_;
  std::deque<InFlight> in_flight_;
  uint64_t written_ = 0;
  bool committed_ = false;
};

}  // namespace

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
  // Without posix-rename a replacement is remove + rename; a client is needed to know.
  auto* self = const_cast<SftpStore*>(this);
  bool posix_rename = false;
  self->retrying("capabilities", [&](const std::shared_ptr<SftpClient>& c) {
    posix_rename = c->has_extension("posix-rename@openssh.com");
  });
  caps.atomic_rename = posix_rename;
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
  SftpReader reader(*this, std::string(name));
  std::vector<uint8_t> out(reader.size());
  reader.read(0, out);
  return out;
}

std::vector<uint8_t> SftpStore::read_range(std::string_view name, uint64_t offset, uint64_t length) {
  SftpReader reader(*this, std::string(name));
  std::vector<uint8_t> out(length);
  reader.read(offset, out);
  return out;
}

std::unique_ptr<ObjectReader> SftpStore::open(std::string_view name) {
  return std::make_unique<SftpReader>(*this, std::string(name));
}

void SftpStore::write(std::string_view name, std::span<const uint8_t> data, WriteMode mode) {
  SftpWriter writer(*this, std::string(name), mode);
  writer.append(data);
  writer.commit();
}

std::unique_ptr<ObjectWriter> SftpStore::create(std::string_view name, WriteMode mode) {
  return std::make_unique<SftpWriter>(*this, std::string(name), mode);
}

void SftpStore::remove(std::string_view name) {
  const std::string path = remote_path(name);
  retrying(name, [&](const std::shared_ptr<SftpClient>& c) {
    const Reply reply = send_path(*c, SSH_FXP_REMOVE, path).get();
    if (status_code(reply) != SSH_FX_NO_SUCH_FILE) sftp::check_status(reply, location_ + ": " + std::string(name));
  });
}

}  // namespace arche::backup
