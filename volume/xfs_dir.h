// XFS directory entries (version 2 directories, v4 "XD2?" and v5 "XD?3" blocks).
//
// A directory has one of these shapes; the entries themselves live in only two:
//   short form   entries packed in the inode's literal area (few entries)
//   block        one directory block: entries, then the hash leaf and a tail
//   leaf / node  data blocks of entries below 32 GiB of the directory's space,
//                hash-ordered leaf (and node) blocks above: an index of the same
//                entries, so listing and looking up read only the data blocks
//   btree        the same as leaf/node, with the block map in a bmbt
// Dot and dot-dot are implicit in short form and skipped in blocks.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "volume/xfs_format.h"

namespace arche::volume::xfs {

struct DirEntryRef {
  std::string name;
  uint64_t ino = 0;
};

// Entries of a short-form directory (the inode's data fork, di_size bytes).
void parse_shortform_dir(const Inode& dir, const Superblock& sb, std::vector<DirEntryRef>& out);

// Entries of one directory data block (dir_block_bytes() bytes) that starts at
// `daddr` (512-byte sector, for the v5 self-description). `index` is the block's
// number in the directory: a single-block directory's block is number 0.
void parse_dir_block(std::span<const uint8_t> block, uint64_t daddr, uint64_t index, const Inode& dir,
                     const Superblock& sb, std::vector<DirEntryRef>& out);

}  // namespace arche::volume::xfs
