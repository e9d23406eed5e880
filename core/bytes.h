// Bounds-checked reading and appending of binary data. Every parser of untrusted
// input (image headers, repository files) reads through ByteReader, so a truncated
// or garbage buffer becomes one format error naming what was being read, never an
// out-of-bounds access.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/endian.h"
#include "core/error.h"

namespace arche {

// True when every byte is zero (fast: memcmp against itself, shifted by one).
inline bool all_zero(std::span<const uint8_t> data) {
  return data.empty() || (data[0] == 0 && std::memcmp(data.data(), data.data() + 1, data.size() - 1) == 0);
}

class ByteReader {
 public:
  ByteReader(std::span<const uint8_t> data, std::string what) : data_(data), what_(std::move(what)) {}

  size_t position() const { return pos_; }
  size_t remaining() const { return data_.size() - pos_; }
  void seek(size_t pos) {
    if (pos > data_.size()) truncated(pos - data_.size());
    pos_ = pos;
  }
  void skip(size_t n) { seek_checked(n); }

  uint8_t u8() { return *take(1); }
  uint16_t le16() { return load_le16(take(2)); }
  uint32_t le32() { return load_le32(take(4)); }
  uint64_t le64() { return load_le64(take(8)); }
  uint16_t be16() { return load_be16(take(2)); }
  uint32_t be32() { return load_be32(take(4)); }
  uint64_t be64() { return load_be64(take(8)); }
  std::span<const uint8_t> bytes(size_t n) { return {take(n), n}; }
  std::string string(size_t n) {
    const uint8_t* p = take(n);
    return std::string(reinterpret_cast<const char*>(p), n);
  }

 private:
  const uint8_t* take(size_t n) {
    if (n > remaining()) truncated(n - remaining());
    const uint8_t* p = data_.data() + pos_;
    pos_ += n;
    return p;
  }
  void seek_checked(size_t n) { take(n); }
  [[noreturn]] void truncated(size_t missing) const {
    fail(ErrorCategory::format, "{}: truncated ({} bytes missing at offset {})", what_, missing, pos_);
  }

  std::span<const uint8_t> data_;
  size_t pos_ = 0;
  std::string what_;
};

class ByteWriter {
 public:
  void u8(uint8_t v) { out_.push_back(v); }
  void le16(uint16_t v) { store_le16(grow(2), v); }
  void le32(uint32_t v) { store_le32(grow(4), v); }
  void le64(uint64_t v) { store_le64(grow(8), v); }
  void be16(uint16_t v) { store_be16(grow(2), v); }
  void be32(uint32_t v) { store_be32(grow(4), v); }
  void be64(uint64_t v) { store_be64(grow(8), v); }
  void bytes(std::span<const uint8_t> data) { out_.insert(out_.end(), data.begin(), data.end()); }
  void string(std::string_view s) { out_.insert(out_.end(), s.begin(), s.end()); }
  void zeros(size_t n) { out_.resize(out_.size() + n, 0); }
  void pad_to(size_t alignment) {
    if (out_.size() % alignment) zeros(alignment - out_.size() % alignment);
  }

  size_t size() const { return out_.size(); }
  std::vector<uint8_t>& buffer() { return out_; }
  std::vector<uint8_t> take() { return std::move(out_); }

 private:
  uint8_t* grow(size_t n) {
    out_.resize(out_.size() + n);
    return out_.data() + out_.size() - n;
  }
  std::vector<uint8_t> out_;
};

// The envelope of arche's own plain (unencrypted) metadata records:
//   magic (8 bytes) | major (u16 le) | minor (u16 le) | payload length (u32 le)
//   | payload | crc32c of everything before (u32 le)
// Readers refuse unknown major versions and any checksum mismatch.
struct RecordVersion {
  uint16_t major;
  uint16_t minor;
};

std::vector<uint8_t> seal_record(std::string_view magic8, RecordVersion version, std::span<const uint8_t> payload);

struct OpenedRecord {
  RecordVersion version;
  std::span<const uint8_t> payload;  // points into the input buffer
};
// `what` names the record in errors ("repository config").
OpenedRecord open_record(std::span<const uint8_t> data, std::string_view magic8, uint16_t max_major,
                         const std::string& what);

}  // namespace arche
