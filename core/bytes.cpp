#include "core/bytes.h"

#include <cstring>

#include "core/crc32c.h"

namespace arche {

namespace {
constexpr size_t kMagicSize = 8;
constexpr size_t kPrefixSize = kMagicSize + 2 + 2 + 4;
}  // namespace

std::vector<uint8_t> seal_record(std::string_view magic8, RecordVersion version, std::span<const uint8_t> payload) {
  if (magic8.size() != kMagicSize) fail(ErrorCategory::internal, "record magic must be 8 bytes");
  ByteWriter w;
  w.string(magic8);
  w.le16(version.major);
  w.le16(version.minor);
  w.le32(static_cast<uint32_t>(payload.size()));
  w.bytes(payload);
  w.le32(crc32c(w.buffer().data(), w.size()));
  return w.take();
}

OpenedRecord open_record(std::span<const uint8_t> data, std::string_view magic8, uint16_t max_major,
                         const std::string& what) {
  if (data.size() < kPrefixSize + 4 || std::memcmp(data.data(), magic8.data(), kMagicSize) != 0)
    fail(ErrorCategory::format, "{}: not an arche record of this kind (bad magic)", what);
  ByteReader r(data, what);
  r.skip(kMagicSize);
  RecordVersion v{r.le16(), r.le16()};
  uint32_t length = r.le32();
  if (length > data.size() - kPrefixSize - 4)
    fail(ErrorCategory::corrupt, "{}: record length {} exceeds the {} bytes present", what, length, data.size());
  uint32_t stored = load_le32(data.data() + kPrefixSize + length);
  if (stored != crc32c(data.data(), kPrefixSize + length))
    fail(ErrorCategory::corrupt, "{}: checksum mismatch", what);
  if (v.major > max_major)
    fail(ErrorCategory::unsupported, "{}: format version {}.{} is newer than this arche understands ({}.x)", what,
         v.major, v.minor, max_major);
  return {v, data.subspan(kPrefixSize, length)};
}

}  // namespace arche
