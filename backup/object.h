// The envelope of every encrypted repository file other than packs (config settings,
// index files, snapshot manifests, locks):
//
//   magic (8) | major (u16 le) | minor (u16 le) | flags (u32 le) | nonce (24)
//   | XChaCha20-Poly1305(payload) | tag (16)
//
// The 40-byte header is the AAD, so magic, version and flags are authenticated with
// the content. flags bit 0: the payload was zstd-compressed before encryption.
// Readers refuse unknown major versions and unknown flags.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "backup/crypto.h"
#include "core/bytes.h"

namespace arche::backup {

constexpr size_t kObjectHeaderSize = 40;

std::vector<uint8_t> seal_object(const RepoKeys& keys, std::string_view magic8, RecordVersion version,
                                 std::span<const uint8_t> payload, bool compress);

struct OpenedObject {
  RecordVersion version;
  std::vector<uint8_t> payload;
};

// Throws: format (not this kind of file), unsupported (newer major version),
// corrupt (authentication failed: damaged, truncated or altered). `max_payload`
// bounds what a compressed payload may expand to.
OpenedObject open_object(const RepoKeys& keys, std::span<const uint8_t> data, std::string_view magic8,
                         uint16_t max_major, const std::string& what, size_t max_payload);

}  // namespace arche::backup
