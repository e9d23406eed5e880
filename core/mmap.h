// RAII for memory mappings: guest RAM (hv), large read-only views of files.
#pragma once

#include <cstddef>
#include <cstdint>

namespace arche {

class Mapping {
 public:
  Mapping() = default;
  // Private anonymous memory, zero-filled; `flags` are added to MAP_PRIVATE|MAP_ANONYMOUS.
  static Mapping anonymous(size_t size, int extra_flags = 0);
  // A view of `size` bytes of fd at `offset` (page-aligned). `writable` maps it shared.
  static Mapping of_file(int fd, size_t size, uint64_t offset, bool writable);

  ~Mapping() { reset(); }
  Mapping(Mapping&& other) noexcept { *this = static_cast<Mapping&&>(other); }
  Mapping& operator=(Mapping&& other) noexcept;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;

  uint8_t* data() const { return static_cast<uint8_t*>(addr_); }
  size_t size() const { return size_; }
  explicit operator bool() const { return addr_ != nullptr; }
  void reset();

 private:
  void* addr_ = nullptr;
  size_t size_ = 0;
};

}  // namespace arche
