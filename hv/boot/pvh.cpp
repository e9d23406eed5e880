// PVH boot (xen/include/public/arch-x86/hvm/start_info.h): the ELF's
// XEN_ELFNOTE_PHYS32_ENTRY note gives a 32-bit entry point that starts in protected
// mode with paging off and %ebx pointing at hvm_start_info.
#include <elf.h>

#include <cstring>

#include "core/bytes.h"
#include "core/error.h"
#include "core/file.h"
#include "core/units.h"
#include "hv/boot/boot.h"
#include "hv/boot/elf.h"
#include "hv/layout.h"

namespace arche::hv {

namespace {

constexpr uint32_t xen_elfnote_phys32_entry = 18;
constexpr uint32_t hvm_start_magic = 0x336ec578;

std::optional<uint64_t> find_pvh_entry(const std::vector<uint8_t>& image, const ElfImage& info) {
  for (const ElfSegment& n : info.notes) {
    ByteReader r(std::span<const uint8_t>(image).subspan(n.offset, n.filesz), "kernel ELF note");
    while (r.remaining() >= 12) {
      uint32_t namesz = r.le32(), descsz = r.le32(), type = r.le32();
      std::string name = r.string(namesz);
      r.skip((4 - namesz % 4) % 4);
      auto desc = r.bytes(descsz);
      r.skip(std::min<size_t>((4 - descsz % 4) % 4, r.remaining()));
      if (type == xen_elfnote_phys32_entry && name.rfind("Xen", 0) == 0) {
        if (descsz == 4) return load_le32(desc.data());
        if (descsz == 8) return load_le64(desc.data());
        fail(ErrorCategory::format, "kernel: PVH entry note has {} bytes", descsz);
      }
    }
  }
  return std::nullopt;
}

}  // namespace

std::vector<E820Entry> e820_map(const GuestMemory& memory) {
  std::vector<E820Entry> map;
  map.push_back({0, layout::ebda, 1});
  map.push_back({layout::ebda, layout::high_memory - layout::ebda, 2});  // EBDA, ROM area, ACPI tables
  map.push_back({layout::high_memory, memory.low_size() - layout::high_memory, 1});
  if (memory.regions().size() > 1) map.push_back({layout::four_gib, memory.regions()[1].size, 1});
  return map;
}

BootEntry load_pvh_elf(const GuestMemory& memory, const std::vector<uint8_t>& image, const BootParams& params) {
  ElfImage info = parse_elf(image);
  std::optional<uint64_t> entry = find_pvh_entry(image, info);
  if (!entry)
    fail(ErrorCategory::format,
         "kernel {}: ELF without a Xen PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); use a bzImage or a PVH kernel",
         params.kernel);
  uint64_t end = 0;
  for (const ElfSegment& s : info.loads) {
    if (s.paddr < layout::high_memory || !memory.ptr(s.paddr, s.memsz))
      fail(ErrorCategory::format, "kernel: ELF segment at {:#x} (+{:#x}) is outside guest RAM above 1 MiB", s.paddr,
           s.memsz);
    uint8_t* dst = memory.ptr(s.paddr, s.memsz);
    std::memcpy(dst, image.data() + s.offset, s.filesz);
    std::memset(dst + s.filesz, 0, s.memsz - s.filesz);
    end = std::max(end, s.paddr + s.memsz);
  }

  // Command line.
  if (params.cmdline.size() + 1 > layout::cmdline_max) fail(ErrorCategory::usage, "vm: kernel command line too long");
  std::vector<uint8_t> cmdline(params.cmdline.begin(), params.cmdline.end());
  cmdline.push_back(0);
  memory.write(layout::cmdline, cmdline);

  // Memory map.
  ByteWriter map;
  std::vector<E820Entry> e820 = e820_map(memory);
  for (const E820Entry& e : e820) {
    map.le64(e.address);
    map.le64(e.size);
    map.le32(e.type);
    map.le32(0);
  }
  memory.write(layout::pvh_memmap, map.buffer());

  // Optional initrd as module 0, page-aligned after the kernel's last byte.
  uint32_t modules = 0;
  if (!params.initrd.empty()) {
    File f = File::open(params.initrd, OpenMode::read_only);
    uint64_t size = f.size();
    uint64_t at = align_up(end, 4096);
    uint8_t* dst = memory.ptr(at, size);
    if (!dst) fail(ErrorCategory::usage, "vm: initrd {} ({}) does not fit in guest RAM", params.initrd, format_size(size));
    f.read_exact(0, {dst, size});
    ByteWriter mod;
    mod.le64(at);
    mod.le64(size);
    mod.le64(0);
    mod.le64(0);
    memory.write(layout::pvh_modlist, mod.buffer());
    modules = 1;
  }

  ByteWriter si;
  si.le32(hvm_start_magic);
  si.le32(1);  // version 1: has the memory map
  si.le32(0);  // flags
  si.le32(modules);
  si.le64(modules ? layout::pvh_modlist : 0);
  si.le64(layout::cmdline);
  si.le64(params.rsdp);
  si.le64(layout::pvh_memmap);
  si.le32(static_cast<uint32_t>(e820.size()));
  si.le32(0);
  memory.write(layout::pvh_start_info, si.buffer());
  return {BootProtocol::pvh, *entry, layout::pvh_start_info, fmt::format("PVH ELF, entry {:#x}", *entry)};
}

BootEntry load_kernel(const GuestMemory& memory, const BootParams& params) {
  File f = File::open(params.kernel, OpenMode::read_only);
  uint64_t size = f.size();
  if (size > 512 * MiB) fail(ErrorCategory::format, "kernel {}: {} is too large for a kernel", params.kernel, format_size(size));
  std::vector<uint8_t> image(size);
  f.read_exact(0, image);
  if (image.size() >= 4 && std::memcmp(image.data(), ELFMAG, SELFMAG) == 0) return load_pvh_elf(memory, image, params);
  if (image.size() >= 0x206 && std::memcmp(image.data() + 0x202, "HdrS", 4) == 0)
    return load_bzimage(memory, image, params);
  fail(ErrorCategory::format, "kernel {}: neither a PVH ELF nor a Linux bzImage", params.kernel);
}

}  // namespace arche::hv
