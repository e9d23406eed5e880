#include "volume/sandbox_protocol.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "core/crc32c.h"
#include "core/error.h"

namespace arche::volume::sandbox {

namespace {

void write_all(int fd, const uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) throw_errno(w < 0 ? errno : EPIPE, "volume sandbox: send");
    p += w;
    n -= static_cast<size_t>(w);
  }
}

void read_all(int fd, uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t r = ::recv(fd, p, n, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) fail(ErrorCategory::io, "volume sandbox: the other side closed the connection");
    if (r < 0) throw_errno(errno, "volume sandbox: receive");
    p += r;
    n -= static_cast<size_t>(r);
  }
}

}  // namespace

void send_message(int fd, uint16_t type, std::span<const uint8_t> payload) {
  if (payload.size() > kMaxPayload) fail(ErrorCategory::internal, "volume sandbox: message of {} bytes", payload.size());
  uint8_t header[kHeaderSize];
  std::memcpy(header, kMagic, 4);
  store_le16(header + 4, kVersion);
  store_le16(header + 6, type);
  store_le32(header + 8, static_cast<uint32_t>(payload.size()));
  uint32_t crc = crc32c(header, sizeof header);
  crc = crc32c(crc, payload.data(), payload.size());
  uint8_t trailer[kTrailerSize];
  store_le32(trailer, crc);
  write_all(fd, header, sizeof header);
  write_all(fd, payload.data(), payload.size());
  write_all(fd, trailer, sizeof trailer);
}

namespace {

// Reads and checks a header; returns the message's type and payload length.
std::pair<uint16_t, uint32_t> receive_header(int fd, uint8_t (&header)[kHeaderSize]) {
  read_all(fd, header, sizeof header);
  if (std::memcmp(header, kMagic, 4) != 0) fail(ErrorCategory::corrupt, "volume sandbox: a message without magic");
  if (load_le16(header + 4) != kVersion)
    fail(ErrorCategory::corrupt, "volume sandbox: protocol version {} (expected {})", load_le16(header + 4), kVersion);
  const uint32_t length = load_le32(header + 8);
  if (length > kMaxPayload) fail(ErrorCategory::corrupt, "volume sandbox: a message of {} bytes", length);
  return {load_le16(header + 6), length};
}

// Reads the payload into `payload` and the trailer, and checks the CRC.
void receive_payload(int fd, const uint8_t (&header)[kHeaderSize], std::span<uint8_t> payload) {
  read_all(fd, payload.data(), payload.size());
  uint8_t trailer[kTrailerSize];
  read_all(fd, trailer, sizeof trailer);
  uint32_t crc = crc32c(header, sizeof header);
  crc = crc32c(crc, payload.data(), payload.size());
  if (crc != load_le32(trailer)) fail(ErrorCategory::corrupt, "volume sandbox: a message fails its CRC32C");
}

}  // namespace

Message receive_message(int fd) {
  uint8_t header[kHeaderSize];
  const auto [type, length] = receive_header(fd, header);
  Message m;
  m.type = type;
  m.payload.resize(length);
  receive_payload(fd, header, m.payload);
  return m;
}

bool receive_message_into(int fd, uint16_t type, std::span<uint8_t> into, Message& other) {
  uint8_t header[kHeaderSize];
  const auto [got_type, length] = receive_header(fd, header);
  if (got_type == type && length == into.size()) {
    receive_payload(fd, header, into);
    return true;
  }
  other.type = got_type;
  other.payload.resize(length);
  receive_payload(fd, header, other.payload);
  return false;
}

void put_string(ByteWriter& w, std::string_view s) {
  w.le32(static_cast<uint32_t>(s.size()));
  w.string(s);
}

std::string get_string(ByteReader& r) { return r.string(r.le32()); }

void put_strings(ByteWriter& w, const std::vector<std::string>& items) {
  w.le32(static_cast<uint32_t>(items.size()));
  for (const std::string& s : items) put_string(w, s);
}

std::vector<std::string> get_strings(ByteReader& r) {
  const uint32_t n = r.le32();
  if (n > r.remaining() / 4) fail(ErrorCategory::corrupt, "volume sandbox: {} strings in {} bytes", n, r.remaining());
  std::vector<std::string> out;
  out.reserve(n);
  for (uint32_t i = 0; i < n; ++i) out.push_back(get_string(r));
  return out;
}

void put_stat(ByteWriter& w, const FileStat& st) {
  w.u8(static_cast<uint8_t>(st.type));
  w.le64(st.size);
  w.le32(st.mode);
  w.le32(st.uid);
  w.le32(st.gid);
  w.le32(st.nlink);
  w.le64(st.inode);
  w.le64(static_cast<uint64_t>(st.atime_ns));
  w.le64(static_cast<uint64_t>(st.mtime_ns));
  w.le64(static_cast<uint64_t>(st.ctime_ns));
  w.u8(st.btime_ns.has_value());
  w.le64(static_cast<uint64_t>(st.btime_ns.value_or(0)));
}

FileStat get_stat(ByteReader& r) {
  FileStat st;
  const uint8_t type = r.u8();
  st.type = type <= static_cast<uint8_t>(FileType::unknown) ? static_cast<FileType>(type) : FileType::unknown;
  st.size = r.le64();
  st.mode = r.le32() & 07777;
  st.uid = r.le32();
  st.gid = r.le32();
  st.nlink = r.le32();
  st.inode = r.le64();
  st.atime_ns = static_cast<int64_t>(r.le64());
  st.mtime_ns = static_cast<int64_t>(r.le64());
  st.ctime_ns = static_cast<int64_t>(r.le64());
  const bool has_btime = r.u8() != 0;
  const int64_t btime = static_cast<int64_t>(r.le64());
  if (has_btime) st.btime_ns = btime;
  return st;
}

void put_volume(ByteWriter& w, const VolumeInfo& v) {
  w.u8(static_cast<uint8_t>(v.kind));
  w.le32(v.disk);
  put_string(w, v.name);
  w.le64(v.offset);
  w.le64(v.size);
  for (const std::string* s : {&v.scheme, &v.type_id, &v.type_name, &v.part_name, &v.part_uuid, &v.content, &v.label,
                               &v.uuid, &v.unsupported})
    put_string(w, *s);
  put_strings(w, v.pvs);
  w.u8(v.browsable);
  put_strings(w, v.notes);
  w.le32(static_cast<uint32_t>(v.placement.size()));
  for (const Placement& p : v.placement) {
    w.le64(p.length);
    w.le64(p.stripe_size);
    w.le32(static_cast<uint32_t>(p.areas.size()));
    for (const PlacedArea& a : p.areas) {
      w.le32(a.disk);
      w.le64(a.offset);
    }
  }
  w.u8(v.lvm_assembled);
  w.le32(static_cast<uint32_t>(v.lvm_keep.size()));
  for (const ByteRange& b : v.lvm_keep) {
    w.le64(b.offset);
    w.le64(b.length);
  }
}

VolumeInfo get_volume(ByteReader& r) {
  VolumeInfo v;
  const uint8_t kind = r.u8();
  if (kind > static_cast<uint8_t>(VolumeKind::logical_volume))
    fail(ErrorCategory::corrupt, "volume sandbox: volume kind {}", kind);
  v.kind = static_cast<VolumeKind>(kind);
  v.disk = r.le32();
  v.name = get_string(r);
  v.offset = r.le64();
  v.size = r.le64();
  for (std::string* s : {&v.scheme, &v.type_id, &v.type_name, &v.part_name, &v.part_uuid, &v.content, &v.label, &v.uuid,
                         &v.unsupported})
    *s = get_string(r);
  v.pvs = get_strings(r);
  v.browsable = r.u8() != 0;
  v.notes = get_strings(r);
  // Each count is checked against what the message still holds (>= 20 bytes per
  // placement, 12 per area, 16 per range) before anything is reserved.
  const uint32_t placements = r.le32();
  if (placements > r.remaining() / 20) fail(ErrorCategory::corrupt, "volume sandbox: {} placements", placements);
  for (uint32_t i = 0; i < placements; ++i) {
    Placement p;
    p.length = r.le64();
    p.stripe_size = r.le64();
    const uint32_t areas = r.le32();
    if (areas > r.remaining() / 12) fail(ErrorCategory::corrupt, "volume sandbox: {} areas", areas);
    for (uint32_t k = 0; k < areas; ++k) {
      PlacedArea a;
      a.disk = r.le32();
      a.offset = r.le64();
      p.areas.push_back(a);
    }
    v.placement.push_back(std::move(p));
  }
  v.lvm_assembled = r.u8() != 0;
  const uint32_t reserved = r.le32();
  if (reserved > r.remaining() / 16) fail(ErrorCategory::corrupt, "volume sandbox: {} reserved ranges", reserved);
  for (uint32_t i = 0; i < reserved; ++i) {
    ByteRange b;
    b.offset = r.le64();
    b.length = r.le64();
    v.lvm_keep.push_back(b);
  }
  return v;
}

}  // namespace arche::volume::sandbox
