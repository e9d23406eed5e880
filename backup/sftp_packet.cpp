#include "backup/sftp_packet.h"

#include <libssh/sftp.h>
#include <sys/stat.h>

#include "core/endian.h"
#include "core/error.h"

namespace arche::backup::sftp {
namespace {

std::string read_string(ByteReader& r) {
  const uint32_t length = r.be32();
  return r.string(length);  // bounds-checked against what is left
}

Attrs read_attrs(ByteReader& r) {
  Attrs a;
  const uint32_t flags = r.be32();
  if (flags & SSH_FILEXFER_ATTR_SIZE) a.size = r.be64();
  if (flags & SSH_FILEXFER_ATTR_UIDGID) r.skip(8);
  if (flags & SSH_FILEXFER_ATTR_PERMISSIONS) a.permissions = r.be32();
  if (flags & SSH_FILEXFER_ATTR_ACMODTIME) {
    r.skip(4);
    a.mtime = r.be32();
  }
  if (flags & SSH_FILEXFER_ATTR_EXTENDED) {
    const uint32_t count = r.be32();
    for (uint32_t i = 0; i < count; ++i) {
      read_string(r);
      read_string(r);
    }
  }
  return a;
}

void expect(const Reply& reply, uint8_t type, const char* what) {
  if (reply.type == SSH_FXP_STATUS && type != SSH_FXP_STATUS) {
    // The caller checks for STATUS first; reaching here means it did not expect one.
    fail(ErrorCategory::format, "SFTP: a status reply where {} was expected", what);
  }
  if (reply.type != type) fail(ErrorCategory::format, "SFTP: reply type {} where {} was expected", reply.type, what);
}

}  // namespace

Request::Request(uint8_t type, uint32_t id) {
  w_.be32(0);  // length, set by finish()
  w_.u8(type);
  w_.be32(id);
}

Request Request::init(uint32_t version) {
  Request r;
  r.w_.be32(0);
  r.w_.u8(SSH_FXP_INIT);
  r.w_.be32(version);
  return r;
}

Request& Request::u32(uint32_t v) {
  w_.be32(v);
  return *this;
}

Request& Request::u64(uint64_t v) {
  w_.be64(v);
  return *this;
}

Request& Request::string(std::string_view s) {
  w_.be32(static_cast<uint32_t>(s.size()));
  w_.string(s);
  return *this;
}

Request& Request::bytes(std::span<const uint8_t> data) {
  w_.be32(static_cast<uint32_t>(data.size()));
  w_.bytes(data);
  return *this;
}

Request& Request::attrs(std::optional<uint32_t> permissions) {
  if (!permissions) return u32(0);
  return u32(SSH_FILEXFER_ATTR_PERMISSIONS).u32(*permissions);
}

std::vector<uint8_t> Request::finish() {
  std::vector<uint8_t> out = w_.take();
  store_be32(out.data(), static_cast<uint32_t>(out.size() - 4));
  return out;
}

void ReplyParser::feed(std::span<const uint8_t> data) {
  if (start_ > 0 && start_ == buffer_.size()) {
    buffer_.clear();
    start_ = 0;
  } else if (start_ > (1u << 20)) {  // keep the consumed front from growing without end
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<ptrdiff_t>(start_));
    start_ = 0;
  }
  buffer_.insert(buffer_.end(), data.begin(), data.end());
}

std::optional<Reply> ReplyParser::next() {
  const size_t available = buffer_.size() - start_;
  if (available < 4) return std::nullopt;
  const uint32_t length = load_be32(buffer_.data() + start_);
  if (length < 5 || length > kMaxPacket) fail(ErrorCategory::format, "SFTP: packet length {} out of range", length);
  if (available < 4 + size_t{length}) return std::nullopt;
  ByteReader r(std::span(buffer_.data() + start_ + 4, length), "SFTP packet");
  Reply reply;
  reply.type = r.u8();
  // VERSION carries the version where other replies carry the request id.
  reply.id = r.be32();
  const std::span<const uint8_t> rest = r.bytes(r.remaining());
  reply.body.assign(rest.begin(), rest.end());
  start_ += 4 + size_t{length};
  return reply;
}

bool Attrs::is_directory() const { return permissions && S_ISDIR(*permissions); }
bool Attrs::is_regular() const { return permissions && S_ISREG(*permissions); }

Status parse_status(const Reply& reply) {
  expect(reply, SSH_FXP_STATUS, "a status");
  ByteReader r(reply.body, "SFTP status");
  Status s;
  s.code = r.be32();
  // Some servers stop after the code; the message and language are optional then.
  if (r.remaining() >= 4) s.message = read_string(r).substr(0, 200);
  return s;
}

std::string parse_handle(const Reply& reply) {
  expect(reply, SSH_FXP_HANDLE, "a handle");
  ByteReader r(reply.body, "SFTP handle");
  std::string handle = read_string(r);
  if (handle.empty() || handle.size() > 256) fail(ErrorCategory::format, "SFTP: handle of {} bytes", handle.size());
  return handle;
}

std::span<const uint8_t> parse_data(const Reply& reply) {
  expect(reply, SSH_FXP_DATA, "data");
  ByteReader r(reply.body, "SFTP data");
  const uint32_t length = r.be32();
  return r.bytes(length);
}

std::vector<NameEntry> parse_names(const Reply& reply) {
  expect(reply, SSH_FXP_NAME, "names");
  ByteReader r(reply.body, "SFTP names");
  const uint32_t count = r.be32();
  std::vector<NameEntry> out;
  for (uint32_t i = 0; i < count; ++i) {
    NameEntry e;
    e.name = read_string(r);
    read_string(r);  // the "ls -l" line, for people
    e.attrs = read_attrs(r);
    out.push_back(std::move(e));
  }
  return out;
}

Attrs parse_attrs(const Reply& reply) {
  expect(reply, SSH_FXP_ATTRS, "attributes");
  ByteReader r(reply.body, "SFTP attributes");
  return read_attrs(r);
}

Version parse_version(const Reply& reply) {
  expect(reply, SSH_FXP_VERSION, "the version");
  Version v;
  v.version = reply.id;
  ByteReader r(reply.body, "SFTP version");
  while (r.remaining() > 0 && v.extensions.size() < 64) {
    std::string name = read_string(r);
    v.extensions[std::move(name)] = read_string(r);
  }
  return v;
}

Limits parse_limits(const Reply& reply) {
  expect(reply, SSH_FXP_EXTENDED_REPLY, "limits");
  ByteReader r(reply.body, "SFTP limits");
  Limits l;
  l.max_packet = r.be64();
  l.max_read = r.be64();
  l.max_write = r.be64();
  l.max_open_handles = r.be64();
  return l;
}

StatVfs parse_statvfs(const Reply& reply) {
  expect(reply, SSH_FXP_EXTENDED_REPLY, "statvfs");
  ByteReader r(reply.body, "SFTP statvfs");
  StatVfs s;
  s.block_size = r.be64();
  s.fragment_size = r.be64();
  s.blocks = r.be64();
  s.free_blocks = r.be64();
  s.available_blocks = r.be64();
  return s;  // files, free files, fsid, flags and name length follow; unused
}

const char* status_name(uint32_t code) {
  switch (code) {
    case SSH_FX_OK: return "ok";
    case SSH_FX_EOF: return "end of file";
    case SSH_FX_NO_SUCH_FILE: return "no such file";
    case SSH_FX_PERMISSION_DENIED: return "permission denied";
    case SSH_FX_FAILURE: return "failure";
    case SSH_FX_BAD_MESSAGE: return "bad message";
    case SSH_FX_NO_CONNECTION: return "no connection";
    case SSH_FX_CONNECTION_LOST: return "connection lost";
    case SSH_FX_OP_UNSUPPORTED: return "operation unsupported";
    default: return "unknown status";
  }
}

}  // namespace arche::backup::sftp
