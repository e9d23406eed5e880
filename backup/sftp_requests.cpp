#include "backup/sftp_requests.h"

#include <libssh/sftp.h>

#include <algorithm>
#include <deque>

namespace arche::backup::sftp {

std::string parent_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return "";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string base_of(std::string_view path) {
  const size_t slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

std::future<Reply> send_path(SftpClient& c, uint8_t type, const std::string& path) {
  const uint32_t id = c.next_id();
  return c.send(id, Request(type, id).string(path).finish());
}

std::future<Reply> send_handle(SftpClient& c, uint8_t type, const std::string& handle) {
  const uint32_t id = c.next_id();
  return c.send(id, Request(type, id).string(handle).finish());
}

std::future<Reply> send_extended(SftpClient& c, const char* name, const std::string& a, const std::string* b) {
  const uint32_t id = c.next_id();
  Request r(SSH_FXP_EXTENDED, id);
  r.string(name).string(a);
  if (b) r.string(*b);
  return c.send(id, r.finish());
}

uint32_t status_code(const Reply& reply) {
  return reply.type == SSH_FXP_STATUS ? parse_status(reply).code : SSH_FX_OK;
}

std::string open_handle(SftpClient& c, const std::string& path, uint32_t flags, const std::string& what) {
  const uint32_t id = c.next_id();
  const Reply reply = c.send(id, Request(SSH_FXP_OPEN, id).string(path).u32(flags).attrs(kFileMode).finish()).get();
  if (reply.type == SSH_FXP_STATUS) check_status(reply, what);
  return parse_handle(reply);
}

std::optional<Attrs> stat_path(SftpClient& c, const std::string& path, const std::string& what) {
  const Reply reply = send_path(c, SSH_FXP_STAT, path).get();
  if (reply.type == SSH_FXP_STATUS) {
    if (status_code(reply) == SSH_FX_NO_SUCH_FILE) return std::nullopt;
    check_status(reply, what);
  }
  return parse_attrs(reply);
}

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
      check_status(reply, what);
      fail(ErrorCategory::format, "{}: READ answered with a success status", what);
    }
    const std::span<const uint8_t> data = parse_data(reply);
    if (data.empty() || data.size() > piece.length) fail(ErrorCategory::format, "{}: READ answered with {} bytes", what, data.size());
    std::copy(data.begin(), data.end(), out.begin() + static_cast<ptrdiff_t>(piece.at));
    if (data.size() < piece.length) issue(piece.at + data.size(), piece.length - data.size());
  }
}

void close_handle(SftpClient& c, const std::string& handle, const std::string& what) {
  check_status(send_handle(c, SSH_FXP_CLOSE, handle).get(), what);
}

void close_quietly(const std::shared_ptr<SftpClient>& c, const std::string& handle) {
  if (!c || handle.empty() || !c->alive()) return;
  try {
    send_handle(*c, SSH_FXP_CLOSE, handle);
  } catch (...) {
  }
}

}  // namespace arche::backup::sftp
