// RAII wrappers for file descriptors and the positioned I/O every driver needs.
// All calls retry on EINTR and on short transfers, and throw arche::Error with the
// path and offset in the message, so callers never check return codes.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace arche {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

enum class OpenMode {
  read_only,
  read_write,
  create_new,       // read-write, fails if the path exists (O_EXCL)
  create_truncate,  // read-write, creates or truncates
};

class File {
 public:
  File() = default;
  static File open(const std::string& path, OpenMode mode, int extra_flags = 0);
  static File adopt(UniqueFd fd, std::string name, bool writable);

  const std::string& path() const { return path_; }
  int fd() const { return fd_.get(); }
  bool is_open() const { return static_cast<bool>(fd_); }
  bool writable() const { return writable_; }
  bool is_block_device() const { return block_device_; }

  // Size in bytes: st_size for files, BLKGETSIZE64 for block devices.
  uint64_t size() const;
  // Bytes the file really occupies on disk (st_blocks * 512).
  uint64_t allocated_bytes() const;

  // Reads exactly out.size() bytes; reading past the end is a format error
  // ("truncated"), because for images it means a damaged or cut-off file.
  void read_exact(uint64_t offset, std::span<uint8_t> out) const;
  // Reads up to out.size() bytes, stopping at end of file; returns bytes read.
  size_t read_some(uint64_t offset, std::span<uint8_t> out) const;
  void write_all(uint64_t offset, std::span<const uint8_t> data) const;

  void truncate(uint64_t size) const;
  void sync_data() const;  // fdatasync
  void sync() const;       // fsync

  // Deallocates a range, which then reads as zeros. False when the file system or
  // device cannot (the caller then writes zeros).
  bool punch_hole(uint64_t offset, uint64_t length) const;
  // Makes a range read as zeros, keeping it allocated. False when unsupported.
  bool zero_range(uint64_t offset, uint64_t length) const;
  // Makes [offset, offset+length) of this file share the extents of `source` at
  // source_offset instead of copying them (FICLONERANGE: XFS with reflink, btrfs);
  // the file grows when the range reaches past its end. Offsets and length must be
  // multiples of the file system's block size. False, with nothing changed, when
  // the two files cannot share extents (another file system, none that can).
  bool clone_range(uint64_t offset, const File& source, uint64_t source_offset, uint64_t length) const;
  // SEEK_DATA / SEEK_HOLE. nullopt when the file system does not support them.
  // seek_data returns the end of file when there is no data after `from`.
  std::optional<uint64_t> seek_data(uint64_t from) const;
  std::optional<uint64_t> seek_hole(uint64_t from) const;

  // Shared (read) locks on single bytes, as open file description (OFD) locks: they
  // belong to this open file, so two opens in one process see each other like two
  // processes, and they vanish when the file is closed. This is the primitive of
  // QEMU's image locking (image/image_lock.h). On a file system without locks both
  // report "no conflict": the locks are advisory and never a reason to refuse work.
  // lock_byte_shared returns false when another open file holds a write lock there.
  bool lock_byte_shared(uint64_t offset) const;
  void unlock_byte(uint64_t offset) const;
  // True when another open file holds any lock on the byte.
  bool byte_locked_by_other(uint64_t offset) const;

 private:
  UniqueFd fd_;
  std::string path_;
  bool writable_ = false;
  bool block_device_ = false;
};

// fsync on a directory, so a rename or create inside it survives a crash.
void sync_directory(const std::string& dir);

// Writes `data` to `path` atomically: temp file in the same directory, fsync, rename,
// fsync of the directory. A reader sees the old content or the new, never a mix.
void write_file_atomic(const std::string& path, std::span<const uint8_t> data);

// A file that appears under its final name only when complete. Work is written to a
// temporary name in the same directory; commit() renames it into place (refusing to
// replace an existing file unless `overwrite`). Destroyed uncommitted, it is deleted:
// a crash or an error never leaves a half-written file under the final name.
class PendingFile {
 public:
  PendingFile(std::string final_path, bool overwrite);
  ~PendingFile();
  PendingFile(const PendingFile&) = delete;
  PendingFile& operator=(const PendingFile&) = delete;

  const std::string& temp_path() const { return temp_; }
  const std::string& final_path() const { return final_; }
  // durable: fsync the file before and the directory after the rename.
  void commit(bool durable);

 private:
  std::string final_;
  std::string temp_;
  bool overwrite_;
  bool committed_ = false;
};

}  // namespace arche
