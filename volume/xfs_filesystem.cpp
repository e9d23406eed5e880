// The XFS v4/v5 reader (docs/volume.md "XFS"): path lookup through the
// directories, file data through extent maps (holes and unwritten extents read as
// zeros), symlinks, and the used ranges for P2V from the free-space btrees.
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "core/endian.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "volume/reader_support.h"
#include "volume/readers.h"
#include "volume/xfs_dir.h"
#include "volume/xfs_format.h"
#include "volume/xfs_volume.h"

namespace arche::volume {
namespace {

using xfs::Extent;
using xfs::ForkFormat;
using xfs::Inode;

constexpr uint32_t kSymlinkMagic = 0x58534c4d;  // "XSLM": v5 remote symlink block header
constexpr size_t kSymlinkHeader = 56;

FileType type_of(uint16_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG: return FileType::regular;
    case S_IFDIR: return FileType::directory;
    case S_IFLNK: return FileType::symlink;
    case S_IFBLK: return FileType::block_device;
    case S_IFCHR: return FileType::char_device;
    case S_IFIFO: return FileType::fifo;
    case S_IFSOCK: return FileType::socket;
  }
  return FileType::unknown;
}

struct XfsDirectory {
  std::vector<xfs::DirEntryRef> entries;
  std::unordered_map<std::string, uint64_t> index;  // name (folded when ascii-ci) -> inode
};

// An inode with its data fork's block map, checked: sorted, non-overlapping,
// every extent inside one AG.
struct Mapped {
  Inode inode;
  std::vector<Extent> extents;
};

class XfsFilesystem final : public Filesystem {
 public:
  XfsFilesystem(std::shared_ptr<image::BlockDevice> device, const xfs::Superblock& sb)
      : device_(std::move(device)), sb_(sb), volume_(*device_, sb_) {
    // The root must be a directory: catches most garbage before any walk.
    if (!S_ISDIR(inode(sb_.root_ino).mode))
      fail(ErrorCategory::corrupt, "xfs: root inode {} is not a directory", sb_.root_ino);
  }

  std::string type() const override { return "xfs"; }
  std::string label() const override { return sb_.label; }
  std::string uuid() const override {
    const uint8_t* u = sb_.uuid;
    std::string out;
    for (int i = 0; i < 16; ++i) out += fmt::format("{}{:02x}", i == 4 || i == 6 || i == 8 || i == 10 ? "-" : "", u[i]);
    return out;
  }
  uint64_t size_bytes() const override { return sb_.data_blocks << sb_.block_log; }

  uint64_t used_bytes() const override {
    std::lock_guard lock(mutex_);
    if (!used_bytes_) {
      uint64_t used = 0;
      for (uint32_t agno = 0; agno < sb_.ag_count; ++agno) {
        interrupt::check();
        const xfs::Agf agf = volume_.agf(agno);
        used += agf.length - agf.free_blocks;
      }
      used_bytes_ = used << sb_.block_log;
    }
    return *used_bytes_;
  }

  FileStat stat(std::string_view path) override {
    std::lock_guard lock(mutex_);
    return stat_of(inode(resolve(path)));
  }

  std::vector<DirEntry> list(std::string_view path) override {
    std::lock_guard lock(mutex_);
    std::shared_ptr<const XfsDirectory> dir = directory(resolve(path), path);
    std::vector<DirEntry> out;
    out.reserve(dir->entries.size());
    for (const xfs::DirEntryRef& e : dir->entries) {
      if (out.size() % 4096 == 4095) interrupt::check();
      // One damaged inode must not hide its siblings: it is listed as "unknown",
      // and stat() or read() of it gives the error.
      FileStat st;
      st.inode = e.ino;
      try {
        st = stat_of(inode(e.ino));
      } catch (const Error& error) {
        if (error.category() != ErrorCategory::corrupt) throw;
      }
      out.push_back({e.name, st});
    }
    return out;
  }

  size_t read(std::string_view path, uint64_t offset, std::span<uint8_t> out) override {
    std::lock_guard lock(mutex_);
    std::shared_ptr<const Mapped> file = mapped(resolve(path));
    const Inode& in = file->inode;
    if (!S_ISREG(in.mode)) fail(ErrorCategory::usage, "xfs: {}: not a regular file", path);
    if (in.realtime) fail(ErrorCategory::unsupported, "xfs: {}: data on the realtime device is not read", path);
    if (offset >= in.size || out.empty()) return 0;
    const uint64_t n = std::min<uint64_t>(out.size(), in.size - offset);
    read_mapped(*file, offset, out.first(n));
    return n;
  }

  std::string readlink(std::string_view path) override {
    std::lock_guard lock(mutex_);
    std::shared_ptr<const Mapped> file = mapped(resolve(path));
    const Inode& in = file->inode;
    if (!S_ISLNK(in.mode)) fail(ErrorCategory::usage, "xfs: {}: not a symbolic link", path);
    if (in.size == 0 || in.size > xfs::kMaxSymlinkLength)
      fail(ErrorCategory::corrupt, "xfs: {}: symbolic link of {} bytes", path, in.size);
    if (in.format == ForkFormat::local) return std::string(reinterpret_cast<const char*>(in.data_fork.data()), in.size);
    return remote_symlink(*file, path);
  }

  // Everything the free-space btrees do not list as free: metadata (AG headers,
  // btrees, inodes, the internal log), file data, and the few blocks each AG's
  // free list (AGFL) keeps for btree growth: free, but no btree confirms that
  // list, so copying them is the safe side.
  std::vector<ByteRange> used_ranges() override {
    std::lock_guard lock(mutex_);
    std::vector<ByteRange> ranges;
    for (uint32_t agno = 0; agno < sb_.ag_count; ++agno) {
      interrupt::check();
      const uint32_t length = volume_.agf(agno).length;
      uint32_t at = 0;
      for (const xfs::FreeExtent& e : volume_.free_extents(agno)) {
        if (e.start > at) ranges.push_back(ag_range(agno, at, e.start - at));
        at = e.start + e.count;
      }
      if (at < length) ranges.push_back(ag_range(agno, at, length - at));
    }
    const uint64_t end = device_->size();
    for (ByteRange& r : ranges) r.length = r.offset >= end ? 0 : std::min(r.length, end - r.offset);
    merge_ranges(ranges);
    return ranges;
  }

 private:
  ByteRange ag_range(uint32_t agno, uint32_t agbno, uint32_t count) const {
    return {sb_.ag_block_offset(agno, agbno), uint64_t{count} << sb_.block_log};
  }

  FileStat stat_of(const Inode& in) const {
    FileStat st;
    st.type = type_of(in.mode);
    st.mode = in.mode & 07777;
    st.uid = in.uid;
    st.gid = in.gid;
    st.nlink = in.nlink;
    st.size = in.size;
    st.inode = in.ino;
    st.atime_ns = in.atime_ns;
    st.mtime_ns = in.mtime_ns;
    st.ctime_ns = in.ctime_ns;
    st.btime_ns = in.crtime_ns;
    return st;
  }

  // Reads and checks an inode a directory (or the superblock) names.
  Inode inode(uint64_t ino) {
    if (auto* cached = mapped_.find(ino)) return (*cached)->inode;
    if (!sb_.valid_inode(ino)) fail(ErrorCategory::corrupt, "xfs: inode number {} outside the volume", ino);
    if (!volume_.inode_allocated(ino))
      fail(ErrorCategory::corrupt, "xfs: inode {} is named by a directory but free in the inode btree", ino);
    std::vector<uint8_t> raw = volume_.read(sb_.inode_offset(ino), sb_.inode_size);
    return xfs::parse_inode(raw, ino, sb_);
  }

  std::shared_ptr<const Mapped> mapped(uint64_t ino) {
    if (auto* cached = mapped_.find(ino)) return *cached;
    auto m = std::make_shared<Mapped>();
    m->inode = inode(ino);
    if (m->inode.format == ForkFormat::extents) {
      for (uint64_t i = 0; i < m->inode.extent_count; ++i)
        m->extents.push_back(xfs::unpack_extent(m->inode.data_fork.data() + 16 * i));
    } else if (m->inode.format == ForkFormat::btree) {
      m->extents = volume_.bmbt_extents(m->inode);
    }
    uint64_t end = 0;
    const uint64_t max_blocks = uint64_t{1} << (63 - sb_.block_log);  // files end below 2^63 bytes
    for (const Extent& e : m->extents) {
      if (e.count == 0 || e.offset < end || e.offset + e.count > max_blocks || !sb_.fsbno_offset(e.block, e.count))
        fail(ErrorCategory::corrupt, "xfs: inode {}: extent {}+{} at block {} overlaps another or leaves its AG", ino,
             e.offset, e.count, e.block);
      end = e.offset + e.count;
    }
    mapped_.insert(ino, m);
    return m;
  }

  // Copies file bytes [offset, offset + out.size()) through the block map.
  void read_mapped(const Mapped& file, uint64_t offset, std::span<uint8_t> out) {
    const std::vector<Extent>& extents = file.extents;
    const uint64_t block_bytes = sb_.block_size;
    uint64_t pos = offset;
    const uint64_t end = offset + out.size();
    while (pos < end) {
      const uint64_t block = pos >> sb_.block_log;
      auto next = std::upper_bound(extents.begin(), extents.end(), block,
                                   [](uint64_t b, const Extent& e) { return b < e.offset; });
      uint64_t n;
      if (next != extents.begin() && block < std::prev(next)->offset + std::prev(next)->count) {
        const Extent& e = *std::prev(next);
        n = std::min(end, (e.offset + e.count) * block_bytes) - pos;
        std::span<uint8_t> dst = out.subspan(pos - offset, n);
        if (e.unwritten) {
          std::fill(dst.begin(), dst.end(), 0);
        } else {
          volume_.read(*sb_.fsbno_offset(e.block) + (pos - e.offset * block_bytes), dst);
        }
      } else {  // a hole: zeros up to the next extent
        const uint64_t hole_end = next == extents.end() ? end : std::min(end, next->offset * block_bytes);
        n = hole_end - pos;
        std::fill_n(out.begin() + static_cast<ptrdiff_t>(pos - offset), n, 0);
      }
      pos += n;
    }
  }

  // A remote symlink's target, one piece per extent (the kernel reads each
  // mapping as one buffer: on v5 a header, checked and CRC'd over the whole
  // extent, then the bytes).
  std::string remote_symlink(const Mapped& file, std::string_view path) {
    const Inode& in = file.inode;
    std::string target;
    for (const Extent& e : file.extents) {
      if (target.size() == in.size) break;
      // No target needs more than ceil(1024 / (512 - 56)) = 3 blocks.
      if (e.count > 3) fail(ErrorCategory::corrupt, "xfs: {}: symbolic link extent of {} blocks", path, e.count);
      const uint64_t at = *sb_.fsbno_offset(e.block);
      std::vector<uint8_t> buf = volume_.read(at, uint64_t{e.count} << sb_.block_log);
      size_t from = 0;
      uint64_t bytes = std::min<uint64_t>(buf.size(), in.size - target.size());
      if (sb_.crc) {
        // magic, offset, bytes, crc, uuid, owner, blkno, lsn: 56 bytes, then the target's bytes.
        const uint8_t* p = buf.data();
        bytes = std::min<uint64_t>(buf.size() - kSymlinkHeader, in.size - target.size());
        if (load_be32(p) != kSymlinkMagic || load_be32(p + 4) != target.size() || load_be32(p + 8) != bytes ||
            !xfs::crc_ok(buf, 12) || std::memcmp(p + 16, sb_.meta_uuid, 16) != 0 || load_be64(p + 32) != in.ino ||
            load_be64(p + 40) != at / 512)
          fail(ErrorCategory::corrupt, "xfs: {}: symbolic link block {} is damaged", path, e.block);
        from = kSymlinkHeader;
      }
      target.append(reinterpret_cast<const char*>(buf.data() + from), bytes);
    }
    if (target.size() != in.size)
      fail(ErrorCategory::corrupt, "xfs: {}: symbolic link blocks hold {} of its {} bytes", path, target.size(),
           in.size);
    return target;
  }

  // The inode a path names; every directory on the way is checked not to be its
  // own ancestor, so a crafted loop ends in an error, not in an endless walk.
  uint64_t resolve(std::string_view path) {
    uint64_t ino = sb_.root_ino;
    std::vector<uint64_t> ancestors{ino};
    std::string walked;
    for (const std::string& part : split_path(path, "xfs")) {
      std::shared_ptr<const XfsDirectory> dir = directory(ino, walked.empty() ? "/" : walked);
      walked += "/" + part;
      auto it = dir->index.find(sb_.ascii_ci ? fold_ascii_case(part) : part);
      if (it == dir->index.end()) fail(ErrorCategory::not_found, "xfs: {}: no such file or directory", walked);
      ino = it->second;
      if (std::find(ancestors.begin(), ancestors.end(), ino) != ancestors.end())
        fail(ErrorCategory::corrupt, "xfs: {}: names inode {}, a directory above it (a loop)", walked, ino);
      ancestors.push_back(ino);
    }
    return ino;
  }

  std::shared_ptr<const XfsDirectory> directory(uint64_t ino, std::string_view path) {
    if (auto* cached = directories_.find(ino)) return *cached;
    std::shared_ptr<const Mapped> file = mapped(ino);
    const Inode& in = file->inode;
    if (!S_ISDIR(in.mode)) fail(ErrorCategory::usage, "xfs: {}: not a directory", path);
    auto dir = std::make_shared<XfsDirectory>();
    if (in.format == ForkFormat::local) {
      xfs::parse_shortform_dir(in, sb_, dir->entries);
    } else {
      read_dir_blocks(*file, dir->entries);
    }
    for (const xfs::DirEntryRef& e : dir->entries)
      dir->index.emplace(sb_.ascii_ci ? fold_ascii_case(e.name) : e.name, e.ino);
    directories_.insert(ino, dir);
    return dir;
  }

  // The data blocks of a block, leaf, node or btree directory: those of its
  // mapped blocks that lie below the leaf offset, one directory block at a time.
  void read_dir_blocks(const Mapped& file, std::vector<xfs::DirEntryRef>& out) {
    const uint64_t dir_blocks_log = sb_.dir_block_log;
    const uint64_t data_end = xfs::kDirLeafOffset >> sb_.block_log;
    // A real directory maps no more data blocks than its size covers.
    uint64_t budget = std::min<uint64_t>(file.inode.size, device_->size()) / sb_.dir_block_bytes() + 1;
    std::vector<uint8_t> block(sb_.dir_block_bytes());
    for (const Extent& e : file.extents) {
      // The directory blocks that begin in this extent (one may continue in the next).
      const uint64_t round_up = (uint64_t{1} << dir_blocks_log) - 1;
      const uint64_t first = (e.offset + round_up) >> dir_blocks_log;
      const uint64_t last = (std::min<uint64_t>(e.offset + e.count, data_end) + round_up) >> dir_blocks_log;
      for (uint64_t index = first; index < last; ++index) {
        if (budget-- == 0)
          fail(ErrorCategory::corrupt, "xfs: directory inode {}: more data blocks than its size of {} bytes",
               file.inode.ino, file.inode.size);
        interrupt::check();
        read_mapped(file, index * sb_.dir_block_bytes(), block);
        const uint64_t first_block = e.block + ((index << dir_blocks_log) - e.offset);
        const uint64_t daddr = *sb_.fsbno_offset(first_block) / 512;
        xfs::parse_dir_block(block, daddr, index, file.inode, sb_, out);
      }
    }
  }

  std::shared_ptr<image::BlockDevice> device_;
  xfs::Superblock sb_;
  mutable xfs::Volume volume_;
  mutable std::mutex mutex_;
  mutable std::optional<uint64_t> used_bytes_;
  LruCache<uint64_t, std::shared_ptr<const Mapped>> mapped_{64};
  LruCache<uint64_t, std::shared_ptr<const XfsDirectory>> directories_{32};
};

}  // namespace

std::unique_ptr<Filesystem> open_xfs(std::shared_ptr<image::BlockDevice> device) {
  if (device->size() < 512) fail(ErrorCategory::format, "xfs: volume smaller than a superblock");
  std::vector<uint8_t> sector(512);
  device->read(0, sector);
  if (load_be32(sector.data()) != xfs::kSuperMagic) fail(ErrorCategory::format, "xfs: no XFS superblock");
  const uint32_t sector_size = load_be16(sector.data() + 102);
  if (sector_size > 512 && sector_size <= 32768 && sector_size <= device->size()) {
    sector.resize(sector_size);
    device->read(0, sector);
  }
  const xfs::Superblock sb = xfs::parse_superblock(sector);
  return std::make_unique<XfsFilesystem>(std::move(device), sb);
}

}  // namespace arche::volume
