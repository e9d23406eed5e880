// Metadata access for the XFS reader: bounds-checked reads of blocks and
// sectors, the AG headers (parsed and cached), and the btrees of xfs_btree.cpp
// (inode allocation, free space, block maps). Everything here validates what it
// reads; the walks are bounded by the btree depth limit and by a visited set, so
// a crafted btree can neither loop nor make a walk exponential.
#pragma once

#include <memory>
#include <unordered_set>
#include <utility>
#include <vector>

#include "image/block_device.h"
#include "volume/reader_support.h"
#include "volume/xfs_format.h"

namespace arche::volume::xfs {

// Most extents one file may have before the reader refuses it (memory bound).
constexpr uint64_t kMaxExtents = uint64_t{1} << 22;

struct FreeExtent {
  uint32_t start = 0;  // agbno
  uint32_t count = 0;
};

class Volume {
 public:
  Volume(image::BlockDevice& device, const Superblock& sb) : device_(device), sb_(sb) {}

  const Superblock& sb() const { return sb_; }
  image::BlockDevice& device() { return device_; }

  void read(uint64_t offset, std::span<uint8_t> out) { read_volume(device_, offset, out, "xfs"); }
  std::vector<uint8_t> read(uint64_t offset, size_t length) {
    std::vector<uint8_t> buf(length);
    read(offset, buf);
    return buf;
  }

  Agf agf(uint32_t agno);
  Agi agi(uint32_t agno);

  // True when the inode btree of the inode's AG records it as allocated.
  bool inode_allocated(uint64_t ino);
  // The free extents of an AG from its by-block free-space btree (bnobt), sorted,
  // non-overlapping, inside the AG, adding up to the AGF's free-block count.
  std::vector<FreeExtent> free_extents(uint32_t agno);
  // The extents of a data fork in btree format (bmbt), sorted by file offset.
  std::vector<Extent> bmbt_extents(const Inode& inode);

 private:
  // A btree block of an AG btree (short form) with its header checked.
  std::shared_ptr<const std::vector<uint8_t>> ag_btree_block(uint32_t agno, uint32_t agbno, uint32_t magic_v4,
                                                             uint32_t magic_v5, uint32_t level, const char* what);

  image::BlockDevice& device_;
  const Superblock& sb_;
  LruCache<uint32_t, Agf> agfs_{64};
  LruCache<uint32_t, Agi> agis_{64};
  LruCache<uint64_t, std::shared_ptr<const std::vector<uint8_t>>> inobt_blocks_{256};
};

}  // namespace arche::volume::xfs
