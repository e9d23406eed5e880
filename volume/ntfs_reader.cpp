// NTFS through libntfs-3g (open_ntfs in readers.h), read-only: the volume is
// mounted on device operations (struct ntfs_device_operations) that read the
// BlockDevice and refuse every write. Windows' system files ($MFT, $Bitmap, ...)
// and DOS 8.3 aliases are not listed; named data streams are (streams()). NTFS has
// no POSIX owners or modes: files are shown 0644 (0444 when read-only), directories
// 0755, owned by 0:0.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/stat.h>  // before the ntfs-3g headers: they define struct timespec without it

#include <cerrno>
#include <cstdarg>  // the ntfs-3g headers use these without including them
#include <cstddef>
#include <cstring>
#include <ctime>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "core/endian.h"
#include "core/error.h"
#include "core/units.h"
#include "volume/readers.h"
#include "volume/volume_path.h"

// Last: they define min() and max() macros. They are C without extern "C".
extern "C" {
#include <ntfs-3g/types.h>
#include <ntfs-3g/attrib.h>
#include <ntfs-3g/device.h>
#include <ntfs-3g/dir.h>
#include <ntfs-3g/inode.h>
#include <ntfs-3g/logging.h>
#include <ntfs-3g/reparse.h>
#include <ntfs-3g/unistr.h>
#include <ntfs-3g/volume.h>
}
#undef min
#undef max

namespace arche::volume {

namespace {

constexpr int64_t kNtfsEpochOffset = 116444736000000000LL;  // 100 ns units from 1601 to 1970

// The last thing libntfs-3g complained about, to explain a failure.
thread_local std::string t_ntfs_message;

int capture_log(const char*, const char*, int, u32, void*, const char* format, va_list args) {
  char buf[512];
  vsnprintf(buf, sizeof buf, format, args);
  t_ntfs_message = buf;
  while (!t_ntfs_message.empty() && (t_ntfs_message.back() == '\n' || t_ntfs_message.back() == ' '))
    t_ntfs_message.pop_back();
  return 0;
}

struct DeviceState {
  std::shared_ptr<image::BlockDevice> device;
  int64_t position = 0;
  std::string last_error;
};

DeviceState& state_of(struct ntfs_device* dev) { return *static_cast<DeviceState*>(dev->d_private); }

s64 dev_pread(struct ntfs_device* dev, void* buf, s64 count, s64 offset) {
  DeviceState& s = state_of(dev);
  if (count < 0 || offset < 0) {
    errno = EINVAL;
    return -1;
  }
  const uint64_t size = s.device->size();
  if (static_cast<uint64_t>(offset) >= size) return 0;
  const uint64_t n = std::min<uint64_t>(static_cast<uint64_t>(count), size - static_cast<uint64_t>(offset));
  try {
    s.device->read(static_cast<uint64_t>(offset), std::span(static_cast<uint8_t*>(buf), n));
  } catch (const std::exception& e) {
    s.last_error = e.what();
    errno = EIO;
    return -1;
  }
  return static_cast<s64>(n);
}

int dev_open(struct ntfs_device* dev, int flags) {
  if ((flags & O_ACCMODE) != O_RDONLY) {
    errno = EROFS;
    return -1;
  }
  NDevSetOpen(dev);
  NDevSetReadOnly(dev);
  return 0;
}
int dev_close(struct ntfs_device* dev) {
  NDevClearOpen(dev);
  return 0;
}
s64 dev_seek(struct ntfs_device* dev, s64 offset, int whence) {
  DeviceState& s = state_of(dev);
  const int64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? s.position : static_cast<int64_t>(s.device->size());
  if (whence != SEEK_SET && whence != SEEK_CUR && whence != SEEK_END) {
    errno = EINVAL;
    return -1;
  }
  s.position = base + offset;
  return s.position;
}
s64 dev_read(struct ntfs_device* dev, void* buf, s64 count) {
  DeviceState& s = state_of(dev);
  s64 n = dev_pread(dev, buf, count, s.position);
  if (n > 0) s.position += n;
  return n;
}
s64 dev_write(struct ntfs_device*, const void*, s64) {
  errno = EROFS;
  return -1;
}
s64 dev_pwrite(struct ntfs_device*, const void*, s64, s64) {
  errno = EROFS;
  return -1;
}
int dev_sync(struct ntfs_device*) { return 0; }
int dev_stat(struct ntfs_device* dev, struct stat* st) {
  std::memset(st, 0, sizeof *st);
  st->st_mode = S_IFREG | 0400;
  st->st_size = static_cast<off_t>(state_of(dev).device->size());
  return 0;
}
int dev_ioctl(struct ntfs_device* dev, unsigned long request, void* arg) {
  switch (request) {
    case BLKGETSIZE64: *static_cast<uint64_t*>(arg) = state_of(dev).device->size(); return 0;
    case BLKSSZGET: *static_cast<int*>(arg) = 512; return 0;
    default: errno = EOPNOTSUPP; return -1;
  }
}

struct ntfs_device_operations g_ops = {dev_open, dev_close, dev_seek, dev_read, dev_write,
                                       dev_pread, dev_pwrite, dev_sync, dev_stat, dev_ioctl};

int64_t unix_ns(ntfs_time t) {
  const int64_t v = sle64_to_cpu(t);
  return (v - kNtfsEpochOffset) * 100;
}

std::string utf8(const ntfschar* name, int len) {
  char* out = nullptr;
  if (ntfs_ucstombs(name, len, &out, 0) < 0 || !out) return "?";
  std::string s(out);
  free(out);
  return s;
}

struct InodeCloser {
  void operator()(ntfs_inode* ni) const { ntfs_inode_close(ni); }
};
using Inode = std::unique_ptr<ntfs_inode, InodeCloser>;
struct AttrCloser {
  void operator()(ntfs_attr* na) const { ntfs_attr_close(na); }
};
using Attr = std::unique_ptr<ntfs_attr, AttrCloser>;

class NtfsFilesystem final : public Filesystem {
 public:
  explicit NtfsFilesystem(std::shared_ptr<image::BlockDevice> device) {
    static std::once_flag log_once;
    std::call_once(log_once, [] {
      ntfs_log_set_handler(capture_log);
      ntfs_log_set_levels(NTFS_LOG_LEVEL_ERROR | NTFS_LOG_LEVEL_PERROR | NTFS_LOG_LEVEL_CRITICAL);
    });
    state_.device = std::move(device);
    uint8_t boot[512];
    if (state_.device->size() < sizeof boot) fail(ErrorCategory::format, "not an NTFS volume: too small");
    state_.device->read(0, boot);
    if (std::memcmp(boot + 3, "NTFS    ", 8) != 0) fail(ErrorCategory::format, "not an NTFS volume");
    serial_ = load_le64(boot + 0x48);
    dev_ = ntfs_device_alloc(state_.device->filename().c_str(), 0, &g_ops, &state_);
    if (!dev_) fail(ErrorCategory::no_space, "NTFS: out of memory");
    t_ntfs_message.clear();
    vol_ = ntfs_device_mount(dev_, NTFS_MNT_RDONLY);
    if (!vol_) {
      const int err = errno;
      ntfs_device_free(dev_);
      fail_errno(err, "cannot mount");
    }
    // A read-only mount leaves free_clusters unset (-1, which used_bytes() reads as
    // "all used"): count $Bitmap now, so that used_bytes() is the volume's real use
    // (P2V checks its used-block map against it). On failure it stays "all used".
    (void)ntfs_volume_get_free_space(vol_);
  }

  ~NtfsFilesystem() override {
    cached_attr_.reset();  // attribute and inode before the volume they belong to
    cached_inode_.reset();
    if (vol_) ntfs_umount(vol_, FALSE);  // also frees the device
  }

  std::string type() const override { return "ntfs"; }
  std::string label() const override { return vol_->vol_name ? vol_->vol_name : ""; }
  std::string uuid() const override { return fmt::format("{:016X}", serial_); }
  uint64_t size_bytes() const override { return state_.device->size(); }
  uint64_t used_bytes() const override {
    const int64_t free = vol_->free_clusters >= 0 ? vol_->free_clusters : 0;
    return static_cast<uint64_t>(std::max<int64_t>(vol_->nr_clusters - free, 0)) * vol_->cluster_size;
  }

  FileStat stat(std::string_view path) override {
    std::lock_guard lock(mutex_);
    Inode ni = open_path(path);
    return stat_of(ni.get());
  }

  std::vector<DirEntry> list(std::string_view path) override {
    std::lock_guard lock(mutex_);
    Inode dir = open_path(path);
    if (!(dir->mrec->flags & MFT_RECORD_IS_DIRECTORY)) fail(ErrorCategory::usage, "{}: not a directory", show(path));
    struct Found {
      std::string name;
      MFT_REF mref;
    };
    struct Context {
      std::vector<Found> found;
      bool root;
    } ctx{{}, dir->mft_no == FILE_root};
    auto fill = [](void* p, const ntfschar* name, const int len, const int name_type, const s64, const MFT_REF mref,
                   const unsigned) -> int {
      auto* c = static_cast<Context*>(p);
      if (name_type == FILE_NAME_DOS) return 0;  // the 8.3 alias of a name listed anyway
      std::string n = utf8(name, len);
      if (n == "." || n == "..") return 0;
      if (c->root && MREF(mref) < FILE_first_user && n.starts_with("$")) return 0;  // $MFT, $Bitmap, $Extend ...
      c->found.push_back({std::move(n), mref});
      return 0;
    };
    s64 pos = 0;
    if (ntfs_readdir(dir.get(), &pos, &ctx, fill) != 0) fail_errno(errno, show(path));
    std::vector<DirEntry> out;
    for (Found& f : ctx.found) {
      DirEntry e;
      e.name = std::move(f.name);
      if (Inode child{ntfs_inode_open(vol_, f.mref)}) {
        e.stat = stat_of(child.get());
      } else {
        e.stat.inode = MREF(f.mref);
      }
      out.push_back(std::move(e));
    }
    return out;
  }

  size_t read(std::string_view path, uint64_t offset, std::span<uint8_t> out) override {
    std::lock_guard lock(mutex_);
    if (cached_path_ != path) {
      cached_attr_.reset();
      cached_inode_.reset();
      Inode ni = open_path(path);
      if (ni->mrec->flags & MFT_RECORD_IS_DIRECTORY) fail(ErrorCategory::usage, "{}: not a regular file", show(path));
      refuse_reparse(ni.get(), path);
      Attr na{ntfs_attr_open(ni.get(), AT_DATA, AT_UNNAMED, 0)};
      if (!na) fail_errno(errno, show(path));
      cached_inode_ = std::move(ni);
      cached_attr_ = std::move(na);
      cached_path_ = std::string(path);
    }
    ntfs_attr* na = cached_attr_.get();
    if (offset >= static_cast<uint64_t>(na->data_size)) return 0;
    const s64 want = static_cast<s64>(std::min<uint64_t>(out.size(), static_cast<uint64_t>(na->data_size) - offset));
    s64 done = 0;
    while (done < want) {
      s64 n = ntfs_attr_pread(na, static_cast<s64>(offset) + done, want - done, out.data() + done);
      if (n < 0) {
        const int err = errno;
        cached_path_.clear();
        fail_errno(err, show(path));
      }
      if (n == 0) break;
      done += n;
    }
    return static_cast<size_t>(done);
  }

  std::string readlink(std::string_view path) override {
    std::lock_guard lock(mutex_);
    Inode ni = open_path(path);
    if (std::optional<std::string> target = interix_link(ni.get())) return *target;
    if (!(ni->flags & FILE_ATTR_REPARSE_POINT)) fail(ErrorCategory::usage, "{}: not a symbolic link", show(path));
    char* target = ntfs_make_symlink(ni.get(), "");
    if (!target) fail(ErrorCategory::unsupported, "{}: a reparse point that is not a symbolic link", show(path));
    std::string t(target);
    free(target);
    return t;
  }

  std::vector<std::string> streams(std::string_view path) override {
    std::lock_guard lock(mutex_);
    Inode ni = open_path(path);
    std::vector<std::string> out;
    ntfs_attr_search_ctx* ctx = ntfs_attr_get_search_ctx(ni.get(), nullptr);
    if (!ctx) fail(ErrorCategory::no_space, "NTFS: out of memory");
    while (ntfs_attr_lookup(AT_DATA, nullptr, 0, CASE_SENSITIVE, 0, nullptr, 0, ctx) == 0) {
      const ATTR_RECORD* a = ctx->attr;
      if (a->name_length == 0) continue;
      const auto* name = reinterpret_cast<const ntfschar*>(reinterpret_cast<const uint8_t*>(a) + le16_to_cpu(a->name_offset));
      out.push_back(utf8(name, a->name_length));
    }
    ntfs_attr_put_search_ctx(ctx);
    return out;
  }

  std::vector<ByteRange> used_ranges() override {
    std::lock_guard lock(mutex_);
    const uint64_t cs = vol_->cluster_size;
    const int64_t clusters = vol_->nr_clusters;
    std::vector<ByteRange> out;
    auto add = [&](uint64_t off, uint64_t len) {
      if (!out.empty() && out.back().offset + out.back().length >= off) {
        const uint64_t end = std::max(out.back().offset + out.back().length, off + len);
        out.back().length = end - out.back().offset;
      } else {
        out.push_back({off, len});
      }
    };
    add(0, std::min<uint64_t>(cs, state_.device->size()));  // the boot sector, whatever the bitmap says
    std::vector<uint8_t> bits(1 * MiB);
    for (int64_t byte = 0; byte * 8 < clusters; byte += static_cast<int64_t>(bits.size())) {
      const s64 n = ntfs_attr_pread(vol_->lcnbmp_na, byte, static_cast<s64>(bits.size()), bits.data());
      if (n <= 0) fail_errno(n < 0 ? errno : EIO, "$Bitmap");
      for (s64 i = 0; i < n; ++i) {
        if (!bits[i]) continue;
        if (bits[i] == 0xff && (byte + i + 1) * 8 <= clusters) {
          add(static_cast<uint64_t>(byte + i) * 8 * cs, 8 * cs);
          continue;
        }
        for (int b = 0; b < 8; ++b) {
          const int64_t c = (byte + i) * 8 + b;
          if (c < clusters && (bits[i] >> b & 1)) add(static_cast<uint64_t>(c) * cs, cs);
        }
      }
    }
    // The backup boot sector: the last sector of the volume, after the last cluster.
    const uint64_t size = state_.device->size();
    if (size >= vol_->sector_size) add(size - vol_->sector_size, vol_->sector_size);
    return out;
  }

 private:
  static std::string show(std::string_view path) { return normalize_path(path); }

  [[noreturn]] void fail_errno(int err, const std::string& what) const {
    std::string detail = std::strerror(err);
    if (!state_.last_error.empty() && err == EIO) detail = state_.last_error;
    else if (!t_ntfs_message.empty()) detail = t_ntfs_message;
    ErrorCategory c = err == ENOENT ? ErrorCategory::not_found
                      : err == EIO   ? (state_.last_error.empty() ? ErrorCategory::corrupt : ErrorCategory::io)
                      : err == ENOMEM ? ErrorCategory::no_space
                      : err == EOPNOTSUPP || err == EACCES ? ErrorCategory::unsupported
                                                           : ErrorCategory::corrupt;
    fail(c, "ntfs: {}: {}", what, detail);
  }

  Inode open_path(std::string_view path) {
    const std::string norm = normalize_path(path);
    t_ntfs_message.clear();
    Inode ni{ntfs_pathname_to_inode(vol_, nullptr, norm.c_str())};
    if (!ni) {
      const int err = errno;
      if (err == ENOENT) fail(ErrorCategory::not_found, "{}: no such file or directory", norm);
      fail_errno(err, norm);
    }
    return ni;
  }

  // Files whose data Windows keeps elsewhere: WOF-compressed and deduplicated ones.
  void refuse_reparse(ntfs_inode* ni, std::string_view path) {
    if (!(ni->flags & FILE_ATTR_REPARSE_POINT)) return;
    s64 size = 0;
    void* data = ntfs_attr_readall(ni, AT_REPARSE_POINT, AT_UNNAMED, 0, &size);
    if (!data) return;
    uint32_t tag = 0;
    if (size >= 4) std::memcpy(&tag, data, 4);
    free(data);
    if (tag == le32_to_cpu(IO_REPARSE_TAG_WOF))
      fail(ErrorCategory::unsupported, "{}: compressed by Windows (WOF); arche cannot read its data", show(path));
    if (tag == le32_to_cpu(IO_REPARSE_TAG_DEDUP))
      fail(ErrorCategory::unsupported, "{}: deduplicated by Windows Server; its data lies in the chunk store",
           show(path));
  }

  // Interix (Services for Unix) special files, which ntfs-3g also writes: a system
  // file whose data starts "IntxLNK\1" followed by the UTF-16 target.
  static bool interix_candidate(ntfs_inode* ni) {
    return (ni->flags & FILE_ATTR_SYSTEM) && !(ni->mrec->flags & MFT_RECORD_IS_DIRECTORY) &&
           !(ni->flags & FILE_ATTR_REPARSE_POINT);
  }

  std::optional<std::string> interix_link(ntfs_inode* ni) {
    if (!interix_candidate(ni) || ntfs_interix_types(ni) != NTFS_DT_LNK) return std::nullopt;
    Attr na{ntfs_attr_open(ni, AT_DATA, AT_UNNAMED, 0)};
    if (!na || na->data_size < 8 || na->data_size > 8 + 2 * 4096) return std::nullopt;
    std::vector<uint8_t> data(static_cast<size_t>(na->data_size));
    if (ntfs_attr_pread(na.get(), 0, na->data_size, data.data()) != na->data_size) return std::nullopt;
    return utf8(reinterpret_cast<const ntfschar*>(data.data() + 8), static_cast<int>((data.size() - 8) / 2));
  }

  FileStat stat_of(ntfs_inode* ni) {
    FileStat st;
    const bool dir = ni->mrec->flags & MFT_RECORD_IS_DIRECTORY;
    st.inode = ni->mft_no;
    st.atime_ns = unix_ns(ni->last_access_time);
    st.mtime_ns = unix_ns(ni->last_data_change_time);
    st.ctime_ns = unix_ns(ni->last_mft_change_time);
    st.btime_ns = unix_ns(ni->creation_time);
    if (interix_candidate(ni)) {
      switch (ntfs_interix_types(ni)) {
        case NTFS_DT_LNK:
          if (std::optional<std::string> target = interix_link(ni)) {
            st.type = FileType::symlink;
            st.size = target->size();
            st.mode = 0777;
            return st;
          }
          break;
        case NTFS_DT_FIFO: st.type = FileType::fifo; st.mode = 0644; return st;
        case NTFS_DT_SOCK: st.type = FileType::socket; st.mode = 0644; return st;
        case NTFS_DT_CHR: st.type = FileType::char_device; st.mode = 0644; return st;
        case NTFS_DT_BLK: st.type = FileType::block_device; st.mode = 0644; return st;
        default: break;
      }
    }
    if ((ni->flags & FILE_ATTR_REPARSE_POINT) && ntfs_possible_symlink(ni)) {
      if (char* target = ntfs_make_symlink(ni, "")) {
        st.type = FileType::symlink;
        st.size = std::strlen(target);
        st.mode = 0777;
        free(target);
        return st;
      }
    }
    if (dir) {
      st.type = FileType::directory;
      st.mode = 0755;
      return st;
    }
    st.type = FileType::regular;
    st.mode = (ni->flags & FILE_ATTR_READONLY) ? 0444 : 0644;
    if (Attr na{ntfs_attr_open(ni, AT_DATA, AT_UNNAMED, 0)}) st.size = static_cast<uint64_t>(na->data_size);
    return st;
  }

  DeviceState state_;
  struct ntfs_device* dev_ = nullptr;
  ntfs_volume* vol_ = nullptr;
  uint64_t serial_ = 0;
  std::mutex mutex_;
  std::string cached_path_;
  Inode cached_inode_;
  Attr cached_attr_;
};

}  // namespace

std::unique_ptr<Filesystem> open_ntfs(std::shared_ptr<image::BlockDevice> volume) {
  return std::make_unique<NtfsFilesystem>(std::move(volume));
}

}  // namespace arche::volume
