#include "backup/sftp_objects.h"

#include <libssh/sftp.h>

#include <algorithm>
#include <functional>

#include "backup/crypto.h"
#include "backup/remote_retry.h"
#include "backup/sftp_requests.h"
#include "backup/store_sftp.h"
#include "core/hex.h"
#include "core/log.h"

namespace arche::backup::sftp {
namespace {

std::string random_hex(size_t bytes) {
  std::vector<uint8_t> random(bytes);
  random_fill(random);
  return to_hex(random);
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
    if (reply.type == SSH_FXP_STATUS) check_status(reply, what());
    const Attrs attrs = parse_attrs(reply);
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
      with_resume([&] { check_status(send_extended(*client_, "fsync@openssh.com", handle_).get(), what()); });
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
        check_status(reply, what());
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
    if (reply.type == SSH_FXP_STATUS) check_status(reply, what());
    const Attrs attrs = parse_attrs(reply);
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
      if (status_code(reply) != SSH_FX_OK && !renamed_already(reply)) check_status(reply, what());
      return;
    }
    if (replace) {
      // Without posix-rename a replacement is remove + rename: not atomic (docs).
      const Reply removed = send_path(c, SSH_FXP_REMOVE, final_).get();
      if (status_code(removed) != SSH_FX_NO_SUCH_FILE) check_status(removed, what());
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
    check_status(reply, what());
  }

  // A rename repeated after a dropped connection may find its work done: the
  // temporary object gone and the final one of our size.
  bool renamed_already(const Reply& reply) {
    if (status_code(reply) != SSH_FX_NO_SUCH_FILE) return false;
    const std::optional<Attrs> attrs = stat_path(*client_, final_, what());
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

std::unique_ptr<ObjectReader> open_reader(SftpStore& store, std::string name) {
  return std::make_unique<SftpReader>(store, std::move(name));
}

std::unique_ptr<ObjectWriter> open_writer(SftpStore& store, std::string name, WriteMode mode) {
  return std::make_unique<SftpWriter>(store, std::move(name), mode);
}

}  // namespace arche::backup::sftp
