// The on-disk header of VirtualBox VDI images (version 1.1): the pre-header (text,
// signature 0xBEDA107F, version), header 1.1 (type, offsets, sizes, block counts,
// UUIDs) and the block map markers. Pure parsing and encoding; little endian.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "image/foreign/ids.h"

namespace arche::image::vdi {

inline constexpr uint32_t kSignature = 0xBEDA107F;
inline constexpr uint32_t kVersion = 0x00010001;
inline constexpr uint32_t kBlockFree = 0xFFFFFFFF;  // not allocated: reads as zeros (parent, in a diff image)
inline constexpr uint32_t kBlockZero = 0xFFFFFFFE;  // not allocated, reads as zeros
inline constexpr uint32_t kMaxBlocks = 0x3FFFFFFF;
inline constexpr uint32_t kDefaultBlockSize = 1024 * 1024;
inline constexpr size_t kHeaderOffset = 72;          // after the 64-byte text, signature and version
inline constexpr uint32_t kHeaderSizeV11 = 384;      // VDIHEADER1
inline constexpr uint32_t kHeaderSizeV11Plus = 400;  // VDIHEADER1PLUS (with LCHS geometry)

enum class ImageType : uint32_t { dynamic = 1, fixed = 2, undo = 3, diff = 4 };

struct Header {
  std::string text;
  uint32_t header_size = kHeaderSizeV11Plus;
  ImageType type = ImageType::dynamic;
  uint32_t flags = 0;
  std::string comment;
  uint32_t blocks_offset = 0;
  uint32_t data_offset = 0;
  uint32_t legacy_cylinders = 0, legacy_heads = 0, legacy_sectors = 0, sector_size = 512;
  uint64_t disk_size = 0;
  uint32_t block_size = kDefaultBlockSize;
  uint32_t block_extra = 0;
  uint32_t blocks = 0;
  uint32_t blocks_allocated = 0;
  foreign::Id128 uuid_create{}, uuid_modify{}, uuid_linkage{}, uuid_parent_modify{};
  uint32_t lchs_cylinders = 0, lchs_heads = 0, lchs_sectors = 0, lchs_sector_size = 0;
};

// Parses the first 512 bytes of the file. Throws format / unsupported errors naming
// what is wrong; does not look at the block map.
Header parse_header(std::span<const uint8_t> bytes, const std::string& what);
std::vector<uint8_t> encode_header(const Header& header);  // 512 bytes

}  // namespace arche::image::vdi
