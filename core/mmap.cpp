#include "core/mmap.h"

#include <sys/mman.h>

#include <cerrno>

#include "core/error.h"

namespace arche {

Mapping Mapping::anonymous(size_t size, int extra_flags) {
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | extra_flags, -1, 0);
  if (p == MAP_FAILED) throw_errno(errno, fmt::format("map {} bytes of memory", size));
  Mapping m;
  m.addr_ = p;
  m.size_ = size;
  return m;
}

Mapping Mapping::of_file(int fd, size_t size, uint64_t offset, bool writable) {
  int prot = PROT_READ | (writable ? PROT_WRITE : 0);
  void* p = ::mmap(nullptr, size, prot, writable ? MAP_SHARED : MAP_PRIVATE, fd, static_cast<off_t>(offset));
  if (p == MAP_FAILED) throw_errno(errno, fmt::format("map {} bytes of a file at offset {}", size, offset));
  Mapping m;
  m.addr_ = p;
  m.size_ = size;
  return m;
}

Mapping& Mapping::operator=(Mapping&& other) noexcept {
  if (this != &other) {
    reset();
    addr_ = other.addr_;
    size_ = other.size_;
    other.addr_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

void Mapping::reset() {
  if (addr_) ::munmap(addr_, size_);
  addr_ = nullptr;
  size_ = 0;
}

}  // namespace arche
