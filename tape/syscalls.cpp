#include "tape/syscalls.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>

namespace arche::tape {

namespace {

template <typename T>
T result(T r) {
  return r < 0 ? static_cast<T>(-errno) : r;
}

class LinuxTapeSyscalls final : public TapeSyscalls {
 public:
  int open(const std::string& path, int flags) override { return result(::open(path.c_str(), flags | O_CLOEXEC)); }
  int close(int fd) override { return result(::close(fd)); }
  int get_flags(int fd) override { return result(::fcntl(fd, F_GETFL)); }
  int set_flags(int fd, int flags) override { return result(::fcntl(fd, F_SETFL, flags)); }
  ssize_t read(int fd, void* buffer, size_t length) override { return result(::read(fd, buffer, length)); }
  ssize_t write(int fd, const void* data, size_t length) override { return result(::write(fd, data, length)); }
  int mt_op(int fd, const mtop& op) override { return result(::ioctl(fd, MTIOCTOP, &op)); }
  int mt_status(int fd, mtget& status) override { return result(::ioctl(fd, MTIOCGET, &status)); }
};

}  // namespace

std::shared_ptr<TapeSyscalls> linux_tape_syscalls() { return std::make_shared<LinuxTapeSyscalls>(); }

}  // namespace arche::tape
