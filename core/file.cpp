#include "core/file.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <boost/filesystem.hpp>

#include "core/error.h"

namespace arche {

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

File File::open(const std::string& path, OpenMode mode, int extra_flags) {
  int flags = O_CLOEXEC | extra_flags;
  bool writable = true;
  switch (mode) {
    case OpenMode::read_only:
      flags |= O_RDONLY;
      writable = false;
      break;
    case OpenMode::read_write: flags |= O_RDWR; break;
    case OpenMode::create_new: flags |= O_RDWR | O_CREAT | O_EXCL; break;
    case OpenMode::create_truncate: flags |= O_RDWR | O_CREAT | O_TRUNC; break;
  }
  int fd;
  do {
    fd = ::open(path.c_str(), flags, 0644);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) throw_errno(errno, "open " + path);
  return adopt(UniqueFd(fd), path, writable);
}

File File::adopt(UniqueFd fd, std::string name, bool writable) {
  File f;
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw_errno(errno, "stat " + name);
  if (S_ISDIR(st.st_mode)) fail(ErrorCategory::usage, "{}: is a directory", name);
  f.block_device_ = S_ISBLK(st.st_mode);
  f.fd_ = std::move(fd);
  f.path_ = std::move(name);
  f.writable_ = writable;
  return f;
}

uint64_t File::size() const {
  if (block_device_) {
    uint64_t bytes = 0;
    if (::ioctl(fd(), BLKGETSIZE64, &bytes) != 0) throw_errno(errno, "size of " + path_);
    return bytes;
  }
  struct stat st {};
  if (::fstat(fd(), &st) != 0) throw_errno(errno, "stat " + path_);
  return static_cast<uint64_t>(st.st_size);
}

uint64_t File::allocated_bytes() const {
  struct stat st {};
  if (::fstat(fd(), &st) != 0) throw_errno(errno, "stat " + path_);
  return block_device_ ? size() : static_cast<uint64_t>(st.st_blocks) * 512;
}

size_t File::read_some(uint64_t offset, std::span<uint8_t> out) const {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::pread(fd(), out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno(errno, fmt::format("read {} at offset {}", path_, offset + done));
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

void File::read_exact(uint64_t offset, std::span<uint8_t> out) const {
  size_t got = read_some(offset, out);
  if (got != out.size())
    fail(ErrorCategory::format, "{}: truncated (wanted {} bytes at offset {}, file ends at {})", path_,
         out.size(), offset, offset + got);
}

void File::write_all(uint64_t offset, std::span<const uint8_t> data) const {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pwrite(fd(), data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno(errno, fmt::format("write {} at offset {}", path_, offset + done));
    }
    done += static_cast<size_t>(n);
  }
}

void File::truncate(uint64_t size) const {
  int rc;
  do {
    rc = ::ftruncate(fd(), static_cast<off_t>(size));
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) throw_errno(errno, fmt::format("resize {} to {} bytes", path_, size));
}

void File::sync_data() const {
  if (::fdatasync(fd()) != 0) throw_errno(errno, "fdatasync " + path_);
}

void File::sync() const {
  if (::fsync(fd()) != 0) throw_errno(errno, "fsync " + path_);
}

namespace {
bool unsupported_errno(int err) { return err == EOPNOTSUPP || err == ENOSYS || err == EINVAL; }
}  // namespace

bool File::punch_hole(uint64_t offset, uint64_t length) const {
  if (length == 0) return true;
  if (block_device_) {
    uint64_t range[2] = {offset, length};
    if (::ioctl(fd(), BLKDISCARD, range) == 0) return true;
    if (unsupported_errno(errno) || errno == ENOTTY) return false;
    throw_errno(errno, fmt::format("discard {} at offset {}", path_, offset));
  }
  if (::fallocate(fd(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                  static_cast<off_t>(length)) == 0)
    return true;
  if (unsupported_errno(errno)) return false;
  throw_errno(errno, fmt::format("punch hole in {} at offset {}", path_, offset));
}

bool File::zero_range(uint64_t offset, uint64_t length) const {
  if (length == 0) return true;
  if (block_device_) {
    uint64_t range[2] = {offset, length};
    if (::ioctl(fd(), BLKZEROOUT, range) == 0) return true;
    if (unsupported_errno(errno) || errno == ENOTTY) return false;
    throw_errno(errno, fmt::format("zero {} at offset {}", path_, offset));
  }
  if (::fallocate(fd(), FALLOC_FL_ZERO_RANGE, static_cast<off_t>(offset), static_cast<off_t>(length)) == 0)
    return true;
  if (unsupported_errno(errno)) return false;
  throw_errno(errno, fmt::format("zero range in {} at offset {}", path_, offset));
}

bool File::clone_range(uint64_t offset, const File& source, uint64_t source_offset, uint64_t length) const {
  if (length == 0) return true;
  file_clone_range range{};
  range.src_fd = source.fd();
  range.src_offset = source_offset;
  range.src_length = length;  // 0 would mean "to the end of the source"
  range.dest_offset = offset;
  if (::ioctl(fd(), FICLONERANGE, &range) == 0) return true;
  // EXDEV: another file system; EINVAL: unaligned or a file system that cannot;
  // ENOTTY, EOPNOTSUPP: no such ioctl here.
  if (unsupported_errno(errno) || errno == EXDEV || errno == ENOTTY) return false;
  throw_errno(errno, fmt::format("clone {} bytes of {} at offset {} into {} at offset {}", length, source.path(),
                                 source_offset, path_, offset));
}

std::optional<uint64_t> File::seek_data(uint64_t from) const {
  off_t pos = ::lseek(fd(), static_cast<off_t>(from), SEEK_DATA);
  if (pos >= 0) return static_cast<uint64_t>(pos);
  if (errno == ENXIO) return size();  // no data after `from`
  if (unsupported_errno(errno)) return std::nullopt;
  throw_errno(errno, "seek data in " + path_);
}

std::optional<uint64_t> File::seek_hole(uint64_t from) const {
  off_t pos = ::lseek(fd(), static_cast<off_t>(from), SEEK_HOLE);
  if (pos >= 0) return static_cast<uint64_t>(pos);
  if (errno == ENXIO) return size();
  if (unsupported_errno(errno)) return std::nullopt;
  throw_errno(errno, "seek hole in " + path_);
}

namespace {

bool locking_unsupported(int err) { return err == EINVAL || err == ENOLCK; }

int set_byte_lock(int fd, short type, uint64_t offset) {
  struct flock fl {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = static_cast<off_t>(offset);
  fl.l_len = 1;
  return ::fcntl(fd, F_OFD_SETLK, &fl);
}

}  // namespace

bool File::lock_byte_shared(uint64_t offset) const {
  if (set_byte_lock(fd(), F_RDLCK, offset) == 0) return true;
  if (errno == EAGAIN || errno == EACCES) return false;
  if (locking_unsupported(errno)) return true;
  throw_errno(errno, fmt::format("lock byte {} of {}", offset, path_));
}

void File::unlock_byte(uint64_t offset) const {
  if (set_byte_lock(fd(), F_UNLCK, offset) != 0 && !locking_unsupported(errno))
    throw_errno(errno, fmt::format("unlock byte {} of {}", offset, path_));
}

bool File::byte_locked_by_other(uint64_t offset) const {
  // F_OFD_GETLK answers "could this lock be placed?": a write lock conflicts with any
  // lock of another open file, and never with our own.
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = static_cast<off_t>(offset);
  fl.l_len = 1;
  if (::fcntl(fd(), F_OFD_GETLK, &fl) != 0) {
    if (locking_unsupported(errno)) return false;
    throw_errno(errno, fmt::format("test lock on byte {} of {}", offset, path_));
  }
  return fl.l_type != F_UNLCK;
}

void sync_directory(const std::string& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw_errno(errno, "open directory " + dir);
  UniqueFd guard(fd);
  if (::fsync(fd) != 0) throw_errno(errno, "fsync directory " + dir);
}

void write_file_atomic(const std::string& path, std::span<const uint8_t> data) {
  boost::filesystem::path target(path);
  boost::filesystem::path dir = target.has_parent_path() ? target.parent_path() : boost::filesystem::path(".");
  std::string temp = (dir / ("." + target.filename().string() + ".tmp-" + std::to_string(::getpid()))).string();
  try {
    File f = File::open(temp, OpenMode::create_truncate);
    f.write_all(0, data);
    f.sync();
  } catch (...) {
    ::unlink(temp.c_str());
    throw;
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(temp.c_str());
    throw_errno(err, "rename " + temp + " to " + path);
  }
  sync_directory(dir.string());
}

PendingFile::PendingFile(std::string final_path, bool overwrite) : final_(std::move(final_path)), overwrite_(overwrite) {
  struct stat st {};
  if (!overwrite_ && ::lstat(final_.c_str(), &st) == 0)
    fail(ErrorCategory::exists, "{} already exists (refusing to overwrite it)", final_);
  boost::filesystem::path target(final_);
  boost::filesystem::path dir = target.has_parent_path() ? target.parent_path() : boost::filesystem::path(".");
  if (!boost::filesystem::is_directory(dir)) fail(ErrorCategory::not_found, "directory {} does not exist", dir.string());
  temp_ = (dir / fmt::format(".{}.arche-tmp-{}-{:x}", target.filename().string(), ::getpid(),
                            reinterpret_cast<uintptr_t>(this) & 0xffffff))
              .string();
  ::unlink(temp_.c_str());  // a leftover of an earlier crashed run with the same pid
}

PendingFile::~PendingFile() {
  if (!committed_) ::unlink(temp_.c_str());
}

void PendingFile::commit(bool durable) {
  if (durable) File::open(temp_, OpenMode::read_only).sync();
  unsigned flags = overwrite_ ? 0 : RENAME_NOREPLACE;
  if (::renameat2(AT_FDCWD, temp_.c_str(), AT_FDCWD, final_.c_str(), flags) != 0)
    throw_errno(errno, "rename " + temp_ + " to " + final_);
  committed_ = true;
  if (durable) {
    boost::filesystem::path target(final_);
    sync_directory(target.has_parent_path() ? target.parent_path().string() : ".");
  }
}

}  // namespace arche
