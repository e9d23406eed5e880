// FAT12/16/32 on-disk structures (Microsoft "FAT: General Overview of On-Disk
// Format" 1.03, and the VFAT long-name extension), parsed from bytes. No I/O here:
// fat_table.* reads the allocation table, fat_filesystem.cpp the directories.
//
//   sector 0            boot sector with the BIOS parameter block (BPB)
//   reserved sectors    (FAT32: FSInfo, backup boot sector)
//   FAT #0 .. #n-1      one entry per cluster: 0 free, next cluster, bad, end of chain
//   root directory      FAT12/16 only: a fixed region of RootEntCnt 32-byte entries
//   data area           cluster 2 starts here; FAT32's root directory is a chain
//
// The FAT type follows from the number of data clusters (< 4085: FAT12, < 65525:
// FAT16), as the specification says, never from the "FAT16   " label string. The
// one exception is the FAT32 layout (FATSz16 = 0, no fixed root directory): it is
// FAT32 whatever its cluster count, as Linux and dosfstools read it.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace arche::volume::fat {

struct Geometry {
  int bits = 0;  // 12, 16 or 32
  uint32_t bytes_per_sector = 0;
  uint32_t sectors_per_cluster = 0;
  uint32_t cluster_bytes = 0;
  uint32_t reserved_sectors = 0;
  uint32_t fat_count = 0;
  uint32_t fat_sectors = 0;    // per FAT
  uint32_t active_fat = 0;     // the FAT in use (FAT32 may disable mirroring)
  uint32_t root_entries = 0;   // FAT12/16: entries of the fixed root directory
  uint32_t root_cluster = 0;   // FAT32: first cluster of the root directory
  uint32_t fsinfo_sector = 0;  // FAT32: 0 when there is none
  uint64_t total_sectors = 0;
  uint32_t cluster_count = 0;      // data clusters; valid cluster numbers are 2..cluster_count+1
  std::optional<uint32_t> serial;  // volume id of the extended BPB
  std::string boot_label;          // label in the BPB (the root directory's entry is the real one)

  uint64_t volume_bytes() const { return total_sectors * bytes_per_sector; }
  uint64_t fat_offset(uint32_t index) const {
    return (uint64_t{reserved_sectors} + uint64_t{index} * fat_sectors) * bytes_per_sector;
  }
  uint64_t root_dir_offset() const { return fat_offset(fat_count); }
  uint64_t root_dir_bytes() const { return uint64_t{root_entries} * 32; }
  // Byte offset of cluster 2, the start of the data area.
  uint64_t data_offset() const;
  uint64_t cluster_offset(uint32_t cluster) const { return data_offset() + uint64_t{cluster - 2} * cluster_bytes; }
  uint32_t max_cluster() const { return cluster_count + 1; }
  bool valid_cluster(uint32_t c) const { return c >= 2 && c <= max_cluster(); }
};

// Validates the boot sector (at least 512 bytes) and derives the layout. A format
// error when it is not a FAT boot sector (exFAT and NTFS are named), a corrupt one
// when it is but its numbers do not fit together.
Geometry parse_boot_sector(std::span<const uint8_t> sector);

// The FSInfo sector's free-cluster count, when its three signatures are right and
// the count is possible. It is a hint the driver that wrote it maintained.
std::optional<uint32_t> parse_fsinfo_free_count(std::span<const uint8_t> sector, const Geometry& geometry);

// Directory entries.
constexpr size_t kEntrySize = 32;
constexpr uint8_t kAttrReadOnly = 0x01;
constexpr uint8_t kAttrVolumeId = 0x08;
constexpr uint8_t kAttrDirectory = 0x10;
constexpr uint8_t kAttrLongName = 0x0f;  // read-only | hidden | system | volume id
constexpr uint8_t kEntryFree = 0xe5;
constexpr uint8_t kEntryEnd = 0x00;

// The 8.3 name of a short entry as UTF-8: "NAME.EXT" with the NT lowercase flags
// (NTRes bit 3: base, bit 4: extension) applied and OEM bytes read as code page 437.
std::string short_name(std::span<const uint8_t, kEntrySize> entry);
// The 11 bytes of a volume-label entry, trailing spaces removed.
std::string volume_label(std::span<const uint8_t, kEntrySize> entry);
// The checksum of the 11 name bytes that long-name entries carry.
uint8_t short_name_checksum(std::span<const uint8_t, kEntrySize> entry);
// UTF-16LE code units to UTF-8; an unpaired surrogate becomes U+FFFD.
std::string utf16_to_utf8(std::span<const uint16_t> units);

// FAT date and time fields (local time, 2-second resolution) as nanoseconds since
// the unix epoch, reading the local time as UTC. Out-of-range month or day values
// are clamped to the nearest valid one rather than refused.
int64_t fat_time_ns(uint16_t date, uint16_t time, uint8_t tenths = 0);

}  // namespace arche::volume::fat
