#include "volume/xfs_dir.h"

#include <cstring>

#include "core/endian.h"
#include "core/error.h"

namespace arche::volume::xfs {
namespace {

constexpr uint32_t kBlockMagic = 0x58443242, kBlockMagicV5 = 0x58444233;  // "XD2B", "XDB3"
constexpr uint32_t kDataMagic = 0x58443244, kDataMagicV5 = 0x58444433;    // "XD2D", "XDD3"
constexpr uint16_t kFreeTag = 0xffff;
// Inode numbers in short-form entries are 4 or 8 bytes; 8-byte ones carry 56 bits.
constexpr uint64_t kMaxInodeNumber = (uint64_t{1} << 56) - 1;

void add_entry(std::string_view name, uint64_t ino, const Inode& dir, const Superblock& sb, uint64_t where,
               std::vector<DirEntryRef>& out) {
  if (name.find('/') != std::string_view::npos || name.find('\0') != std::string_view::npos)
    fail(ErrorCategory::corrupt, "xfs: directory inode {}: entry at {} has a name with '/' or NUL", dir.ino, where);
  if (!sb.valid_inode(ino))
    fail(ErrorCategory::corrupt, "xfs: directory inode {}: entry '{}' names inode {} outside the volume", dir.ino, name,
         ino);
  out.push_back({std::string(name), ino});
}

}  // namespace

void parse_shortform_dir(const Inode& dir, const Superblock& sb, std::vector<DirEntryRef>& out) {
  const uint8_t* f = dir.data_fork.data();
  const size_t size = dir.size;  // parse_inode checked it fits the fork
  if (size < 6) fail(ErrorCategory::corrupt, "xfs: directory inode {}: short-form header of {} bytes", dir.ino, size);
  const uint32_t count = f[0];
  const size_t ino_bytes = f[1] ? 8 : 4;
  const size_t ftype = sb.ftype ? 1 : 0;
  size_t pos = 2 + ino_bytes;  // after count, i8count and the parent's inode number
  for (uint32_t i = 0; i < count; ++i) {
    if (pos + 3 > size)
      fail(ErrorCategory::corrupt, "xfs: directory inode {}: short-form entry {} truncated", dir.ino, i);
    const size_t name_length = f[pos];
    const size_t entry = 3 + name_length + ftype + ino_bytes;  // namelen, offset (2), name, [ftype], inumber
    if (name_length == 0 || pos + entry > size)
      fail(ErrorCategory::corrupt, "xfs: directory inode {}: short-form entry {} of {} bytes", dir.ino, i, entry);
    const uint8_t* number = f + pos + 3 + name_length + ftype;
    const uint64_t ino = ino_bytes == 8 ? load_be64(number) & kMaxInodeNumber : load_be32(number);
    add_entry({reinterpret_cast<const char*>(f + pos + 3), name_length}, ino, dir, sb, pos, out);
    pos += entry;
  }
}

void parse_dir_block(std::span<const uint8_t> b, uint64_t daddr, uint64_t index, const Inode& dir, const Superblock& sb,
                     std::vector<DirEntryRef>& out) {
  const uint8_t* p = b.data();
  const uint32_t magic = load_be32(p);
  const bool single = magic == (sb.crc ? kBlockMagicV5 : kBlockMagic);
  if (!single && magic != (sb.crc ? kDataMagicV5 : kDataMagic))
    fail(ErrorCategory::corrupt, "xfs: directory inode {}: block {} is not a directory data block", dir.ino, index);
  if (single && index != 0)
    fail(ErrorCategory::corrupt, "xfs: directory inode {}: single-block header in block {}", dir.ino, index);
  size_t header = 16;  // magic, three best-free slots
  if (sb.crc) {
    // magic, crc, blkno, lsn, uuid, owner (48 bytes), best-free slots, pad: 64.
    if (!crc_ok(b, 4) || load_be64(p + 8) != daddr || std::memcmp(p + 24, sb.meta_uuid, 16) != 0 ||
        load_be64(p + 40) != dir.ino)
      fail(ErrorCategory::corrupt, "xfs: directory inode {}: block {}: CRC or self-description mismatch", dir.ino,
           index);
    header = 64;
  }
  size_t end = b.size();
  if (single) {
    // The block ends in its hash leaf (count entries of 8 bytes) and a tail (count, stale).
    const uint64_t leaf_entries = load_be32(p + b.size() - 8);
    if (leaf_entries * 8 + 8 > b.size() - header)
      fail(ErrorCategory::corrupt, "xfs: directory inode {}: block tail claims {} leaf entries", dir.ino, leaf_entries);
    end = b.size() - 8 - static_cast<size_t>(leaf_entries) * 8;
  }
  const size_t ftype = sb.ftype ? 1 : 0;
  for (size_t pos = header; pos < end;) {
    if (pos + 8 > end)
      fail(ErrorCategory::corrupt, "xfs: directory inode {}: block {}: entry at {} truncated", dir.ino, index, pos);
    if (load_be16(p + pos) == kFreeTag) {
      const size_t length = load_be16(p + pos + 2);
      if (length < 8 || length % 8 || pos + length > end)
        fail(ErrorCategory::corrupt, "xfs: directory inode {}: block {}: free entry at {} of {} bytes", dir.ino, index,
             pos, length);
      pos += length;
      continue;
    }
    // inumber (8), namelen, name, [ftype], padding to 8, tag (2): the entry's own offset.
    const size_t name_length = p[pos + 8];
    const size_t entry = (8 + 1 + name_length + ftype + 2 + 7) & ~size_t{7};
    if (name_length == 0 || pos + entry > end || load_be16(p + pos + entry - 2) != pos)
      fail(ErrorCategory::corrupt, "xfs: directory inode {}: block {}: bad entry at {}", dir.ino, index, pos);
    const std::string_view name(reinterpret_cast<const char*>(p + pos + 9), name_length);
    if (name != "." && name != "..") add_entry(name, load_be64(p + pos), dir, sb, pos, out);
    pos += entry;
  }
}

}  // namespace arche::volume::xfs
