#include "tape/vtape.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "core/crc32c.h"
#include "core/endian.h"
#include "core/error.h"
#include "core/file.h"

namespace arche::tape {

namespace {

constexpr char kMagic[] = "ARCHVTAP";
constexpr uint64_t kHeaderSize = 64;
constexpr uint32_t kData = 0x43455256;      // "VREC"
constexpr uint32_t kFilemark = 0x4b4d4656;  // "VFMK"
constexpr uint64_t kBlockHeader = 8;

std::vector<uint8_t> encode_header(const CartridgeInfo& info) {
  std::vector<uint8_t> h(kHeaderSize, 0);
  std::memcpy(h.data(), kMagic, 8);
  store_le16(h.data() + 8, 1);
  store_le16(h.data() + 10, 0);
  store_le64(h.data() + 12, info.capacity);
  store_le64(h.data() + 20, info.early_warning);
  store_le32(h.data() + 60, crc32c(h.data(), 60));
  return h;
}

CartridgeInfo decode_header(const uint8_t* h, const std::string& path) {
  if (std::memcmp(h, kMagic, 8) != 0 || load_le32(h + 60) != crc32c(h, 60))
    fail(ErrorCategory::format, "{}: not a virtual tape cartridge", path);
  if (load_le16(h + 8) != 1)
    fail(ErrorCategory::unsupported, "{}: cartridge format {} is not supported", path, load_le16(h + 8));
  return {load_le64(h + 12), load_le64(h + 20)};
}

}  // namespace

void create_cartridge(const std::string& path, const CartridgeInfo& info) {
  if (info.early_warning >= info.capacity)
    fail(ErrorCategory::usage, "the early-warning zone must be smaller than the capacity");
  File f = File::open(path, OpenMode::create_new);
  f.write_all(0, encode_header(info));
  f.sync();
}

CartridgeInfo read_cartridge_info(const std::string& path) {
  File f = File::open(path, OpenMode::read_only);
  uint8_t h[kHeaderSize];
  if (f.size() < kHeaderSize) fail(ErrorCategory::format, "{}: not a virtual tape cartridge", path);
  f.read_exact(0, h);
  return decode_header(h, path);
}

uint64_t cartridge_used(const std::string& path) {
  File f = File::open(path, OpenMode::read_only);
  return f.size() - kHeaderSize;
}

VirtualTape::VirtualTape() = default;
VirtualTape::~VirtualTape() {
  if (file_ >= 0) close(kFd);
}

int VirtualTape::open(const std::string& path, int flags) {
  if (file_ >= 0) return -EBUSY;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return -errno;
  protected_ = (st.st_mode & (S_IWUSR | S_IWGRP | S_IWOTH)) == 0;
  writable_ = (flags & O_ACCMODE) != O_RDONLY;
  if (writable_ && protected_) return -EROFS;
  const int fd = ::open(path.c_str(), (writable_ ? O_RDWR : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return -errno;
  uint8_t h[kHeaderSize];
  if (::pread(fd, h, kHeaderSize, 0) != static_cast<ssize_t>(kHeaderSize)) {
    ::close(fd);
    return -EIO;
  }
  try {
    info_ = decode_header(h, path);
  } catch (const Error&) {
    ::close(fd);
    return -EIO;
  }
  // The blocks, from their headers (8 bytes each: cheap even for a full cartridge).
  blocks_.clear();
  const uint64_t end = static_cast<uint64_t>(st.st_size);
  for (uint64_t off = kHeaderSize; off + kBlockHeader <= end;) {
    uint8_t b[kBlockHeader];
    if (::pread(fd, b, kBlockHeader, static_cast<off_t>(off)) != static_cast<ssize_t>(kBlockHeader)) break;
    const uint32_t kind = load_le32(b), length = load_le32(b + 4);
    if ((kind != kData && kind != kFilemark) || off + kBlockHeader + length > end) break;  // a torn last block
    blocks_.push_back({off, kind, length});
    off += kBlockHeader + length;
  }
  read_errors_.clear();
  std::ifstream errors(path + ".read-errors");
  uint32_t file;
  uint64_t record;
  while (errors >> file >> record) read_errors_.emplace_back(file, record);
  file_ = fd;
  flags_ = flags;
  position_ = 0;
  warning_ = Warning::none;
  dirty_ = false;
  return kFd;
}

int VirtualTape::close(int fd) {
  if (!valid(fd)) return -EBADF;
  if (dirty_) ::fsync(file_);
  ::close(file_);
  file_ = -1;
  return 0;
}

int VirtualTape::get_flags(int fd) { return valid(fd) ? flags_ : -EBADF; }
int VirtualTape::set_flags(int fd, int flags) {
  if (!valid(fd)) return -EBADF;
  flags_ = (flags_ & O_ACCMODE) | (flags & ~O_ACCMODE);
  return 0;
}

uint64_t VirtualTape::used() const {
  return blocks_.empty() ? 0 : blocks_.back().offset + kBlockHeader + blocks_.back().length - kHeaderSize;
}

uint32_t VirtualTape::file_number_at(size_t position) const {
  uint32_t n = 0;
  for (size_t i = 0; i < position; ++i) n += blocks_[i].kind == kFilemark;
  return n;
}

uint64_t VirtualTape::block_in_file(size_t position) const {
  uint64_t n = 0;
  for (size_t i = position; i > 0 && blocks_[i - 1].kind != kFilemark; --i) ++n;
  return n;
}

int VirtualTape::append(uint32_t kind, const void* data, uint32_t length) {
  // Writing in the middle drops everything after, as a tape does.
  if (position_ < blocks_.size()) {
    const uint64_t cut = blocks_[position_].offset;
    blocks_.resize(position_);
    if (::ftruncate(file_, static_cast<off_t>(cut)) != 0) return -errno;
  }
  const uint64_t offset = kHeaderSize + used();
  uint8_t h[kBlockHeader];
  store_le32(h, kind);
  store_le32(h + 4, length);
  iovec iov[2] = {{h, kBlockHeader}, {const_cast<void*>(data), length}};
  const ssize_t want = static_cast<ssize_t>(kBlockHeader + length);
  const ssize_t r = ::pwritev(file_, iov, 2, static_cast<off_t>(offset));
  if (r != want) {
    if (::ftruncate(file_, static_cast<off_t>(offset)) != 0) {
    }
    return r < 0 ? -errno : -EIO;
  }
  blocks_.push_back({offset, kind, length});
  position_ = blocks_.size();
  dirty_ = true;
  // Start writeback every few MiB (as a drive empties its buffer onto the tape while
  // it streams), so the flush at the next filemark waits for little.
  unflushed_ += static_cast<uint64_t>(want);
  if (unflushed_ >= kWritebackStep) {
    ::sync_file_range(file_, 0, 0, SYNC_FILE_RANGE_WRITE);
    unflushed_ = 0;
  }
  return 0;
}

ssize_t VirtualTape::write(int fd, const void* data, size_t length) {
  if (!valid(fd)) return -EBADF;
  if (!writable_) return -EBADF;
  if (length == 0 || length > UINT32_MAX) return -EINVAL;
  // Writing starts a new end of data here: what was used is what comes before.
  const uint64_t before = position_ < blocks_.size() ? blocks_[position_].offset - kHeaderSize : used();
  if (before + kBlockHeader + length > info_.capacity) return -ENOSPC;  // the physical end
  if (warning_ == Warning::crossed) {
    warning_ = Warning::reported;  // st: the write after entering the zone fails once
    return -ENOSPC;
  }
  if (const int r = append(kData, data, static_cast<uint32_t>(length)); r < 0) return r;
  if (warning_ == Warning::none && used() > info_.capacity - info_.early_warning) warning_ = Warning::crossed;
  return static_cast<ssize_t>(length);
}

ssize_t VirtualTape::read(int fd, void* buffer, size_t length) {
  if (!valid(fd)) return -EBADF;
  if (position_ >= blocks_.size()) {
    eod_hit_ = true;
    return 0;  // end of data (GMT_EOD)
  }
  eod_hit_ = false;
  const Block b = blocks_[position_];
  if (b.kind == kFilemark) {
    ++position_;
    return 0;
  }
  if (!read_errors_.empty()) {
    const std::pair<uint32_t, uint64_t> at{file_number_at(position_) + 1, block_in_file(position_)};
    if (std::find(read_errors_.begin(), read_errors_.end(), at) != read_errors_.end()) {
      ++position_;
      return -EIO;
    }
  }
  ++position_;
  if (b.length > length) return -ENOMEM;
  const ssize_t r = ::pread(file_, buffer, b.length, static_cast<off_t>(b.offset + kBlockHeader));
  if (r != static_cast<ssize_t>(b.length)) return r < 0 ? -errno : -EIO;
  return r;
}

int VirtualTape::mt_op(int fd, const mtop& op) {
  if (!valid(fd)) return -EBADF;
  if (op.mt_count < 0) return -EINVAL;
  eod_hit_ = op.mt_op == MTEOM;
  switch (op.mt_op) {
    case MTSETBLK: return op.mt_count == 0 ? 0 : -EINVAL;  // variable-block mode only
    case MTREW:
      position_ = 0;
      warning_ = Warning::none;
      return 0;
    case MTWEOF:
      if (!writable_) return -EBADF;
      for (int i = 0; i < op.mt_count; ++i)
        if (const int r = append(kFilemark, nullptr, 0); r < 0) return r;
      if (::fdatasync(file_) != 0) return -errno;  // a filemark flushes the drive's buffer
      dirty_ = false;
      return 0;
    case MTFSF:
      for (int i = 0; i < op.mt_count; ++i) {
        while (position_ < blocks_.size() && blocks_[position_].kind != kFilemark) ++position_;
        if (position_ >= blocks_.size()) return -EIO;  // ran into end of data
        ++position_;
      }
      return 0;
    case MTBSF:
      for (int i = 0; i < op.mt_count; ++i) {
        // Back over the next filemark before the position; stop on its BOT side.
        while (position_ > 0 && blocks_[position_ - 1].kind != kFilemark) --position_;
        if (position_ == 0) return -EIO;  // ran into the beginning of the tape
        --position_;
      }
      return 0;
    case MTEOM: position_ = blocks_.size(); return 0;
    case MTOFFL: position_ = 0; return 0;
    default: return -EINVAL;
  }
}

int VirtualTape::mt_status(int fd, mtget& s) {
  if (!valid(fd)) return -EBADF;
  std::memset(&s, 0, sizeof s);
  s.mt_type = MT_ISSCSI2;
  s.mt_fileno = static_cast<int>(file_number_at(position_));
  s.mt_blkno = static_cast<int>(block_in_file(position_));
  long g = GMT_ONLINE(-1L);
  if (position_ == 0) g |= GMT_BOT(-1L);
  // Right after a filemark at the end, st says EOD only once a read found nothing more.
  const bool after_filemark = position_ > 0 && blocks_[position_ - 1].kind == kFilemark;
  if (position_ >= blocks_.size() && (eod_hit_ || !after_filemark)) g |= GMT_EOD(-1L);
  if (position_ > 0 && position_ <= blocks_.size() && blocks_[position_ - 1].kind == kFilemark) g |= GMT_EOF(-1L);
  if (warning_ != Warning::none || used() > info_.capacity - info_.early_warning) g |= GMT_EOT(-1L);
  if (protected_) g |= GMT_WR_PROT(-1L);
  s.mt_gstat = g;
  return 0;
}

}  // namespace arche::tape
