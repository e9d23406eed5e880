// Guest RAM: one memfd (so a later snapshot can write or map it as a file) split
// into a low region below the PCI hole and a high region above 4 GiB. Devices reach
// guest memory only through ptr(), which refuses ranges that are not entirely RAM:
// a guest that hands a device a wild address gets an error, never a host crash.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/file.h"
#include "core/mmap.h"

namespace arche::hv {

struct MemoryRegion {
  uint64_t guest_address;
  uint64_t size;
  uint64_t offset;  // into the host mapping (and the memfd)
};

class GuestMemory {
 public:
  explicit GuestMemory(uint64_t size);

  uint64_t size() const { return size_; }
  const std::vector<MemoryRegion>& regions() const { return regions_; }
  uint8_t* host_base() const { return mapping_.data(); }
  int memfd() const { return memfd_.get(); }

  // Host pointer for [gpa, gpa+length), or nullptr when any byte is not RAM.
  uint8_t* ptr(uint64_t gpa, uint64_t length) const;
  // Like ptr() but throws a kvm error naming `what`.
  uint8_t* checked(uint64_t gpa, uint64_t length, const char* what) const;

  void write(uint64_t gpa, std::span<const uint8_t> data) const;
  void read(uint64_t gpa, std::span<uint8_t> out) const;
  template <typename T>
  void write_obj(uint64_t gpa, const T& v) const {
    write(gpa, {reinterpret_cast<const uint8_t*>(&v), sizeof v});
  }

  // Bytes of RAM below the PCI hole.
  uint64_t low_size() const { return regions_[0].size; }

 private:
  uint64_t size_;
  UniqueFd memfd_;
  Mapping mapping_;
  std::vector<MemoryRegion> regions_;
};

}  // namespace arche::hv
