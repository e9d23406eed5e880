#include "tape/drive.h"

#include <fcntl.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace arche::tape {

namespace {
std::string errno_text(long r) { return std::strerror(static_cast<int>(-r)); }
}  // namespace

TapeDrive::TapeDrive(std::shared_ptr<TapeSyscalls> sys, std::string path, bool writable)
    : sys_(std::move(sys)), path_(std::move(path)) {
  const int fd = sys_->open(path_, (writable ? O_RDWR : O_RDONLY) | O_NONBLOCK);
  if (fd == -EROFS || (writable && fd == -EACCES))
    fail(ErrorCategory::permission, "tape in {} is write-protected", path_);
  if (fd == -ENOENT) fail(ErrorCategory::not_found, "{}: no such tape drive or cartridge", path_);
  if (fd == -ENOMEDIUM) fail(ErrorCategory::not_found, "{}: no tape loaded", path_);
  if (fd < 0) fail(ErrorCategory::io, "{}: cannot open: {}", path_, errno_text(fd));
  fd_ = fd;
  try {
    const int flags = sys_->get_flags(fd_);
    if (flags < 0 || sys_->set_flags(fd_, flags & ~O_NONBLOCK) < 0)
      fail(ErrorCategory::io, "{}: cannot clear O_NONBLOCK", path_);
    const DriveStatus s = status();
    if (!s.online) fail(ErrorCategory::not_found, "{}: no tape loaded (drive offline)", path_);
    if (writable && s.write_protected) fail(ErrorCategory::permission, "tape in {} is write-protected", path_);
    op(MTSETBLK, 0, "set variable-block mode");
  } catch (...) {
    sys_->close(fd_);
    throw;
  }
}

TapeDrive::~TapeDrive() {
  if (fd_ >= 0) sys_->close(fd_);
}

void TapeDrive::op(short code, int count, const char* what) {
  mtop o{};
  o.mt_op = code;
  o.mt_count = count;
  const int r = sys_->mt_op(fd_, o);
  if (r < 0) fail(r == -ENOSPC ? ErrorCategory::no_space : ErrorCategory::io, "{}: {}: {}", path_, what, errno_text(r));
}

DriveStatus TapeDrive::status() {
  mtget g{};
  const int r = sys_->mt_status(fd_, g);
  if (r < 0) fail(ErrorCategory::io, "{}: status (MTIOCGET): {}", path_, errno_text(r));
  DriveStatus s;
  s.online = GMT_ONLINE(g.mt_gstat);
  s.beginning = GMT_BOT(g.mt_gstat);
  s.early_warning = GMT_EOT(g.mt_gstat);
  s.end_of_data = GMT_EOD(g.mt_gstat);
  s.write_protected = GMT_WR_PROT(g.mt_gstat);
  s.file_number = g.mt_fileno;
  s.block_number = g.mt_blkno;
  return s;
}

void TapeDrive::rewind() { op(MTREW, 1, "rewind"); }

void TapeDrive::locate_file(uint32_t file) {
  rewind();
  if (file > 1) skip_files_forward(file - 1);
}

void TapeDrive::skip_files_forward(uint32_t count) {
  op(MTFSF, static_cast<int>(count), "space forward over filemarks");
}
void TapeDrive::skip_files_back(uint32_t count) { op(MTBSF, static_cast<int>(count), "space back over filemarks"); }
void TapeDrive::to_end_of_data() { op(MTEOM, 1, "space to end of data"); }
void TapeDrive::write_filemark() { op(MTWEOF, 1, "write filemark"); }

bool TapeDrive::write_record(std::span<const uint8_t> record) {
  for (int attempt = 0;; ++attempt) {
    const ssize_t r = sys_->write(fd_, record.data(), record.size());
    if (r == static_cast<ssize_t>(record.size())) return warned_;
    if (r == -ENOSPC && attempt == 0 && !warned_) {
      warned_ = true;  // early warning: st lets the next write through
      continue;
    }
    if (r == -ENOSPC) fail(ErrorCategory::no_space, "{}: end of tape reached", path_);
    if (r >= 0) fail(ErrorCategory::io, "{}: short write ({} of {} bytes)", path_, r, record.size());
    fail(ErrorCategory::io, "{}: write: {}", path_, errno_text(r));
  }
}

ReadResult TapeDrive::read_record(std::span<uint8_t> buffer) {
  const ssize_t r = sys_->read(fd_, buffer.data(), buffer.size());
  if (r > 0) return {ReadKind::record, static_cast<size_t>(r)};
  if (r == 0) return {status().end_of_data ? ReadKind::end_of_data : ReadKind::filemark, 0};
  if (r == -ENOMEM)
    fail(ErrorCategory::format, "{}: a block larger than {} bytes (not an arche tape record)", path_, buffer.size());
  fail(ErrorCategory::io, "{}: read: {}", path_, errno_text(r));
}

}  // namespace arche::tape
