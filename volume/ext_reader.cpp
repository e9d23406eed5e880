// ext2/3/4 through libext2fs (open_ext in readers.h). libext2fs parses; this file
// walks paths, turns inodes into FileStat, reads file data in runs of contiguous
// blocks, and replays a journal that needs recovery into the overlay first.
#include <mutex>
#include <vector>

#include "core/error.h"
#include "core/units.h"
#include "image/foreign/ids.h"
#include "volume/ext_io.h"
#include "volume/ext_journal.h"
#include "volume/probe.h"
#include "volume/readers.h"
#include "volume/volume_path.h"

namespace arche::volume {

namespace {

constexpr uint64_t kMaxRunBytes = 4 * MiB;  // one device read at most
constexpr size_t kMaxSymlink = 65536;

bool is_csum_error(errcode_t e) {
  return e == EXT2_ET_INODE_CSUM_INVALID || e == EXT2_ET_INODE_BITMAP_CSUM_INVALID ||
         e == EXT2_ET_EXTENT_CSUM_INVALID || e == EXT2_ET_DIR_CSUM_INVALID || e == EXT2_ET_EXT_ATTR_CSUM_INVALID ||
         e == EXT2_ET_SB_CSUM_INVALID || e == EXT2_ET_BLOCK_BITMAP_CSUM_INVALID;
}

FileType type_of(uint16_t mode) {
  switch (mode & 0170000) {
    case 0100000: return FileType::regular;
    case 0040000: return FileType::directory;
    case 0120000: return FileType::symlink;
    case 0060000: return FileType::block_device;
    case 0020000: return FileType::char_device;
    case 0010000: return FileType::fifo;
    case 0140000: return FileType::socket;
    default: return FileType::unknown;
  }
}

class ExtFilesystem final : public Filesystem {
 public:
  explicit ExtFilesystem(std::shared_ptr<image::BlockDevice> device) : state_(std::make_shared<ext::IoState>()) {
    state_->device = std::move(device);
    open_fs();
    if (ext2fs_has_feature_journal_needs_recovery(fs_->super)) recover();
    const uint64_t fs_bytes = ext2fs_blocks_count(fs_->super) * fs_->blocksize;
    if (fs_bytes > state_->device->size())
      notes_.push_back(fmt::format("the file system claims {} bytes but its volume has {}: the image may be cut off",
                                   fs_bytes, state_->device->size()));
  }

  ~ExtFilesystem() override {
    if (fs_) ext2fs_free(fs_);
  }

  std::string type() const override {
    const auto* sb = fs_->super;
    return ext_type_name(sb->s_feature_compat, sb->s_feature_incompat, sb->s_feature_ro_compat);
  }
  std::string label() const override {
    const char* n = reinterpret_cast<const char*>(fs_->super->s_volume_name);
    return std::string(n, strnlen(n, sizeof fs_->super->s_volume_name));
  }
  std::string uuid() const override {
    image::foreign::Id128 id;
    std::memcpy(id.data(), fs_->super->s_uuid, 16);
    return image::foreign::uuid_string(id);
  }
  uint64_t size_bytes() const override { return ext2fs_blocks_count(fs_->super) * fs_->blocksize; }
  uint64_t used_bytes() const override {
    const uint64_t total = ext2fs_blocks_count(fs_->super), free = ext2fs_free_blocks_count(fs_->super);
    return (free < total ? total - free : 0) * fs_->blocksize;
  }
  std::vector<std::string> notes() const override { return notes_; }

  FileStat stat(std::string_view path) override {
    std::lock_guard lock(mutex_);
    return tolerant([&] { return stat_of(lookup(path)); });
  }

  std::vector<DirEntry> list(std::string_view path) override {
    std::lock_guard lock(mutex_);
    return tolerant([&] { return list_dir(path); });
  }

  size_t read(std::string_view path, uint64_t offset, std::span<uint8_t> out) override {
    std::lock_guard lock(mutex_);
    return tolerant([&] {
      const Node& n = cached_lookup(path);
      if ((n.inode.i_mode & 0170000) != 0100000) fail(ErrorCategory::usage, "{}: not a regular file", show(path));
      return read_data(n, path, offset, out);
    });
  }

  std::string readlink(std::string_view path) override {
    std::lock_guard lock(mutex_);
    return tolerant([&] {
      Node n = lookup(path);
      if ((n.inode.i_mode & 0170000) != 0120000) fail(ErrorCategory::usage, "{}: not a symbolic link", show(path));
      return link_target(n, path);
    });
  }

  std::vector<ByteRange> used_ranges() override {
    std::lock_guard lock(mutex_);
    return tolerant([&] { return used(); });
  }

 private:
  std::vector<DirEntry> list_dir(std::string_view path) {
    Node dir = lookup(path);
    if ((dir.inode.i_mode & 0170000) != 0040000) fail(ErrorCategory::usage, "{}: not a directory", show(path));
    refuse_encrypted(dir, path);
    struct Found {
      std::string name;
      ext2_ino_t ino;
    };
    std::vector<Found> found;
    auto callback = [](ext2_ino_t, int, struct ext2_dir_entry* d, int, int, char*, void* priv) -> int {
      auto* out = static_cast<std::vector<Found>*>(priv);
      const int len = ext2fs_dirent_name_len(d);
      std::string name(d->name, static_cast<size_t>(len));
      if (d->inode != 0 && name != "." && name != "..") out->push_back({std::move(name), d->inode});
      return 0;
    };
    errcode_t err = ext2fs_dir_iterate2(fs_, dir.ino, 0, nullptr, callback, &found);
    if (err) fail_ext(err, show(path));
    std::vector<DirEntry> out;
    out.reserve(found.size());
    for (Found& f : found) {
      DirEntry e;
      e.name = std::move(f.name);
      Node child;
      child.ino = f.ino;
      if (read_inode(child)) {
        e.stat = stat_of(child);
      } else {
        e.stat.inode = f.ino;  // an inode that cannot be read: listed as unknown
      }
      out.push_back(std::move(e));
    }
    return out;
  }

  std::vector<ByteRange> used() {
    if (!fs_->block_map) {
      errcode_t err = ext2fs_read_block_bitmap(fs_);
      if (err) fail_ext(err, "block bitmaps");
    }
    const uint64_t bs = fs_->blocksize;
    std::vector<ByteRange> out;
    const blk64_t first = fs_->super->s_first_data_block, last = ext2fs_blocks_count(fs_->super) - 1;
    if (first > 0) out.push_back({0, first * bs});  // the boot block before the first group (1 KiB blocks)
    blk64_t at = first;
    while (at <= last) {
      blk64_t set = 0, clear = 0;
      if (ext2fs_find_first_set_block_bitmap2(fs_->block_map, at, last, &set) != 0) break;
      if (ext2fs_find_first_zero_block_bitmap2(fs_->block_map, set, last, &clear) != 0) clear = last + 1;
      if (!out.empty() && out.back().offset + out.back().length == set * bs)
        out.back().length += (clear - set) * bs;
      else
        out.push_back({set * bs, (clear - set) * bs});
      at = clear;
    }
    return out;
  }

  struct Node {
    ext2_ino_t ino = 0;
    struct ext2_inode_large inode {};
  };

  static std::string show(std::string_view path) { return normalize_path(path); }

  // Thrown for a checksum mismatch while checksums are still checked; tolerant()
  // turns them off and retries.
  struct ChecksumError : Error {
    using Error::Error;
  };

  [[noreturn]] void fail_ext(errcode_t err, const std::string& what) const {
    std::string text = ext::error_text(err);
    if (is_csum_error(err) && !(flags_extra_ & EXT2_FLAG_IGNORE_CSUM_ERRORS))
      throw ChecksumError(ErrorCategory::corrupt, fmt::format("{}: {}: {}", type_or_ext(), what, text));
    if (!state_->last_error.empty() && (err == EIO || err == EXT2_ET_SHORT_READ)) text += " (" + state_->last_error + ")";
    ErrorCategory c = err == EIO ? ErrorCategory::io : err == EXT2_ET_NO_MEMORY ? ErrorCategory::no_space : ErrorCategory::corrupt;
    if (err == EXT2_ET_UNSUPP_FEATURE || err == EXT2_ET_RO_UNSUPP_FEATURE) c = ErrorCategory::unsupported;
    fail(c, "{}: {}: {}", type_or_ext(), what, text);
  }

  std::string type_or_ext() const { return fs_ ? type() : "ext"; }

  void open_fs() {
    const int flags = EXT2_FLAG_64BITS | EXT2_FLAG_SKIP_MMP;
    errcode_t err = ext::open_filesystem(state_, flags | flags_extra_, &fs_, superblock_, block_size_);
    if (err && is_csum_error(err)) {
      flags_extra_ |= EXT2_FLAG_IGNORE_CSUM_ERRORS;
      notes_.push_back("metadata checksums do not match (" + ext::error_text(err) + "); read anyway");
      err = ext::open_filesystem(state_, flags | flags_extra_, &fs_, superblock_, block_size_);
    }
    if (err && superblock_ == 0 && (err == EXT2_ET_BAD_MAGIC || err == EXT2_ET_CORRUPT_SUPERBLOCK)) {
      // The primary superblock is gone: try the backup in block group 1, as e2fsck does.
      for (unsigned bs : {1024u, 2048u, 4096u, 65536u}) {
        const blk64_t backup = bs == 1024 ? 8193 : 8 * bs;
        if (backup * bs >= state_->device->size()) continue;
        if (ext::open_filesystem(state_, flags | flags_extra_, &fs_, backup, bs) == 0) {
          superblock_ = backup;
          block_size_ = bs;
          notes_.push_back(fmt::format("the primary superblock is damaged; the backup at block {} ({}-byte blocks) "
                                       "is used",
                                       backup, bs));
          return;
        }
      }
    }
    if (err == EXT2_ET_BAD_MAGIC) fail(ErrorCategory::format, "not an ext2/3/4 file system");
    if (err) {
      fs_ = nullptr;
      fail_ext(err, "cannot open");
    }
  }

  // Runs `step`; when it fails on a checksum, reads on without checksums (with a
  // note) and runs it once more: a restore wants the data, mismatch or not.
  template <typename Step>
  auto tolerant(Step&& step) -> decltype(step()) {
    try {
      return step();
    } catch (const ChecksumError&) {
      fs_->flags |= EXT2_FLAG_IGNORE_CSUM_ERRORS;
      flags_extra_ |= EXT2_FLAG_IGNORE_CSUM_ERRORS;
      cached_path_.clear();
      notes_.push_back("metadata checksums do not match; read anyway");
      return step();
    }
  }

  void recover() {
    if (!ext2fs_has_feature_journal(fs_->super)) {
      notes_.push_back("the superblock asks for journal recovery but there is no journal");
      return;
    }
    try {
      ext::ReplayResult r = ext::replay_journal(fs_);
      notes_.insert(notes_.end(), r.notes.begin(), r.notes.end());
      notes_.push_back(fmt::format("the journal needed recovery: {} transaction{} ({} blocks) replayed in memory",
                                   r.transactions, r.transactions == 1 ? "" : "s", r.blocks));
    } catch (const Error& e) {
      if (e.category() == ErrorCategory::io) throw;
      state_->overlay.clear();  // never half a replay
      notes_.push_back(std::string("the journal needs recovery but cannot be replayed (") + e.what() +
                       "); the file system is read as it is on disk and may be inconsistent");
      return;
    }
    // Reopen, so the superblock and group descriptors are read back with the
    // replayed blocks.
    ext2fs_free(fs_);
    fs_ = nullptr;
    open_fs();
  }

  bool read_inode(Node& n) {
    if (n.ino == 0 || n.ino > fs_->super->s_inodes_count) return false;
    return ext2fs_read_inode_full(fs_, n.ino, reinterpret_cast<struct ext2_inode*>(&n.inode), sizeof n.inode) == 0;
  }

  void load(Node& n, std::string_view path) {
    if (n.ino == 0 || n.ino > fs_->super->s_inodes_count)
      fail(ErrorCategory::corrupt, "{}: {}: inode {} does not exist", type(), show(path), n.ino);
    errcode_t err = ext2fs_read_inode_full(fs_, n.ino, reinterpret_cast<struct ext2_inode*>(&n.inode), sizeof n.inode);
    if (err) fail_ext(err, fmt::format("{} (inode {})", show(path), n.ino));
  }

  void refuse_encrypted(const Node& n, std::string_view path) const {
    if (n.inode.i_flags & EXT4_ENCRYPT_FL)
      fail(ErrorCategory::unsupported, "{}: {} is encrypted (fscrypt); arche cannot read it", type(), show(path));
  }

  // Walks the path one name at a time; symbolic links are not followed.
  Node lookup(std::string_view path) {
    const std::string norm = normalize_path(path);
    Node n;
    n.ino = EXT2_ROOT_INO;
    load(n, "/");
    std::string walked;
    size_t pos = 1;
    while (pos < norm.size()) {
      size_t end = norm.find('/', pos);
      if (end == std::string::npos) end = norm.size();
      const std::string name = norm.substr(pos, end - pos);
      const uint16_t kind = n.inode.i_mode & 0170000;
      if (kind == 0120000)
        fail(ErrorCategory::usage, "{} is a symbolic link (to {}); give the path it points to", walked,
             link_target(n, walked));
      if (kind != 0040000) fail(ErrorCategory::usage, "{} is not a directory", walked);
      refuse_encrypted(n, walked.empty() ? "/" : walked);
      walked += "/" + name;
      ext2_ino_t child = 0;
      errcode_t err = ext2fs_lookup(fs_, n.ino, name.c_str(), static_cast<int>(name.size()), nullptr, &child);
      if (err == EXT2_ET_FILE_NOT_FOUND) fail(ErrorCategory::not_found, "{}: no such file or directory", walked);
      if (err) fail_ext(err, walked);
      n.ino = child;
      load(n, walked);
      pos = end + 1;
    }
    return n;
  }

  const Node& cached_lookup(std::string_view path) {
    if (cached_path_ != path) {
      cached_ = lookup(path);
      cached_path_ = std::string(path);
    }
    return cached_;
  }

  int64_t timestamp(uint32_t seconds, const uint32_t* extra, const Node& n) const {
    int64_t s = static_cast<int32_t>(seconds);
    int64_t ns = 0;
    const size_t field_end = reinterpret_cast<const uint8_t*>(extra) + 4 - reinterpret_cast<const uint8_t*>(&n.inode);
    if (EXT2_INODE_SIZE(fs_->super) > EXT2_GOOD_OLD_INODE_SIZE &&
        size_t{EXT2_GOOD_OLD_INODE_SIZE} + n.inode.i_extra_isize >= field_end) {
      s += static_cast<int64_t>(*extra & 3) << 32;
      ns = *extra >> 2;
    }
    return saturated_ns(static_cast<__int128>(s) * 1000000000 + ns);
  }

  FileStat stat_of(const Node& n) const {
    const auto& i = n.inode;
    FileStat st;
    st.type = type_of(i.i_mode);
    st.size = EXT2_I_SIZE(&i);
    st.mode = i.i_mode & 07777;
    st.uid = inode_uid(i);
    st.gid = inode_gid(i);
    st.nlink = i.i_links_count;
    st.inode = n.ino;
    st.atime_ns = timestamp(i.i_atime, &i.i_atime_extra, n);
    st.mtime_ns = timestamp(i.i_mtime, &i.i_mtime_extra, n);
    st.ctime_ns = timestamp(i.i_ctime, &i.i_ctime_extra, n);
    const size_t crtime_end = offsetof(struct ext2_inode_large, i_crtime) + 4;
    if (EXT2_INODE_SIZE(fs_->super) > EXT2_GOOD_OLD_INODE_SIZE &&
        size_t{EXT2_GOOD_OLD_INODE_SIZE} + i.i_extra_isize >= crtime_end && i.i_crtime != 0)
      st.btime_ns = timestamp(i.i_crtime, &i.i_crtime_extra, n);
    return st;
  }

  size_t read_inline(const Node& n, std::string_view path, uint64_t offset, std::span<uint8_t> out) {
    size_t size = 0;
    errcode_t err = ext2fs_inline_data_size(fs_, n.ino, &size);
    if (err) fail_ext(err, show(path));
    std::vector<uint8_t> data(size + 1);
    err = ext2fs_inline_data_get(fs_, n.ino, reinterpret_cast<struct ext2_inode*>(const_cast<ext2_inode_large*>(&n.inode)),
                                 data.data(), &size);
    if (err) fail_ext(err, show(path));
    if (offset >= size) return 0;
    const size_t k = std::min<size_t>(out.size(), size - offset);
    std::memcpy(out.data(), data.data() + offset, k);
    return k;
  }

  // Reads [offset, offset + out.size()) of the file's data, clipped to its size.
  size_t read_data(const Node& n, std::string_view path, uint64_t offset, std::span<uint8_t> out) {
    const uint64_t size = EXT2_I_SIZE(&n.inode);
    if (offset >= size) return 0;
    const size_t want = static_cast<size_t>(std::min<uint64_t>(out.size(), size - offset));
    if (n.inode.i_flags & EXT4_INLINE_DATA_FL) return read_inline(n, path, offset, out.first(want));
    refuse_encrypted(n, path);
    const uint64_t bs = fs_->blocksize;
    const blk64_t fs_blocks = ext2fs_blocks_count(fs_->super);
    auto* inode = reinterpret_cast<struct ext2_inode*>(const_cast<ext2_inode_large*>(&n.inode));
    size_t done = 0;
    std::vector<uint8_t> run;
    while (done < want) {
      const uint64_t pos = offset + done;
      const blk64_t lblk = pos / bs;
      // The run of blocks from lblk that are contiguous on disk (or all holes).
      blk64_t first = 0;
      uint64_t count = 0;
      bool zeros = false;
      const uint64_t max_blocks = std::min<uint64_t>(div_round_up(pos % bs + (want - done), bs), kMaxRunBytes / bs);
      while (count < max_blocks) {
        blk64_t phys = 0;
        int flags = 0;
        errcode_t err = ext2fs_bmap2(fs_, n.ino, inode, nullptr, 0, lblk + count, &flags, &phys);
        if (err) fail_ext(err, fmt::format("{}: block {}", show(path), lblk + count));
        const bool hole = phys == 0 || (flags & BMAP_RET_UNINIT);
        if (!hole && phys >= fs_blocks)
          fail(ErrorCategory::corrupt, "{}: {}: block {} points outside the file system ({})", type(), show(path),
               lblk + count, phys);
        if (count == 0) {
          first = phys;
          zeros = hole;
        } else if (hole != zeros || (!hole && phys != first + count)) {
          break;
        }
        ++count;
      }
      const uint64_t skip = pos % bs;
      const size_t n_bytes = static_cast<size_t>(std::min<uint64_t>(count * bs - skip, want - done));
      if (zeros) {
        std::memset(out.data() + done, 0, n_bytes);
      } else if (skip == 0 && n_bytes == count * bs) {
        // Whole blocks: straight into the caller's buffer. Staging them in `run`
        // cost a zero-filled, freshly faulted buffer and a copy per run — half
        // the CPU time of a large extract (perf, issue 11).
        errcode_t err = io_channel_read_blk64(fs_->io, first, static_cast<int>(count), out.data() + done);
        if (err) fail_ext(err, fmt::format("{}: data at block {}", show(path), first));
      } else {
        run.resize(count * bs);
        errcode_t err = io_channel_read_blk64(fs_->io, first, static_cast<int>(count), run.data());
        if (err) fail_ext(err, fmt::format("{}: data at block {}", show(path), first));
        std::memcpy(out.data() + done, run.data() + skip, n_bytes);
      }
      done += n_bytes;
    }
    return want;
  }

  std::string link_target(const Node& n, std::string_view path) {
    const uint64_t size = EXT2_I_SIZE(&n.inode);
    if (size > kMaxSymlink) fail(ErrorCategory::corrupt, "{}: {}: a symbolic link of {} bytes", type(), show(path), size);
    refuse_encrypted(n, path);
    auto* inode = reinterpret_cast<struct ext2_inode*>(const_cast<ext2_inode_large*>(&n.inode));
    if (ext2fs_is_fast_symlink(inode))
      return std::string(reinterpret_cast<const char*>(n.inode.i_block), std::min<uint64_t>(size, sizeof n.inode.i_block));
    std::string target(size, '\0');
    const size_t got = read_data(n, path, 0, std::span(reinterpret_cast<uint8_t*>(target.data()), target.size()));
    target.resize(got);
    return target;
  }

  std::shared_ptr<ext::IoState> state_;
  ext2_filsys fs_ = nullptr;
  int flags_extra_ = 0;
  blk64_t superblock_ = 0;  // 0: the primary; else the backup in use
  unsigned block_size_ = 0;
  std::vector<std::string> notes_;
  std::mutex mutex_;
  std::string cached_path_;
  Node cached_;
};

}  // namespace

std::unique_ptr<Filesystem> open_ext(std::shared_ptr<image::BlockDevice> volume) {
  return std::make_unique<ExtFilesystem>(std::move(volume));
}

}  // namespace arche::volume
