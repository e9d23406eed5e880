// The per-block checksums of the mirror (docs/raid.md, "Checksums"). One 32-bit
// entry per block of the data area; 0 is reserved for "this block reads as zeros",
// so a fresh, sparse leg needs no table writes and a zero write costs no hashing.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace arche::image::mirror {

enum class ChecksumKind : uint8_t {
  none = 0,    // no table: reads are not verified (md's behaviour)
  crc32c = 1,  // CRC32C (SSE4.2 instruction)
  xxh3 = 2,    // the low 32 bits of XXH3-64 (libxxhash)
};

// The default for new arrays, chosen by measurement (bench/raid.sh: xxh3 hashes a
// 4 KiB block several times faster than CRC32C on the test machine).
inline constexpr ChecksumKind kDefaultChecksum = ChecksumKind::xxh3;

const char* to_string(ChecksumKind kind);
// "none", "crc32c", "xxh3"; throws a usage error on anything else.
ChecksumKind parse_checksum_kind(const std::string& text);

// The table entry for one block: 0 when every byte is zero, never 0 otherwise.
uint32_t block_checksum(ChecksumKind kind, std::span<const uint8_t> block);

}  // namespace arche::image::mirror
