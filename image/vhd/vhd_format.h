// The on-disk structures of VHD ("vpc"), after Microsoft's Virtual Hard Disk Image
// Format Specification: the 512-byte footer (at the end of every image, with a copy
// at offset 0 of dynamic and differencing disks), the dynamic disk header, the block
// allocation table and parent locators. Pure parsing and encoding; all big endian.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "image/foreign/ids.h"

namespace arche::image::vhd {

inline constexpr uint64_t kSector = 512;
inline constexpr size_t kFooterSize = 512;
inline constexpr size_t kDynamicHeaderSize = 1024;
inline constexpr uint32_t kUnallocated = 0xFFFFFFFF;  // BAT entry of a block not in the file
inline constexpr uint32_t kDefaultBlockSize = 2 * 1024 * 1024;
// Largest disk the format addresses (BAT offsets are 32-bit sector numbers); qemu's
// limit too.
inline constexpr uint64_t kMaxSectors = 0xff000000ull;  // 2040 GiB
// The largest CHS geometry, 65535 x 16 x 255: readers then take the footer's size.
inline constexpr uint64_t kMaxGeometrySectors = 65535ull * 16 * 255;
// Seconds from the Unix epoch to 2000-01-01 00:00:00 UTC, the VHD epoch.
inline constexpr uint64_t kEpochOffset = 946684800;

enum class DiskType : uint32_t { fixed = 2, dynamic = 3, differencing = 4 };
const char* to_string(DiskType type);

struct Geometry {
  uint16_t cylinders = 0;
  uint8_t heads = 0;
  uint8_t sectors_per_track = 0;
  uint64_t total_sectors() const { return uint64_t{cylinders} * heads * sectors_per_track; }
};

// The geometry the specification's appendix derives from a sector count.
Geometry geometry_for(uint64_t total_sectors);

struct Footer {
  uint32_t features = 2;  // bit 1 is reserved and always set
  uint32_t format_version = 0x00010000;
  uint64_t data_offset = UINT64_MAX;  // dynamic header; all ones for fixed disks
  uint32_t timestamp = 0;             // seconds since 2000-01-01 UTC
  std::array<char, 4> creator_app{};
  uint32_t creator_version = 0;
  uint32_t creator_host_os = 0;
  uint64_t original_size = 0;
  uint64_t current_size = 0;
  Geometry geometry;
  DiskType disk_type = DiskType::fixed;
  uint32_t checksum = 0;  // as stored
  foreign::Id128 unique_id{};
  uint8_t saved_state = 0;
};

// One's complement of the byte sum, with the 4 bytes at `checksum_at` counted as 0.
uint32_t checksum(std::span<const uint8_t> bytes, size_t checksum_at);

// Parses 512 bytes. Throws a format error when the cookie is missing or a field is
// impossible, a corrupt error when the checksum does not match.
Footer parse_footer(std::span<const uint8_t> bytes, const std::string& what);
std::array<uint8_t, kFooterSize> encode_footer(const Footer& footer);

// The virtual size readers agree on for this footer, following qemu, which follows
// what each creator meant: Virtual PC (and qemu without force_size) count the CHS
// geometry, Hyper-V, Disk2vhd, XenServer and qemu with force_size the current size.
// A geometry at its maximum always means the current size.
uint64_t virtual_size(const Footer& footer);
bool size_from_geometry(const Footer& footer);

enum PlatformCode : uint32_t {
  kPlatformNone = 0,
  kPlatformWi2r = 0x57693272,  // deprecated: relative path, ANSI
  kPlatformWi2k = 0x5769326B,  // deprecated: absolute path, ANSI
  kPlatformW2ru = 0x57327275,  // relative Windows path, UTF-16 LE
  kPlatformW2ku = 0x57326B75,  // absolute Windows path, UTF-16 LE
  kPlatformMac = 0x4D616320,   // Mac OS alias blob
  kPlatformMacX = 0x4D616358,  // file:// URL, UTF-8
};

struct ParentLocator {
  uint32_t platform = kPlatformNone;
  uint32_t data_space = 0;   // spec: sectors; some writers store bytes
  uint32_t data_length = 0;  // bytes
  uint64_t data_offset = 0;
};

struct DynamicHeader {
  uint64_t data_offset = UINT64_MAX;
  uint64_t table_offset = 0;
  uint32_t header_version = 0x00010000;
  uint32_t max_table_entries = 0;
  uint32_t block_size = kDefaultBlockSize;
  uint32_t checksum = 0;
  foreign::Id128 parent_unique_id{};
  uint32_t parent_timestamp = 0;
  std::string parent_name;  // UTF-8 (stored as UTF-16 BE, 256 code units)
  std::array<ParentLocator, 8> locators{};
};

DynamicHeader parse_dynamic_header(std::span<const uint8_t> bytes, const std::string& what);
std::array<uint8_t, kDynamicHeaderSize> encode_dynamic_header(const DynamicHeader& header);

// Bytes of the sector bitmap in front of each block: one bit per sector, padded
// to a whole sector.
inline uint64_t bitmap_bytes(uint64_t block_size) {
  return (block_size / kSector / 8 + kSector - 1) / kSector * kSector;
}

// The path a locator's data names, as a POSIX path ("" when the platform is not
// one arche can use). `data` is the locator's payload.
std::string locator_path(uint32_t platform, std::span<const uint8_t> data);

}  // namespace arche::image::vhd
