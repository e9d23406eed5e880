#include "volume/xfs_volume.h"

#include <algorithm>
#include <cstring>
#include <functional>

#include "core/endian.h"
#include "core/error.h"

namespace arche::volume::xfs {
namespace {

// Btree block magics, v4 and v5 (CRC) variants.
constexpr uint32_t kBnobtMagic = 0x41425442, kBnobtMagicV5 = 0x41423342;  // "ABTB", "AB3B"
constexpr uint32_t kInobtMagic = 0x49414254, kInobtMagicV5 = 0x49414233;  // "IABT", "IAB3"
constexpr uint32_t kBmbtMagic = 0x424d4150, kBmbtMagicV5 = 0x424d4133;    // "BMAP", "BMA3"

// Short-form (AG) btree block header: magic, level, numrecs, left, right (16
// bytes); v5 adds blkno, lsn, uuid, owner (AG), crc: 56 bytes.
size_t short_header(const Superblock& sb) { return sb.crc ? 56 : 16; }
// Long-form (bmbt) header: 24 bytes; v5 adds blkno, lsn, uuid, owner (inode), crc, pad: 72.
size_t long_header(const Superblock& sb) { return sb.crc ? 72 : 24; }

}  // namespace

Agf Volume::agf(uint32_t agno) {
  if (Agf* cached = agfs_.find(agno)) return *cached;
  std::vector<uint8_t> sector = read(sb_.ag_block_offset(agno, 0) + sb_.sector_size, sb_.sector_size);
  return agfs_.insert(agno, parse_agf(sector, sb_, agno));
}

Agi Volume::agi(uint32_t agno) {
  if (Agi* cached = agis_.find(agno)) return *cached;
  std::vector<uint8_t> sector = read(sb_.ag_block_offset(agno, 0) + 2 * uint64_t{sb_.sector_size}, sb_.sector_size);
  return agis_.insert(agno, parse_agi(sector, sb_, agno));
}

std::shared_ptr<const std::vector<uint8_t>> Volume::ag_btree_block(uint32_t agno, uint32_t agbno, uint32_t magic_v4,
                                                                   uint32_t magic_v5, uint32_t level,
                                                                   const char* what) {
  if (agbno >= sb_.ag_length(agno))
    fail(ErrorCategory::corrupt, "xfs: AG {}: {} points to block {} outside the AG", agno, what, agbno);
  const uint64_t offset = sb_.ag_block_offset(agno, agbno);
  auto block = std::make_shared<std::vector<uint8_t>>(read(offset, sb_.block_size));
  const uint8_t* p = block->data();
  if (load_be32(p) != (sb_.crc ? magic_v5 : magic_v4))
    fail(ErrorCategory::corrupt, "xfs: AG {}: {} block {}: bad magic", agno, what, agbno);
  if (load_be16(p + 4) != level)
    fail(ErrorCategory::corrupt, "xfs: AG {}: {} block {}: level {}, expected {}", agno, what, agbno, load_be16(p + 4),
         level);
  if (sb_.crc && (!crc_ok(*block, 52) || load_be64(p + 16) != offset / 512 ||
                  std::memcmp(p + 32, sb_.meta_uuid, 16) != 0 || load_be32(p + 48) != agno))
    fail(ErrorCategory::corrupt, "xfs: AG {}: {} block {}: CRC or self-description mismatch", agno, what, agbno);
  return block;
}

bool Volume::inode_allocated(uint64_t ino) {
  const uint32_t agno = sb_.inode_ag(ino), agino = sb_.inode_agino(ino);
  const Agi root = agi(agno);
  const size_t header = short_header(sb_);
  uint32_t agbno = root.root;
  for (uint32_t level = root.level; level-- > 0;) {
    const uint64_t key = uint64_t{agno} << 32 | agbno;
    std::shared_ptr<const std::vector<uint8_t>> block;
    if (auto* cached = inobt_blocks_.find(key); cached && load_be16((*cached)->data() + 4) == level) {
      block = *cached;
    } else {
      block = ag_btree_block(agno, agbno, kInobtMagic, kInobtMagicV5, level, "inode btree");
      inobt_blocks_.insert(key, block);
    }
    const uint8_t* p = block->data();
    const uint32_t records = load_be16(p + 6);
    if (level > 0) {
      // Node: keys (first inode of each child, 4 bytes), then the child pointers.
      const uint32_t max = static_cast<uint32_t>((sb_.block_size - header) / 8);
      if (records == 0 || records > max)
        fail(ErrorCategory::corrupt, "xfs: AG {}: inode btree block {}: {} records", agno, agbno, records);
      uint32_t child = records;
      for (uint32_t i = 0; i < records && load_be32(p + header + 4 * i) <= agino; ++i) child = i;
      if (child == records) return false;
      agbno = load_be32(p + header + 4 * max + 4 * child);
      continue;
    }
    // Leaf: records of 64 inodes each: first inode, (holemask, count, freecount |
    // freecount), then the free bitmap.
    if (records > (sb_.block_size - header) / 16)
      fail(ErrorCategory::corrupt, "xfs: AG {}: inode btree block {}: {} records", agno, agbno, records);
    for (uint32_t i = records; i-- > 0;) {
      const uint8_t* r = p + header + 16 * i;
      const uint32_t start = load_be32(r);
      if (start > agino) continue;
      const uint32_t index = agino - start;
      if (index >= 64) return false;
      if ((load_be64(r + 8) >> index) & 1) return false;                               // free
      if (sb_.sparse_inodes && ((load_be16(r + 4) >> (index / 4)) & 1)) return false;  // sparse hole
      return true;
    }
    return false;
  }
  return false;
}

std::vector<FreeExtent> Volume::free_extents(uint32_t agno) {
  const Agf header_agf = agf(agno);
  const size_t header = short_header(sb_);
  std::vector<FreeExtent> out;
  std::unordered_set<uint32_t> visited;
  std::function<void(uint32_t, uint32_t)> walk = [&](uint32_t agbno, uint32_t level) {
    if (!visited.insert(agbno).second)
      fail(ErrorCategory::corrupt, "xfs: AG {}: free-space btree reaches block {} twice", agno, agbno);
    auto block = ag_btree_block(agno, agbno, kBnobtMagic, kBnobtMagicV5, level, "free-space btree");
    const uint8_t* p = block->data();
    const uint32_t records = load_be16(p + 6);
    if (level == 0) {
      if (records > (sb_.block_size - header) / 8)
        fail(ErrorCategory::corrupt, "xfs: AG {}: free-space btree block {}: {} records", agno, agbno, records);
      for (uint32_t i = 0; i < records; ++i)
        out.push_back({load_be32(p + header + 8 * i), load_be32(p + header + 8 * i + 4)});
      return;
    }
    // Node: keys (start, count: 8 bytes each), then 4-byte child pointers.
    const uint32_t max = static_cast<uint32_t>((sb_.block_size - header) / 12);
    if (records == 0 || records > max)
      fail(ErrorCategory::corrupt, "xfs: AG {}: free-space btree block {}: {} records", agno, agbno, records);
    for (uint32_t i = 0; i < records; ++i) walk(load_be32(p + header + 8 * max + 4 * i), level - 1);
  };
  walk(header_agf.bno_root, header_agf.bno_level - 1);

  std::sort(out.begin(), out.end(), [](const FreeExtent& a, const FreeExtent& b) { return a.start < b.start; });
  uint64_t total = 0, end = 0;
  for (const FreeExtent& e : out) {
    if (e.count == 0 || e.start < end || uint64_t{e.start} + e.count > header_agf.length)
      fail(ErrorCategory::corrupt, "xfs: AG {}: free extent {}+{} overlaps another or leaves the AG", agno, e.start,
           e.count);
    end = uint64_t{e.start} + e.count;
    total += e.count;
  }
  if (total != header_agf.free_blocks)
    fail(ErrorCategory::corrupt, "xfs: AG {}: free-space btree holds {} free blocks, the AGF says {}", agno, total,
         header_agf.free_blocks);
  return out;
}

std::vector<Extent> Volume::bmbt_extents(const Inode& inode) {
  const std::vector<uint8_t>& fork = inode.data_fork;
  const uint64_t ino = inode.ino;
  // The root sits in the inode: level, numrecs, then keys and pointers sized for the fork.
  if (fork.size() < 4 + 16) fail(ErrorCategory::corrupt, "xfs: inode {}: block map root does not fit its fork", ino);
  const uint32_t root_level = load_be16(fork.data()), root_records = load_be16(fork.data() + 2);
  const size_t root_max = (fork.size() - 4) / 16;
  if (root_level == 0 || root_level > kMaxBtreeLevels || root_records == 0 || root_records > root_max)
    fail(ErrorCategory::corrupt, "xfs: inode {}: block map root level {} with {} records", ino, root_level,
         root_records);
  const uint64_t limit = std::min(inode.extent_count, kMaxExtents);
  if (inode.extent_count > kMaxExtents)
    fail(ErrorCategory::unsupported, "xfs: inode {}: {} extents (more than {} are refused)", ino, inode.extent_count,
         kMaxExtents);

  const size_t header = long_header(sb_);
  std::vector<Extent> out;
  std::unordered_set<uint64_t> visited;
  std::function<void(uint64_t, uint32_t)> walk = [&](uint64_t fsbno, uint32_t level) {
    // A block map has at most one block per extent below the root.
    if (!visited.insert(fsbno).second || visited.size() > limit + kMaxBtreeLevels)
      fail(ErrorCategory::corrupt, "xfs: inode {}: block map reaches block {} twice or has more blocks than extents",
           ino, fsbno);
    const std::optional<uint64_t> offset = sb_.fsbno_offset(fsbno);
    if (!offset)
      fail(ErrorCategory::corrupt, "xfs: inode {}: block map points to block {} outside the volume", ino, fsbno);
    std::vector<uint8_t> block = read(*offset, sb_.block_size);
    const uint8_t* p = block.data();
    if (load_be32(p) != (sb_.crc ? kBmbtMagicV5 : kBmbtMagic) || load_be16(p + 4) != level)
      fail(ErrorCategory::corrupt, "xfs: inode {}: block map block {}: bad magic or level", ino, fsbno);
    if (sb_.crc && (!crc_ok(block, 64) || load_be64(p + 24) != *offset / 512 ||
                    std::memcmp(p + 40, sb_.meta_uuid, 16) != 0 || load_be64(p + 56) != ino))
      fail(ErrorCategory::corrupt, "xfs: inode {}: block map block {}: CRC or self-description mismatch", ino, fsbno);
    const uint32_t records = load_be16(p + 6);
    const uint32_t max = static_cast<uint32_t>((sb_.block_size - header) / 16);
    if (records > max || (level > 0 && records == 0))
      fail(ErrorCategory::corrupt, "xfs: inode {}: block map block {}: {} records", ino, fsbno, records);
    if (level == 0) {
      if (out.size() + records > limit)
        fail(ErrorCategory::corrupt, "xfs: inode {}: block map holds more than the {} extents the inode says", ino,
             inode.extent_count);
      for (uint32_t i = 0; i < records; ++i) out.push_back(unpack_extent(p + header + 16 * i));
      return;
    }
    for (uint32_t i = 0; i < records; ++i) walk(load_be64(p + header + 8 * max + 8 * i), level - 1);
  };
  for (uint32_t i = 0; i < root_records; ++i) walk(load_be64(fork.data() + 4 + 8 * root_max + 8 * i), root_level - 1);
  return out;
}

}  // namespace arche::volume::xfs
