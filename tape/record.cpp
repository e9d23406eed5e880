#include "tape/record.h"

#include <cstring>

#include <fmt/format.h>

#include "backup/crypto.h"
#include "core/bytes.h"
#include "core/crc32c.h"
#include "core/endian.h"
#include "core/error.h"
#include "core/hex.h"

namespace arche::tape {

namespace {
constexpr char kRecordMagic[] = "ARCHTREC";
constexpr char kFileMagic[] = "ARCHTFIL";
constexpr char kEntryMagic[] = "ARCHTOBJ";
}  // namespace

Uuid random_uuid() {
  Uuid u;
  backup::random_fill(u);
  u[6] = (u[6] & 0x0f) | 0x40;  // RFC 4122 version 4
  u[8] = (u[8] & 0x3f) | 0x80;
  return u;
}

std::string uuid_text(const Uuid& u) {
  const std::string h = to_hex(u);
  return fmt::format("{}-{}-{}-{}-{}", h.substr(0, 8), h.substr(8, 4), h.substr(12, 4), h.substr(16, 4), h.substr(20));
}

Uuid parse_uuid(const std::string& text, const std::string& what) {
  std::string digits;
  for (char c : text)
    if (c != '-') digits += c;
  Uuid u;
  if (digits.size() != 32 || !from_hex(digits, u)) fail(ErrorCategory::format, "{}: not a uuid: '{}'", what, text);
  return u;
}

bool is_nil(const Uuid& u) { return all_zero(u); }

void seal_record_header(std::span<uint8_t> record, const RecordHeader& h) {
  uint8_t* p = record.data();
  std::memcpy(p, kRecordMagic, 8);
  store_le16(p + 8, kFormatMajor);
  store_le16(p + 10, kFormatMinor);
  store_le32(p + 12, h.record_size);
  store_le32(p + 16, h.payload_length);
  store_le32(p + 20, h.flags);
  std::memcpy(p + 24, h.media_set.data(), 16);
  store_le32(p + 40, h.tape_sequence);
  store_le32(p + 44, h.file_number);
  store_le64(p + 48, h.record_number);
  store_le32(p + 56, h.first_entry);
  uint32_t crc = crc32c(p, 60);
  crc = crc32c(crc, p + kRecordHeaderSize, h.payload_length);
  store_le32(p + 60, crc);
}

std::optional<std::string> check_record(std::span<const uint8_t> record, RecordHeader& h) {
  if (record.size() < kRecordHeaderSize)
    return fmt::format("a block of {} bytes is too short for a record", record.size());
  const uint8_t* p = record.data();
  if (std::memcmp(p, kRecordMagic, 8) != 0) return std::string("not an arche tape record (bad magic)");
  const uint16_t major = load_le16(p + 8);
  if (major != kFormatMajor)
    return fmt::format("record format {} is not supported (this arche reads {})", major, kFormatMajor);
  h.record_size = load_le32(p + 12);
  h.payload_length = load_le32(p + 16);
  h.flags = load_le32(p + 20);
  std::memcpy(h.media_set.data(), p + 24, 16);
  h.tape_sequence = load_le32(p + 40);
  h.file_number = load_le32(p + 44);
  h.record_number = load_le64(p + 48);
  h.first_entry = load_le32(p + 56);
  if (h.record_size != record.size())
    return fmt::format("record says {} bytes but the block has {}", h.record_size, record.size());
  if (h.payload_length > record.size() - kRecordHeaderSize) return std::string("payload length beyond the record");
  if (h.first_entry != kNoEntry && h.first_entry >= h.payload_length)
    return std::string("entry offset beyond the payload");
  uint32_t crc = crc32c(p, 60);
  crc = crc32c(crc, p + kRecordHeaderSize, h.payload_length);
  if (crc != load_le32(p + 60)) return std::string("CRC32C mismatch (damaged record)");
  return std::nullopt;
}

const char* to_string(ContentType t) {
  switch (t) {
    case ContentType::media_label: return "media-label";
    case ContentType::chunk_archive: return "chunk-archive";
    case ContentType::snapshot_archive: return "snapshot-archive";
    case ContentType::catalog_archive: return "catalog-archive";
  }
  return "unknown";
}

std::vector<uint8_t> encode_file_header(const FileHeader& h) {
  ByteWriter w;
  w.string(kFileMagic);
  w.le16(kFormatMajor);
  w.le16(kFormatMinor);
  w.le16(static_cast<uint16_t>(h.type));
  w.le16(0);
  w.le32(h.part);
  w.bytes(h.archive);
  const std::string meta = h.metadata.dump();
  w.le32(static_cast<uint32_t>(meta.size()));
  w.string(meta);
  std::vector<uint8_t> out = w.take();
  ByteWriter crc;
  crc.le32(crc32c(out.data(), out.size()));
  std::vector<uint8_t> c = crc.take();
  out.insert(out.end(), c.begin(), c.end());
  return out;
}

FileHeader decode_file_header(std::span<const uint8_t> data, size_t& length, const std::string& what) {
  ByteReader r(data, what);
  if (r.string(8) != kFileMagic) fail(ErrorCategory::corrupt, "{}: no tape file header (bad magic)", what);
  const uint16_t major = r.le16();
  r.le16();
  if (major != kFormatMajor) fail(ErrorCategory::unsupported, "{}: tape file format {} is not supported", what, major);
  FileHeader h;
  const uint16_t type = r.le16();
  if (type < 1 || type > 4) fail(ErrorCategory::unsupported, "{}: unknown content type {}", what, type);
  h.type = static_cast<ContentType>(type);
  r.le16();
  h.part = r.le32();
  auto a = r.bytes(16);
  std::memcpy(h.archive.data(), a.data(), 16);
  const uint32_t meta_len = r.le32();
  if (meta_len > (1u << 20)) fail(ErrorCategory::corrupt, "{}: metadata of {} bytes is too large", what, meta_len);
  const std::string meta = r.string(meta_len);
  const size_t body = r.position();
  if (r.le32() != crc32c(data.data(), body)) fail(ErrorCategory::corrupt, "{}: file header CRC32C mismatch", what);
  try {
    h.metadata = Json::parse(meta);
  } catch (const std::exception&) {
    fail(ErrorCategory::corrupt, "{}: file header metadata is not JSON", what);
  }
  length = r.position();
  return h;
}

std::vector<uint8_t> encode_entry_header(const EntryHeader& e) {
  ByteWriter w;
  w.string(kEntryMagic);
  w.le16(static_cast<uint16_t>(e.name.size()));
  w.le64(e.size);
  w.string(e.name);
  w.le32(e.data_crc);
  std::vector<uint8_t> out = w.take();
  ByteWriter crc;
  crc.le32(crc32c(out.data(), out.size()));
  std::vector<uint8_t> c = crc.take();
  out.insert(out.end(), c.begin(), c.end());
  return out;
}

size_t decode_entry_header(std::span<const uint8_t> data, EntryHeader& e, const std::string& what) {
  if (data.size() < 18) return 0;
  if (std::memcmp(data.data(), kEntryMagic, 8) != 0)
    fail(ErrorCategory::corrupt, "{}: no object entry here (bad magic)", what);
  const uint16_t name_len = load_le16(data.data() + 8);
  if (name_len == 0 || name_len > kMaxObjectName)
    fail(ErrorCategory::corrupt, "{}: object name of {} bytes", what, name_len);
  const size_t total = kEntryFixedSize + name_len;
  if (data.size() < total) return 0;
  const size_t body = total - 4;
  if (load_le32(data.data() + body) != crc32c(data.data(), body))
    fail(ErrorCategory::corrupt, "{}: object entry CRC32C mismatch", what);
  e.size = load_le64(data.data() + 10);
  if (e.size > kMaxObjectSize) fail(ErrorCategory::corrupt, "{}: object of {} bytes is too large", what, e.size);
  e.name.assign(reinterpret_cast<const char*>(data.data() + 18), name_len);
  e.data_crc = load_le32(data.data() + 18 + name_len);
  return total;
}

}  // namespace arche::tape
