// XFS on-disk structures, v4 and v5 ("XFS Algorithms & Data Structures", 3rd
// ed.), parsed from bytes. All integers are big endian; v5 CRCs are CRC32C,
// stored little endian. No I/O here: xfs_volume.* reads blocks, xfs_btree.* walks
// the btrees, xfs_dir.* parses directories.
//
//   the volume is cut into allocation groups (AGs) of sb_agblocks blocks each;
//   every AG begins with four sectors:
//     0 superblock (a copy in AGs 1..n-1)   1 AGF (free space: bnobt, cntbt roots)
//     2 AGI (inode btree roots)             3 AGFL (blocks reserved for btree growth)
//   block numbers come in three kinds:
//     fsbno (in inodes' extent maps) = agno << sb_agblklog | agbno
//     agbno (in AG btrees)           = block within its AG
//     daddr (v5 self-describing headers) = 512-byte sector of the volume
//   inode numbers: agno << (agblklog + inopblog) | agbno << inopblog | index in block
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace arche::volume::xfs {

constexpr uint32_t kSuperMagic = 0x58465342;  // "XFSB"
constexpr uint32_t kMaxBtreeLevels = 9;       // XFS_BTREE_MAXLEVELS: deeper is corruption
constexpr uint32_t kMaxSymlinkLength = 1024;
// Directories: data blocks live below 32 GiB of the directory's logical space,
// the hash-ordered leaf blocks from 32 GiB, the free-space index from 64 GiB.
constexpr uint64_t kDirLeafOffset = uint64_t{32} << 30;

struct Superblock {
  int version = 0;  // 4 or 5
  uint32_t block_size = 0;
  uint32_t block_log = 0;
  uint64_t data_blocks = 0;
  uint32_t ag_blocks = 0;
  uint32_t ag_count = 0;
  uint32_t ag_block_log = 0;  // bits of agbno in fsbno
  uint32_t sector_size = 0;
  uint32_t inode_size = 0;
  uint32_t inode_log = 0;
  uint32_t inodes_per_block_log = 0;
  uint32_t dir_block_log = 0;  // directory blocks are block_size << dir_block_log
  uint64_t root_ino = 0;
  uint64_t log_start = 0;  // fsbno of the internal log, 0 when external
  uint32_t log_blocks = 0;
  uint64_t realtime_blocks = 0;
  uint8_t uuid[16]{};
  uint8_t meta_uuid[16]{};  // what v5 metadata headers carry (sb_meta_uuid or sb_uuid)
  std::string label;
  bool crc = false;    // v5: metadata checksums and self-describing headers
  bool ftype = false;  // directory entries carry the file type
  bool sparse_inodes = false;
  bool bigtime = false;
  bool ascii_ci = false;  // names compare ASCII case-insensitively
  bool needs_repair = false;

  uint32_t dir_block_bytes() const { return block_size << dir_block_log; }
  uint32_t ag_length(uint32_t agno) const {
    return agno + 1 < ag_count ? ag_blocks : static_cast<uint32_t>(data_blocks - uint64_t{agno} * ag_blocks);
  }
  // Byte offset of a block given by AG and block within it.
  uint64_t ag_block_offset(uint32_t agno, uint32_t agbno) const {
    return (uint64_t{agno} * ag_blocks + agbno) << block_log;
  }
  // A fsbno that names a block inside the volume (with `count` blocks after it
  // in the same AG), as the byte offset of that block.
  std::optional<uint64_t> fsbno_offset(uint64_t fsbno, uint64_t count = 1) const;
  uint64_t inode_offset(uint64_t ino) const;  // of a valid_inode()
  bool valid_inode(uint64_t ino) const;
  uint32_t inode_ag(uint64_t ino) const { return static_cast<uint32_t>(ino >> (ag_block_log + inodes_per_block_log)); }
  uint32_t inode_agino(uint64_t ino) const {
    return static_cast<uint32_t>(ino & ((uint64_t{1} << (ag_block_log + inodes_per_block_log)) - 1));
  }
};

// Validates the primary superblock (sector_size bytes, at least 512). Format
// error when it is not XFS; unsupported for features a reader must understand
// and this one does not; corrupt when its geometry does not hold together.
Superblock parse_superblock(std::span<const uint8_t> sector);

// True when the CRC32C at crc_offset (little endian) matches the block with that
// field taken as zero.
bool crc_ok(std::span<const uint8_t> block, size_t crc_offset);

struct Agf {
  uint32_t length = 0;
  uint32_t bno_root = 0, bno_level = 0;
  uint32_t free_blocks = 0;
};
struct Agi {
  uint32_t length = 0;
  uint32_t root = 0, level = 0;
};
Agf parse_agf(std::span<const uint8_t> sector, const Superblock& sb, uint32_t agno);
Agi parse_agi(std::span<const uint8_t> sector, const Superblock& sb, uint32_t agno);

// Forks: how an inode's data or attribute fork is stored.
enum class ForkFormat : uint8_t { device = 0, local = 1, extents = 2, btree = 3 };

struct Inode {
  uint64_t ino = 0;
  uint16_t mode = 0;  // type and permission bits as in st_mode
  uint8_t version = 0;
  ForkFormat format = ForkFormat::extents;
  uint32_t uid = 0, gid = 0, nlink = 0;
  uint64_t size = 0;
  uint64_t extent_count = 0;  // of the data fork
  int64_t atime_ns = 0, mtime_ns = 0, ctime_ns = 0;
  std::optional<int64_t> crtime_ns;  // v3 inodes
  bool realtime = false;
  std::vector<uint8_t> data_fork;  // the literal area the data fork occupies
};

// Validates and decodes an inode (inode_size bytes read for number `ino`): magic,
// version, v5 CRC and self-identification, fork offsets, format against type.
Inode parse_inode(std::span<const uint8_t> raw, uint64_t ino, const Superblock& sb);

// One mapping of a fork: file blocks [offset, offset + count) live at fsbno `block`.
struct Extent {
  uint64_t offset = 0;  // in file system blocks
  uint64_t block = 0;   // fsbno
  uint32_t count = 0;
  bool unwritten = false;  // preallocated: reads as zeros
};
// Unpacks the 128-bit extent record (l0, l1 big endian).
Extent unpack_extent(const uint8_t* record);

// Inode timestamps: seconds + nanoseconds, or with bigtime nanoseconds since 1901.
int64_t timestamp_ns(const uint8_t* field, bool bigtime);

}  // namespace arche::volume::xfs
