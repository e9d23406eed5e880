#include "image/mirror/checksum.h"

#include <xxhash.h>

#include "core/bytes.h"
#include "core/crc32c.h"
#include "core/error.h"

namespace arche::image::mirror {

const char* to_string(ChecksumKind kind) {
  switch (kind) {
    case ChecksumKind::none: return "none";
    case ChecksumKind::crc32c: return "crc32c";
    case ChecksumKind::xxh3: return "xxh3";
  }
  return "?";
}

ChecksumKind parse_checksum_kind(const std::string& text) {
  if (text == "none") return ChecksumKind::none;
  if (text == "crc32c") return ChecksumKind::crc32c;
  if (text == "xxh3") return ChecksumKind::xxh3;
  fail(ErrorCategory::usage, "unknown checksum '{}' (known: crc32c, xxh3, none)", text);
}

uint32_t block_checksum(ChecksumKind kind, std::span<const uint8_t> block) {
  if (all_zero(block)) return 0;
  uint32_t h = 0;
  switch (kind) {
    case ChecksumKind::none: return 1;
    case ChecksumKind::crc32c: h = crc32c(block.data(), block.size()); break;
    case ChecksumKind::xxh3: h = static_cast<uint32_t>(XXH3_64bits(block.data(), block.size())); break;
  }
  return h ? h : 1;  // 0 means "all zeros"
}

}  // namespace arche::image::mirror
