#include "backup/object.h"

#include <cstring>

#include "backup/codec.h"
#include "core/error.h"

namespace arche::backup {

namespace {
constexpr uint32_t kFlagCompressed = 1;
constexpr int kObjectCompressionLevel = 3;
}  // namespace

std::vector<uint8_t> seal_object(const RepoKeys& keys, std::string_view magic8, RecordVersion version,
                                 std::span<const uint8_t> payload, bool compress) {
  if (magic8.size() != 8) fail(ErrorCategory::internal, "object magic must be 8 bytes");
  std::vector<uint8_t> packed;
  if (compress) {
    packed = backup::compress(payload, kObjectCompressionLevel);
    payload = packed;
  }
  ByteWriter w;
  w.string(magic8);
  w.le16(version.major);
  w.le16(version.minor);
  w.le32(compress ? kFlagCompressed : 0);
  std::array<uint8_t, kNonceSize> nonce;
  random_nonce(nonce);
  w.bytes(nonce);
  std::vector<uint8_t> out = w.take();
  out.resize(kObjectHeaderSize + payload.size() + kTagSize);
  aead_seal(std::span(out).subspan(kObjectHeaderSize), payload, std::span(out).first(kObjectHeaderSize), nonce,
            keys.encryption_key());
  return out;
}

OpenedObject open_object(const RepoKeys& keys, std::span<const uint8_t> data, std::string_view magic8,
                         uint16_t max_major, const std::string& what, size_t max_payload) {
  if (data.size() < 8 || std::memcmp(data.data(), magic8.data(), 8) != 0)
    fail(ErrorCategory::format, "{}: not an arche {} file (bad magic)", what, magic8);
  if (data.size() < kObjectHeaderSize + kTagSize)
    fail(ErrorCategory::corrupt, "{}: truncated ({} bytes)", what, data.size());
  ByteReader r(data, what);
  r.skip(8);
  RecordVersion v{r.le16(), r.le16()};
  uint32_t flags = r.le32();
  if (v.major > max_major)
    fail(ErrorCategory::unsupported, "{}: format version {}.{} is newer than this arche understands ({}.x)", what,
         v.major, v.minor, max_major);
  std::span<const uint8_t> nonce = r.bytes(kNonceSize);
  std::span<const uint8_t> cipher = data.subspan(kObjectHeaderSize);
  std::vector<uint8_t> plain(cipher.size() - kTagSize);
  if (!aead_open(plain, cipher, data.first(kObjectHeaderSize), nonce, keys.encryption_key()))
    fail(ErrorCategory::corrupt, "{}: authentication failed: the file is damaged, truncated or altered", what);
  if (flags & ~kFlagCompressed) fail(ErrorCategory::unsupported, "{}: unknown flags 0x{:x}", what, flags);
  if (flags & kFlagCompressed) plain = decompress(plain, max_payload, what);
  else if (plain.size() > max_payload) fail(ErrorCategory::corrupt, "{}: {} bytes is more than expected", what, plain.size());
  return {v, std::move(plain)};
}

}  // namespace arche::backup
