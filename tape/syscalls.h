// The system calls a tape drive is driven with, behind one small interface so that
// the same drive code (drive.h) runs the Linux SCSI tape driver (st), the virtual
// tape (vtape.h) and a recording fake in the tests, which checks the exact sequence
// of ioctls (tests/tape/st_sequence_test.cpp).
//
// Every method returns what the system call returns, except that failures return
// -errno instead of -1 (no errno to carry between threads).
#pragma once

#include <sys/mtio.h>
#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <string>

namespace arche::tape {

class TapeSyscalls {
 public:
  virtual ~TapeSyscalls() = default;
  virtual int open(const std::string& path, int flags) = 0;
  virtual int close(int fd) = 0;
  virtual int get_flags(int fd) = 0;             // fcntl(F_GETFL)
  virtual int set_flags(int fd, int flags) = 0;  // fcntl(F_SETFL)
  virtual ssize_t read(int fd, void* buffer, size_t length) = 0;
  virtual ssize_t write(int fd, const void* data, size_t length) = 0;
  virtual int mt_op(int fd, const mtop& op) = 0;     // ioctl(MTIOCTOP)
  virtual int mt_status(int fd, mtget& status) = 0;  // ioctl(MTIOCGET)
};

// The kernel's.
std::shared_ptr<TapeSyscalls> linux_tape_syscalls();

}  // namespace arche::tape
