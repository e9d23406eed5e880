// What a BlockDevice holds, from its first sectors: a file system, a partition
// table, an LVM2 physical volume, or something arche names but does not read
// (swap, LUKS, md RAID, btrfs, ...). The magics are checked here, in arche, rather
// than with libblkid, because the check runs inside the sandbox (sandbox.h), which
// has no file descriptors for libblkid to probe.
//
// Order matters. A FAT, NTFS or exFAT volume starts with a boot sector that ends
// in 0x55AA like an MBR; those are recognised by their BPB before any partition
// table is considered. Then GPT/MBR, then superblock magics deeper in.
#pragma once

#include <memory>
#include <string>

#include "image/block_device.h"
#include "volume/filesystem.h"

namespace arche::volume {

enum class ContentKind : uint8_t {
  empty,            // nothing recognised (zeros, or data arche does not know)
  filesystem,       // a file system: `type` names it; `readable` when arche has a reader
  partition_table,  // "gpt" or "mbr"
  lvm_pv,           // an LVM2 physical volume ("LVM2_member")
  other,            // swap, LUKS, md RAID member, ...: named, never opened
};

struct Content {
  ContentKind kind = ContentKind::empty;
  // File systems: "ext2", "ext3", "ext4", "xfs", "ntfs", "fat12", "fat16", "fat32",
  // "exfat", "btrfs", ...; partition tables "gpt", "mbr"; others as blkid names them
  // ("LVM2_member", "swap", "crypto_LUKS", "linux_raid_member", "BitLocker").
  std::string type;
  std::string label, uuid;  // as blkid prints them, where the superblock has them
  bool readable = false;    // open_filesystem() can open it
};

Content identify(image::BlockDevice& device);

// "ext2", "ext3" or "ext4" from the superblock's feature words (libblkid's rule:
// anything ext3 did not have makes it ext4; a journal without that makes ext3).
std::string ext_type_name(uint32_t compat, uint32_t incompat, uint32_t ro_compat);

// The reader for `content` (readers.h). Throws unsupported for anything arche
// cannot read, naming it ("btrfs is not read by arche").
std::unique_ptr<Filesystem> open_filesystem(std::shared_ptr<image::BlockDevice> device, const Content& content);

}  // namespace arche::volume
