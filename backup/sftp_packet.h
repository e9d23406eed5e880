// SFTP version 3 packets (draft-ietf-secsh-filexfer-02, the version OpenSSH speaks),
// encoded and decoded here; SftpClient moves them over an SSH channel. Everything
// decoded comes from the server: every field is bounds-checked (core/bytes.h), so a
// hostile or broken server gives one format error, never a crash (fuzzed by
// tests/fuzz/sftp_fuzz.cpp).
//
//   packet   = length (u32, of what follows) | type (u8) | [request id (u32)] | body
//   string   = length (u32) | bytes
//   attrs    = flags (u32) | [size (u64)] | [uid, gid (u32 each)] | [permissions (u32)]
//              | [atime, mtime (u32 each)] | [count (u32) | count x (string, string)]
//
// The type and flag constants are libssh's (<libssh/sftp.h>), which are the draft's.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/bytes.h"

namespace arche::backup::sftp {

// Longest packet accepted from the server: OpenSSH's own limit (256 KiB) plus room
// for a header. A length field above it is a broken or hostile server.
constexpr uint32_t kMaxPacket = 256 * 1024 + 1024;
// Data per READ/WRITE when the server does not say (limits@openssh.com): 32 KiB is
// what every server must accept.
constexpr uint32_t kDefaultTransfer = 32 * 1024;

// A request being built: type, id, then the fields; finish() fills the length.
class Request {
 public:
  Request(uint8_t type, uint32_t id);
  static Request init(uint32_t version);  // SSH_FXP_INIT has no id
  Request& u32(uint32_t v);
  Request& u64(uint64_t v);
  Request& string(std::string_view s);
  Request& bytes(std::span<const uint8_t> data);  // as an SFTP string
  // attrs with only the permission bits (new files) or nothing.
  Request& attrs(std::optional<uint32_t> permissions = std::nullopt);
  std::vector<uint8_t> finish();  // once: the request is empty afterwards

 private:
  Request() = default;
  ByteWriter w_;
};

// One reply as it arrived: type, id (0 for VERSION) and the rest.
struct Reply {
  uint8_t type = 0;
  uint32_t id = 0;
  std::vector<uint8_t> body;  // after the id
};

// Takes complete packets off the front of a stream of bytes; the rest waits for more.
// Throws a format error on a length outside [5, kMaxPacket].
class ReplyParser {
 public:
  void feed(std::span<const uint8_t> data);
  std::optional<Reply> next();

 private:
  std::vector<uint8_t> buffer_;
  size_t start_ = 0;
};

struct Status {
  uint32_t code = 0;  // SSH_FX_*
  std::string message;
};

struct Attrs {
  std::optional<uint64_t> size;
  std::optional<uint32_t> permissions;  // st_mode bits, file type included
  std::optional<uint32_t> mtime;
  bool is_directory() const;
  bool is_regular() const;
};

struct NameEntry {
  std::string name;
  Attrs attrs;
};

struct Version {
  uint32_t version = 0;
  std::map<std::string, std::string> extensions;  // "posix-rename@openssh.com" -> "1"
};

struct Limits {  // limits@openssh.com
  uint64_t max_packet = 0, max_read = 0, max_write = 0, max_open_handles = 0;
};

struct StatVfs {  // statvfs@openssh.com (fields we use)
  uint64_t block_size = 0, fragment_size = 0, blocks = 0, free_blocks = 0, available_blocks = 0;
};

// Each parses the body of one reply type; a reply of another type is a format error.
Status parse_status(const Reply& reply);
std::string parse_handle(const Reply& reply);
std::span<const uint8_t> parse_data(const Reply& reply);
std::vector<NameEntry> parse_names(const Reply& reply);
Attrs parse_attrs(const Reply& reply);
Version parse_version(const Reply& reply);
Limits parse_limits(const Reply& reply);
StatVfs parse_statvfs(const Reply& reply);

// "No such file" for SSH_FX_NO_SUCH_FILE, ...: the draft's names of status codes.
const char* status_name(uint32_t code);

}  // namespace arche::backup::sftp
