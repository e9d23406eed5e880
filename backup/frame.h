// One blob (a chunk of data, a piece of a directory tree, a chunk list) as stored in
// a pack: a self-describing frame, so a pack can be read front to back without its
// footer (tape restores, salvage):
//
//   "ABLK" | version (u8, 1) | kind (u8) | reserved (u16, 0) | sealed length (u32 le)
//   | id (32) | nonce (24)                                       = 68-byte header
//   | XChaCha20-Poly1305(codec (u8: 0 stored, 1 zstd) | body) | tag (16)
//   | zero padding to a multiple of 16 bytes
//
// The header is the AAD: the id (keyed BLAKE2b-256 of the plaintext) is
// authenticated with the ciphertext, so a frame cannot be passed off as another
// chunk, and a damaged header fails authentication like damaged data does. The codec
// sits inside the encryption so compressibility is not visible in the clear.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "backup/crypto.h"

namespace arche::backup {

enum class BlobKind : uint8_t { data = 1, tree = 2, list = 3 };
const char* to_string(BlobKind kind);

constexpr size_t kFrameHeaderSize = 68;
constexpr size_t kFrameAlign = 16;
// Plaintext of one blob: data chunks, tree pieces and list blobs are all cut below it.
constexpr size_t kMaxBlobSize = 4u << 20;
// Frames are at most 8 MiB, so a frame's length fits the in-memory index (index.h).
constexpr size_t kMaxFrameSize = 8u << 20;

struct FrameHeader {
  BlobKind kind;
  uint32_t sealed_length;  // codec byte + body + tag
  Id id;
  std::array<uint8_t, kNonceSize> nonce;
  // Bytes the frame occupies in the pack, padding included.
  size_t frame_length() const;
};

// Space encode_frame may need for a plaintext of `size` bytes.
size_t frame_bound(size_t size);

// Encodes `plain` as a frame into `out` (frame_bound bytes); returns the frame length
// (a multiple of 16). Compresses with zstd at `level`, and stores the plaintext as it
// is when compression does not make it smaller.
size_t encode_frame(std::span<uint8_t> out, const RepoKeys& keys, BlobKind kind, const Id& id,
                    std::span<const uint8_t> plain, int level);

// Parses a header (the first kFrameHeaderSize bytes of `data`). Throws corrupt errors
// naming `what` for a bad tag, version, kind or length.
FrameHeader parse_frame_header(std::span<const uint8_t> data, const std::string& what);

// Decrypts `frame` (header included) in place and returns the plaintext: a view into
// `frame` when it was stored as it is, or decompressed into `scratch`. Throws corrupt
// when authentication fails or the id differs from `expected` (if given).
std::span<const uint8_t> open_frame(const RepoKeys& keys, std::span<uint8_t> frame, const Id* expected,
                                    std::vector<uint8_t>& scratch, const std::string& what);

}  // namespace arche::backup
