// The on-disk structures of VHDX after [MS-VHDX] v1.0: file type identifier, the two
// headers (CRC32C, sequence numbers), the two copies of the region table, the
// metadata region (file parameters, virtual disk size, page 83 data, sector sizes,
// parent locator) and BAT entries. Pure parsing and encoding; all little endian.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "image/foreign/ids.h"

namespace arche::image::vhdx {

using foreign::Id128;

inline constexpr uint64_t kMiB = 1024 * 1024;
inline constexpr uint64_t kHeaderOffsets[2] = {64 * 1024, 128 * 1024};
inline constexpr uint64_t kRegionTableOffsets[2] = {192 * 1024, 256 * 1024};
inline constexpr size_t kHeaderSize = 4096;         // the checksummed part of a 64 KiB header block
inline constexpr size_t kRegionTableSize = 64 * 1024;
inline constexpr size_t kMetadataTableSize = 64 * 1024;
inline constexpr uint64_t kMaxDiskSize = 64ull << 40;  // 64 TiB
inline constexpr uint64_t kSectorsPerBitmapBlock = 1ull << 23;

// GUIDs in their on-disk (Microsoft) byte order.
Id128 guid(const char* text);
extern const Id128 kBatRegion, kMetadataRegion;
extern const Id128 kFileParameters, kVirtualDiskSize, kPage83Data, kLogicalSectorSize, kPhysicalSectorSize,
    kParentLocator, kVhdxParentLocatorType;

struct Header {
  uint64_t sequence = 0;
  Id128 file_write_guid{}, data_write_guid{}, log_guid{};
  uint16_t log_version = 0;
  uint16_t version = 1;
  uint32_t log_length = 0;
  uint64_t log_offset = 0;
};
// Throws (corrupt) when the signature, checksum or version is wrong.
Header parse_header(std::span<const uint8_t> block, const std::string& what);
std::vector<uint8_t> encode_header(const Header& header);  // kHeaderSize bytes

struct RegionEntry {
  Id128 id{};
  uint64_t offset = 0;
  uint32_t length = 0;
  bool required = false;
};
std::vector<RegionEntry> parse_region_table(std::span<const uint8_t> table, const std::string& what);
std::vector<uint8_t> encode_region_table(const std::vector<RegionEntry>& entries);  // kRegionTableSize

enum MetadataFlags : uint32_t { kIsUser = 1, kIsVirtualDisk = 2, kIsRequired = 4 };

struct ParentLocator {
  Id128 type{};
  std::map<std::string, std::string> entries;  // key -> value (UTF-8)
};

struct Metadata {
  uint32_t block_size = 0;
  bool leave_blocks_allocated = false;
  bool has_parent = false;
  uint64_t virtual_disk_size = 0;
  Id128 page83{};
  uint32_t logical_sector_size = 512;
  uint32_t physical_sector_size = 4096;
  std::optional<ParentLocator> parent_locator;
};
// Parses the metadata region (its first bytes hold the table). Refuses unknown
// required items and values the specification does not allow.
Metadata parse_metadata(std::span<const uint8_t> region, const std::string& what);
// A metadata region of `region_size` bytes holding these items.
std::vector<uint8_t> encode_metadata(const Metadata& metadata, uint64_t region_size);

// BAT entries: state in bits 0-2, file offset in MiB in bits 20-63.
enum BlockState : uint8_t {
  kNotPresent = 0,
  kUndefined = 1,
  kZero = 2,
  kUnmapped = 3,
  kUnmappedV095 = 5,  // the value of "unmapped" in the 0.95 draft; qemu reads it too
  kFullyPresent = 6,
  kPartiallyPresent = 7,
};
inline constexpr uint8_t kSbNotPresent = 0, kSbPresent = 6;
inline uint8_t bat_state(uint64_t entry) { return entry & 7; }
inline uint64_t bat_offset(uint64_t entry) { return (entry >> 20) * kMiB; }
inline uint64_t bat_entry(uint8_t state, uint64_t offset) { return (offset / kMiB) << 20 | state; }

// Geometry of the BAT for a disk.
struct BatLayout {
  uint64_t block_size = 0;
  uint64_t chunk_ratio = 0;     // payload blocks per sector bitmap block
  uint64_t payload_blocks = 0;
  uint64_t bitmap_blocks = 0;
  uint64_t entries = 0;         // total BAT entries the disk needs
  uint64_t payload_index(uint64_t block) const { return block + block / chunk_ratio; }
  uint64_t bitmap_index(uint64_t chunk) const { return chunk * (chunk_ratio + 1) + chunk_ratio; }
};
BatLayout bat_layout(uint64_t disk_size, uint32_t block_size, uint32_t logical_sector_size, bool has_parent);

}  // namespace arche::image::vhdx
