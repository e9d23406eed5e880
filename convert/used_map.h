// P2V's used-block map: which bytes of each source disk a conversion copies
// (docs/p2v.md, "What is copied"). Built from the volume/ tree of the disks (run
// in the sandbox by the CLI): file systems give their used ranges, swap keeps its
// header page, an LVM2 PV keeps its label and metadata and the extents of LVs
// arche cannot read, free PV extents are skipped, and everything that is not
// inside a partition (the MBR/GPT, the boot-loader gap before the first
// partition, EBRs, the GPT backup at the end) is always copied. Whatever cannot be
// parsed is copied whole, and the map says so with the reason: nothing is
// dropped silently.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "image/block_device.h"
#include "volume/tree.h"

namespace arche::convert {

// How the bytes of one volume were chosen.
enum class CopyMethod : uint8_t {
  used_ranges,  // the file system's own allocation map
  swap_header,  // swap: the header page only
  lvm,          // an LVM2 PV: label, metadata and the extents of LVs without a reader
  layout,       // a partitioned disk outside its partitions: tables, boot loader, GPT backup
  whole,        // copied whole: `reason` says why
};
const char* to_string(CopyMethod method);  // "used-ranges", "swap-header", "lvm", "layout", "whole"

struct CopiedVolume {
  uint32_t disk = 0;
  std::string volume;   // the address in the tree: "" (whole disk), "p1", "vg0/root"
  std::string content;  // "ext4", "swap", "LVM2_member", ... ("" when unknown)
  CopyMethod method = CopyMethod::whole;
  std::string reason;      // for `whole`: why it could not be mapped
  uint64_t size = 0;       // bytes of the volume (layout: of the disk)
  uint64_t selected = 0;   // bytes of it the map selects
  uint64_t fs_used = 0;    // what the file system reports as used (used_ranges only)
};

struct DiskMap {
  std::string name;
  uint64_t size = 0;
  std::vector<volume::ByteRange> ranges;  // sorted, merged, disjoint, on 512-byte sectors
  uint64_t bytes() const;
};

struct UsedMap {
  std::vector<DiskMap> disks;          // in the tree's disk order
  std::vector<CopiedVolume> volumes;   // in the tree's volume order
  uint64_t bytes() const;              // over all disks
  bool any_whole() const;
};

// The map for every disk of `tree`; `disks` are the same devices in the same
// order (read for swap headers). Damage in a volume makes it `whole`; I/O errors
// and interruptions end the call.
UsedMap map_used_blocks(volume::Tree& tree, const std::vector<std::shared_ptr<image::BlockDevice>>& disks);

// Sorts, clips to `size`, widens to 512-byte sectors and merges.
std::vector<volume::ByteRange> normalise_ranges(std::vector<volume::ByteRange> ranges, uint64_t size);

}  // namespace arche::convert
