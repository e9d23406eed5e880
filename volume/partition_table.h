// Partition tables: GPT (UEFI spec, chapter 5) and MBR with extended/logical
// partitions. The disk is untrusted: every offset is checked against the disk,
// the EBR chain of an extended partition is followed loop-safely, and a GPT whose
// primary header or entry array fails its CRC32 is read from the backup copy at
// the end of the disk (noted in `notes`).
//
// Which one a disk holds: a GPT needs an MBR with a 0xEE (protective) entry, as
// Linux and libblkid require — a GPT left behind after a disk was repartitioned
// with an MBR tool is ignored. A hybrid MBR (0xEE beside other entries) is read as
// GPT; its MBR entries are ignored, as Linux does. A boot sector that ends in 0x55AA
// may also be the first sector of a whole-disk FAT or NTFS file system: probe.h
// checks for those before it asks for a partition table.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "image/block_device.h"

namespace arche::volume {

enum class PartitionScheme : uint8_t { gpt, mbr };
const char* to_string(PartitionScheme scheme);  // "gpt", "mbr"

struct Partition {
  // The number in the address "p<number>": the GPT entry index + 1; MBR primary
  // slots 1-4, logical partitions 5, 6, ... in chain order (as Linux numbers them).
  unsigned number = 0;
  uint64_t offset = 0;  // bytes from the start of the disk
  uint64_t size = 0;    // bytes
  std::string type_id;    // GPT: type GUID in lower case; MBR: "0x83"
  std::string type_name;  // "Linux filesystem", "EFI System", ...; "" when unknown
  std::string name;       // GPT partition name (UTF-8); empty for MBR
  std::string uuid;       // GPT unique partition GUID; MBR: "<disk signature>-<number>" as blkid prints PARTUUID
  uint64_t attributes = 0;  // GPT attribute bits; MBR: the status byte (0x80 = active)
  bool extended = false;    // MBR extended partition: a container of logical partitions, no data of its own
  bool logical = false;     // MBR logical partition inside an extended one
  std::vector<std::string> notes;  // "reaches beyond the end of the disk: cut to ..."
};

struct PartitionTable {
  PartitionScheme scheme = PartitionScheme::mbr;
  uint32_t sector_size = 512;
  std::string disk_id;  // GPT disk GUID; MBR disk signature as "0x1234abcd"
  std::vector<Partition> partitions;  // ordered by number
  std::vector<std::string> notes;     // what was damaged or unusual, for the listing
};

// The partition table of a disk, or nullopt when it has none arche recognises (no
// 0x55AA signature, or an MBR whose entries make no sense). Throws a corrupt error
// when a protective MBR announces a GPT but neither GPT header is usable.
std::optional<PartitionTable> read_partition_table(image::BlockDevice& disk);

// The parts, for tests and fuzzing. read_gpt returns nullopt when there is no
// "EFI PART" header at LBA 1 (nor a valid backup) for that sector size.
std::optional<PartitionTable> read_gpt(image::BlockDevice& disk, uint32_t sector_size);
std::optional<PartitionTable> read_mbr(image::BlockDevice& disk);

// Names of GPT type GUIDs and MBR type bytes ("" when unknown).
std::string gpt_type_name(const std::string& type_guid);
std::string mbr_type_name(uint8_t type);

}  // namespace arche::volume
