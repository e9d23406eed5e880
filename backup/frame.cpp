#include "backup/frame.h"

#include <cstring>

#include "backup/codec.h"
#include "core/bytes.h"
#include "core/error.h"
#include "core/units.h"

namespace arche::backup {

namespace {
constexpr uint8_t kFrameTag[4] = {'A', 'B', 'L', 'K'};
constexpr uint8_t kFrameVersion = 1;
constexpr uint8_t kCodecStored = 0;
constexpr uint8_t kCodecZstd = 1;
}  // namespace

const char* to_string(BlobKind kind) {
  switch (kind) {
    case BlobKind::data: return "data";
    case BlobKind::tree: return "tree";
    case BlobKind::list: return "list";
  }
  return "?";
}

size_t FrameHeader::frame_length() const { return align_up(kFrameHeaderSize + sealed_length, kFrameAlign); }

size_t frame_bound(size_t size) {
  return align_up(kFrameHeaderSize + 1 + std::max(size, compress_bound(size)) + kTagSize, kFrameAlign);
}

size_t encode_frame(std::span<uint8_t> out, const RepoKeys& keys, BlobKind kind, const Id& id,
                    std::span<const uint8_t> plain, int level) {
  if (plain.size() > kMaxBlobSize) fail(ErrorCategory::internal, "blob of {} bytes is too large", plain.size());
  if (out.size() < frame_bound(plain.size())) fail(ErrorCategory::internal, "frame buffer too small");
  uint8_t* body = out.data() + kFrameHeaderSize + 1;
  // Compress straight into place; keep the plaintext when that does not pay.
  size_t n = compress_into(out.subspan(kFrameHeaderSize + 1, compress_bound(plain.size())), plain, level);
  uint8_t codec = kCodecZstd;
  if (n >= plain.size()) {
    std::memcpy(body, plain.data(), plain.size());
    n = plain.size();
    codec = kCodecStored;
  }
  body[-1] = codec;
  const uint32_t sealed = static_cast<uint32_t>(1 + n + kTagSize);
  uint8_t* h = out.data();
  std::memcpy(h, kFrameTag, 4);
  h[4] = kFrameVersion;
  h[5] = static_cast<uint8_t>(kind);
  h[6] = h[7] = 0;
  store_le32(h + 8, sealed);
  std::memcpy(h + 12, id.bytes.data(), kIdSize);
  random_nonce(std::span(h + 12 + kIdSize, kNonceSize));
  aead_seal(out.subspan(kFrameHeaderSize, sealed), out.subspan(kFrameHeaderSize, 1 + n), out.first(kFrameHeaderSize),
            std::span(h + 12 + kIdSize, kNonceSize), keys.encryption_key());
  const size_t length = align_up(kFrameHeaderSize + sealed, kFrameAlign);
  std::memset(out.data() + kFrameHeaderSize + sealed, 0, length - kFrameHeaderSize - sealed);
  return length;
}

FrameHeader parse_frame_header(std::span<const uint8_t> data, const std::string& what) {
  if (data.size() < kFrameHeaderSize) fail(ErrorCategory::corrupt, "{}: truncated frame header", what);
  if (std::memcmp(data.data(), kFrameTag, 4) != 0) fail(ErrorCategory::corrupt, "{}: no frame here (bad tag)", what);
  if (data[4] != kFrameVersion)
    fail(data[4] > kFrameVersion ? ErrorCategory::unsupported : ErrorCategory::corrupt,
         "{}: frame version {} is not one this arche understands ({})", what, data[4], kFrameVersion);
  FrameHeader h;
  h.kind = static_cast<BlobKind>(data[5]);
  if (data[5] < 1 || data[5] > 3 || data[6] || data[7])
    fail(ErrorCategory::corrupt, "{}: bad frame kind {}", what, data[5]);
  h.sealed_length = load_le32(data.data() + 8);
  if (h.sealed_length < 1 + kTagSize || kFrameHeaderSize + h.sealed_length > kMaxFrameSize)
    fail(ErrorCategory::corrupt, "{}: frame length {} out of range", what, h.sealed_length);
  std::memcpy(h.id.bytes.data(), data.data() + 12, kIdSize);
  std::memcpy(h.nonce.data(), data.data() + 12 + kIdSize, kNonceSize);
  return h;
}

std::span<const uint8_t> open_frame(const RepoKeys& keys, std::span<uint8_t> frame, const Id* expected,
                                    std::vector<uint8_t>& scratch, const std::string& what) {
  FrameHeader h = parse_frame_header(frame, what);
  if (expected && h.id != *expected)
    fail(ErrorCategory::corrupt, "{}: frame holds chunk {} instead of {}", what, h.id.short_hex(), expected->short_hex());
  if (frame.size() < kFrameHeaderSize + h.sealed_length) fail(ErrorCategory::corrupt, "{}: frame truncated", what);
  std::span<uint8_t> sealed = frame.subspan(kFrameHeaderSize, h.sealed_length);
  std::span<uint8_t> plain = sealed.first(h.sealed_length - kTagSize);
  if (!aead_open(plain, sealed, frame.first(kFrameHeaderSize), h.nonce, keys.encryption_key()))
    fail(ErrorCategory::corrupt, "{}: chunk {} failed authentication: the pack is damaged or was altered", what,
         h.id.short_hex());
  const uint8_t codec = plain[0];
  std::span<const uint8_t> body = plain.subspan(1);
  if (codec == kCodecStored) {
    if (body.size() > kMaxBlobSize) fail(ErrorCategory::corrupt, "{}: blob larger than {} bytes", what, kMaxBlobSize);
    return body;
  }
  if (codec != kCodecZstd) fail(ErrorCategory::corrupt, "{}: unknown codec {}", what, codec);
  scratch.resize(decompressed_size(body, kMaxBlobSize, what));
  decompress_into(scratch, body, what);
  return scratch;
}

}  // namespace arche::backup
