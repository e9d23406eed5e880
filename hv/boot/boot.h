// Kernel loaders. load_kernel() looks at the file: an ELF with the Xen PVH note is
// booted through PVH (32-bit entry, hvm_start_info); a bzImage through the Linux
// 64-bit boot protocol (zero page, e820, command line, initrd).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hv/memory.h"

namespace arche::hv {

enum class BootProtocol { pvh, linux64 };

struct BootParams {
  std::string kernel;
  std::string initrd;
  std::string cmdline;
  uint64_t rsdp = 0;
  // bzImage: decompress the kernel on the host and enter vmlinux directly (the
  // default); false lets the kernel's own decompressor run in the guest.
  bool decompress_on_host = true;
};

struct BootEntry {
  BootProtocol protocol;
  uint64_t entry = 0;       // guest-physical entry point
  uint64_t boot_info = 0;   // hvm_start_info (PVH) or boot_params (Linux)
  std::string how;          // one line for verbose output: what was loaded where
};

// The e820 map both protocols hand the guest.
struct E820Entry {
  uint64_t address, size;
  uint32_t type;  // 1 RAM, 2 reserved, 3 ACPI
};
std::vector<E820Entry> e820_map(const GuestMemory& memory);

BootEntry load_kernel(const GuestMemory& memory, const BootParams& params);

// Pieces used by load_kernel, public for tests.
BootEntry load_pvh_elf(const GuestMemory& memory, const std::vector<uint8_t>& image, const BootParams& params);
BootEntry load_bzimage(const GuestMemory& memory, const std::vector<uint8_t>& image, const BootParams& params);

}  // namespace arche::hv
