// Read-only file system readers over any BlockDevice (docs/volume.md): the one
// interface that ext2/3/4 (libext2fs), NTFS (libntfs-3g), FAT and XFS (our own
// readers) implement. Used by single-file restore and `backup mount` (list, stat,
// read) and by P2V (used_ranges: which bytes of the volume hold anything).
//
// The volume is written by a guest and is treated as hostile: every reader
// validates what it parses and fails with a format/corrupt error naming the
// structure, never reads outside the device, never loops forever. Readers that
// run inside the sandbox child (sandbox.h) see the device only through block reads.
//
// Paths are absolute within the file system, '/'-separated ("/home/kunde/a.txt");
// names are returned as UTF-8 (NTFS/FAT long names converted from UTF-16).
// Symbolic links are never followed by stat()/list(): the caller decides.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "image/block_device.h"

namespace arche::volume {

enum class FileType : uint8_t { regular, directory, symlink, block_device, char_device, fifo, socket, unknown };

const char* to_string(FileType type);

struct FileStat {
  FileType type = FileType::unknown;
  uint64_t size = 0;   // bytes of the (unnamed) data stream; target length for symlinks
  uint32_t mode = 0;   // permission bits (07777); readers without them synthesise 0644/0755
  uint32_t uid = 0, gid = 0;
  uint32_t nlink = 1;
  uint64_t inode = 0;  // the file system's own number (MFT record, inode, directory-entry position)
  int64_t atime_ns = 0, mtime_ns = 0, ctime_ns = 0;  // unix epoch, nanoseconds
  std::optional<int64_t> btime_ns;                    // creation time where the file system has one
};

// FileStat's times cover the years 1677 to 2262; a file system's wider ones (ext4
// reaches 2446, NTFS 1601 to 30828, a crafted inode anything) become the nearest
// time there is instead of wrapping around.
inline int64_t saturated_ns(__int128 ns) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max(), kMin = std::numeric_limits<int64_t>::min();
  return ns > kMax ? kMax : ns < kMin ? kMin : static_cast<int64_t>(ns);
}

struct DirEntry {
  std::string name;
  FileStat stat;
};

// A run of bytes of the volume, relative to the volume's start.
struct ByteRange {
  uint64_t offset = 0;
  uint64_t length = 0;
};

class Filesystem {
 public:
  virtual ~Filesystem() = default;

  // "ext4", "ext3", "ext2", "xfs", "ntfs", "fat12", "fat16", "fat32".
  virtual std::string type() const = 0;
  virtual std::string label() const { return {}; }
  virtual std::string uuid() const { return {}; }  // as blkid prints it
  // Bytes of the volume this file system spans, and how many of them are in use.
  virtual uint64_t size_bytes() const = 0;
  virtual uint64_t used_bytes() const = 0;
  // What the reader noticed while opening: a journal replayed in memory, checksums
  // that did not match, a volume shorter than the file system. For listings.
  virtual std::vector<std::string> notes() const { return {}; }

  // not_found when the path does not exist; usage error when a component is not a directory.
  virtual FileStat stat(std::string_view path) = 0;
  // The entries of a directory, without "." and "..".
  virtual std::vector<DirEntry> list(std::string_view path) = 0;
  // Reads up to out.size() bytes of a regular file at offset; returns the bytes read
  // (short only at the end of the file). Sparse parts read as zeros.
  virtual size_t read(std::string_view path, uint64_t offset, std::span<uint8_t> out) = 0;
  virtual std::string readlink(std::string_view path) = 0;
  // Extended attributes / named data streams where the file system has them.
  virtual std::vector<std::string> streams(std::string_view path) { (void)path; return {}; }

  // The byte ranges of the volume that hold file data or file-system metadata,
  // sorted and merged; everything else is free space (P2V leaves it as holes).
  virtual std::vector<ByteRange> used_ranges() = 0;
};

}  // namespace arche::volume
