#include "hv/memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "core/units.h"
#include "hv/layout.h"

namespace arche::hv {

GuestMemory::GuestMemory(uint64_t size) : size_(size) {
  if (size < 16 * MiB) fail(ErrorCategory::usage, "vm: memory {} is too small (at least 16M)", format_size(size));
  if (size % (2 * MiB)) fail(ErrorCategory::usage, "vm: memory must be a multiple of 2M");
  if (size > 1 * TiB) fail(ErrorCategory::usage, "vm: memory {} is too large", format_size(size));
  int fd = ::memfd_create("arche-guest-ram", MFD_CLOEXEC);
  if (fd < 0) throw_errno(errno, "vm: memfd_create for guest RAM");
  memfd_.reset(fd);
  if (::ftruncate(fd, static_cast<off_t>(size)) < 0) throw_errno(errno, "vm: size guest RAM");
  mapping_ = Mapping::of_file(fd, size, 0, true);
  // Guest RAM is lazily allocated; merging and transparent huge pages help a lot.
  ::madvise(mapping_.data(), size, MADV_HUGEPAGE);
  uint64_t low = std::min<uint64_t>(size, layout::pci_hole_start);
  regions_.push_back({0, low, 0});
  if (size > low) regions_.push_back({layout::four_gib, size - low, low});
}

uint8_t* GuestMemory::ptr(uint64_t gpa, uint64_t length) const {
  for (const auto& r : regions_) {
    if (gpa >= r.guest_address && range_within(gpa - r.guest_address, length, r.size))
      return mapping_.data() + r.offset + (gpa - r.guest_address);
  }
  return nullptr;
}

uint8_t* GuestMemory::checked(uint64_t gpa, uint64_t length, const char* what) const {
  uint8_t* p = ptr(gpa, length);
  if (!p) fail(ErrorCategory::kvm, "vm: {} at guest address {:#x} (+{:#x}) is outside guest RAM", what, gpa, length);
  return p;
}

void GuestMemory::write(uint64_t gpa, std::span<const uint8_t> data) const {
  std::memcpy(checked(gpa, data.size(), "write"), data.data(), data.size());
}

void GuestMemory::read(uint64_t gpa, std::span<uint8_t> out) const {
  std::memcpy(out.data(), checked(gpa, out.size(), "read"), out.size());
}

}  // namespace arche::hv
