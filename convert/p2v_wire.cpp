#include "convert/p2v_wire.h"

#include "core/bytes.h"
#include "core/error.h"

namespace arche::convert::wire {

namespace {

constexpr size_t kMaxReason = 1024;

[[noreturn]] void bad(const std::string& what) { fail(ErrorCategory::corrupt, "p2v message: {}", what); }

}  // namespace

bool valid_disk_name(const std::string& name) {
  if (name.empty() || name.size() > kMaxName || name[0] == '.') return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
          c == '-'))
      return false;
  return true;
}

std::vector<uint8_t> encode(const Message& m) {
  ByteWriter w;
  w.u8(static_cast<uint8_t>(m.type));
  switch (m.type) {
    case Type::disk:
      w.le32(m.index);
      w.u8(static_cast<uint8_t>(m.name.size()));
      w.string(m.name);
      w.le64(m.size);
      w.le64(m.selected);
      w.bytes(m.digest);
      break;
    case Type::resume:
      w.le64(m.position);
      w.u8(m.complete);
      break;
    case Type::data:
      return encode_data(m.position, m.data);
    case Type::mark:
    case Type::stored:
      w.le64(m.position);
      break;
    case Type::refuse:
      w.u8(m.category);
      w.le16(static_cast<uint16_t>(std::min(m.reason.size(), kMaxReason)));
      w.string(std::string_view(m.reason).substr(0, kMaxReason));
      break;
    case Type::end:
    case Type::bye:
    case Type::bye_ack:
      break;
  }
  return w.take();
}

std::vector<uint8_t> encode_data(uint64_t offset, std::span<const uint8_t> data) {
  if (data.empty() || data.size() > kMaxData) fail(ErrorCategory::internal, "p2v data message of {} bytes", data.size());
  ByteWriter w;
  w.buffer().reserve(9 + data.size());
  w.u8(static_cast<uint8_t>(Type::data));
  w.le64(offset);
  w.bytes(data);
  return w.take();
}

Message decode(std::span<const uint8_t> bytes) {
  if (bytes.empty()) bad("empty");
  if (bytes.size() > kMaxMessage) bad(fmt::format("{} bytes", bytes.size()));
  ByteReader r(bytes, "p2v message");
  Message m;
  const uint8_t type = r.u8();
  try {
    switch (type) {
      case static_cast<uint8_t>(Type::disk): {
        m.index = r.le32();
        m.name = r.string(r.u8());
        if (!valid_disk_name(m.name)) bad("a disk name that is not a plain file name");
        m.size = r.le64();
        m.selected = r.le64();
        if (m.selected > m.size) bad("more bytes selected than the disk holds");
        std::span<const uint8_t> d = r.bytes(kDigestSize);
        std::copy(d.begin(), d.end(), m.digest.begin());
        break;
      }
      case static_cast<uint8_t>(Type::resume): {
        m.position = r.le64();
        const uint8_t c = r.u8();
        if (c > 1) bad("resume flag");
        m.complete = c == 1;
        break;
      }
      case static_cast<uint8_t>(Type::data): {
        m.position = r.le64();
        if (r.remaining() == 0) bad("data without bytes");
        std::span<const uint8_t> d = r.bytes(r.remaining());
        if (m.position > UINT64_MAX - d.size()) bad("data beyond 2^64");
        m.data.assign(d.begin(), d.end());
        break;
      }
      case static_cast<uint8_t>(Type::mark):
      case static_cast<uint8_t>(Type::stored):
        m.position = r.le64();
        break;
      case static_cast<uint8_t>(Type::refuse):
        m.category = r.u8();
        m.reason = r.string(r.le16());
        if (m.reason.size() > kMaxReason) bad("reason too long");
        break;
      case static_cast<uint8_t>(Type::end):
      case static_cast<uint8_t>(Type::bye):
      case static_cast<uint8_t>(Type::bye_ack):
        break;
      default:
        bad(fmt::format("unknown type {}", type));
    }
  } catch (const Error& e) {
    if (e.category() != ErrorCategory::format) throw;
    bad(e.what());  // truncated: the reader's message, as corrupt
  }
  if (r.remaining() != 0) bad(fmt::format("{} bytes after a type {} message", r.remaining(), type));
  m.type = static_cast<Type>(type);
  return m;
}

}  // namespace arche::convert::wire
