// The Linux x86 boot protocol, 64-bit entry (Documentation/arch/x86/boot.rst): the
// protected-mode kernel of a bzImage at 1 MiB, a zero page (boot_params) with the
// setup header copied from the image, an e820 map, the command line and an initrd
// near the top of low RAM. The vCPU starts in long mode at load address + 0x200.
#include <cstring>
#include <optional>

#include "core/bytes.h"
#include "core/error.h"
#include "core/file.h"
#include "core/units.h"
#include "hv/boot/boot.h"
#include "hv/boot/elf.h"
#include "hv/boot/kernel_payload.h"
#include "hv/layout.h"

namespace arche::hv {

namespace {
constexpr size_t hdr_setup_sects = 0x1f1, hdr_version = 0x206, hdr_type_of_loader = 0x210, hdr_loadflags = 0x211,
                 hdr_ramdisk_image = 0x218, hdr_ramdisk_size = 0x21c, hdr_heap_end = 0x224, hdr_cmd_line_ptr = 0x228,
                 hdr_initrd_addr_max = 0x22c, hdr_xloadflags = 0x236, hdr_cmdline_size = 0x238,
                 hdr_init_size = 0x260;
constexpr size_t bp_acpi_rsdp = 0x070, bp_e820_entries = 0x1e8, bp_e820_table = 0x2d0;
constexpr uint8_t loaded_high = 0x01, can_use_heap = 0x80;
constexpr uint16_t xlf_kernel_64 = 0x1;
}  // namespace

BootEntry load_bzimage(const GuestMemory& memory, const std::vector<uint8_t>& image, const BootParams& params) {
  uint16_t version = load_le16(&image[hdr_version]);
  if (version < 0x020c)
    fail(ErrorCategory::unsupported, "kernel {}: boot protocol {}.{} is too old (64-bit entry needs 2.12)", params.kernel,
         version >> 8, version & 0xff);
  if (image.size() < hdr_init_size + 4) fail(ErrorCategory::format, "kernel {}: truncated setup header", params.kernel);
  if (!(load_le16(&image[hdr_xloadflags]) & xlf_kernel_64))
    fail(ErrorCategory::unsupported, "kernel {}: no 64-bit entry point (XLF_KERNEL_64)", params.kernel);
  unsigned setup_sects = image[hdr_setup_sects] ? image[hdr_setup_sects] : 4;
  uint64_t kernel_offset = (uint64_t(setup_sects) + 1) * 512;
  if (kernel_offset >= image.size()) fail(ErrorCategory::format, "kernel {}: setup larger than the file", params.kernel);
  uint64_t kernel_size = image.size() - kernel_offset;
  uint64_t init_size = load_le32(&image[hdr_init_size]);
  uint64_t load_at = layout::high_memory;
  uint64_t kernel_end = load_at + std::max(kernel_size, init_size);
  uint64_t entry = load_at + 0x200;  // 64-bit entry of the decompressor
  std::string how;
  std::optional<KernelPayload> payload;
  if (params.decompress_on_host) payload = decompress_kernel_payload(image);
  if (payload) {
    // vmlinux at its physical link address (no relocation needed, no KASLR).
    ElfImage elf = parse_elf(payload->vmlinux);
    if (!elf.is64 || elf.loads.empty()) fail(ErrorCategory::format, "kernel {}: payload is not a 64-bit ELF", params.kernel);
    kernel_end = 0;
    entry = 0;
    for (const ElfSegment& s : elf.loads) {
      uint8_t* dst = memory.ptr(s.paddr, s.memsz);
      if (!dst || s.paddr < layout::high_memory)
        fail(ErrorCategory::usage, "vm: the kernel's segment at {:#x} (+{}) does not fit in guest RAM; give the VM more memory",
             s.paddr, format_size(s.memsz));
      std::memcpy(dst, payload->vmlinux.data() + s.offset, s.filesz);
      std::memset(dst + s.filesz, 0, s.memsz - s.filesz);
      kernel_end = std::max(kernel_end, s.paddr + s.memsz);
      // vmlinux records its entry as a physical address (phys_startup_64); accept a
      // virtual one too.
      if (elf.entry >= s.paddr && elf.entry - s.paddr < s.memsz) entry = elf.entry;
      else if (elf.entry >= s.vaddr && elf.entry - s.vaddr < s.memsz) entry = s.paddr + (elf.entry - s.vaddr);
    }
    if (!entry) fail(ErrorCategory::format, "kernel {}: vmlinux entry point outside its segments", params.kernel);
    kernel_end = std::max(kernel_end, elf.loads.front().paddr + init_size);
    how = fmt::format("bzImage payload ({}, {}) decompressed on the host; vmlinux entry {:#x}", payload->compression,
                      format_size(payload->vmlinux.size()), entry);
  } else {
    if (!memory.ptr(load_at, kernel_end - load_at))
      fail(ErrorCategory::usage, "vm: the kernel needs {} of RAM above 1 MiB; give the VM more memory",
           format_size(kernel_end - load_at));
    memory.write(load_at, std::span(image).subspan(kernel_offset));
    how = fmt::format("bzImage at {:#x}; the kernel decompresses itself", load_at);
  }

  std::vector<uint8_t> zero_page(4096, 0);
  size_t header_end = std::min<size_t>(0x202 + image[0x201], 0x290);
  std::memcpy(&zero_page[hdr_setup_sects], &image[hdr_setup_sects], header_end - hdr_setup_sects);
  zero_page[hdr_type_of_loader] = 0xff;  // undefined boot loader
  zero_page[hdr_loadflags] |= loaded_high | can_use_heap;
  store_le16(&zero_page[hdr_heap_end], 0xfe00);

  uint32_t cmdline_max = load_le32(&image[hdr_cmdline_size]);
  if (params.cmdline.size() > std::min<uint64_t>(cmdline_max, layout::cmdline_max - 1))
    fail(ErrorCategory::usage, "vm: kernel command line has {} bytes, the kernel takes {}", params.cmdline.size(),
         cmdline_max);
  std::vector<uint8_t> cmdline(params.cmdline.begin(), params.cmdline.end());
  cmdline.push_back(0);
  memory.write(layout::cmdline, cmdline);
  store_le32(&zero_page[hdr_cmd_line_ptr], static_cast<uint32_t>(layout::cmdline));

  if (!params.initrd.empty()) {
    File f = File::open(params.initrd, OpenMode::read_only);
    uint64_t size = f.size();
    uint64_t limit = std::min<uint64_t>(load_le32(&image[hdr_initrd_addr_max]) + uint64_t(1), memory.low_size());
    if (size > limit || align_down(limit - size, 4096) < kernel_end)
      fail(ErrorCategory::usage, "vm: initrd {} ({}) does not fit below {:#x} after the kernel; give the VM more memory",
           params.initrd, format_size(size), limit);
    uint64_t at = align_down(limit - size, 4096);
    f.read_exact(0, {memory.checked(at, size, "initrd"), size});
    store_le32(&zero_page[hdr_ramdisk_image], static_cast<uint32_t>(at));
    store_le32(&zero_page[hdr_ramdisk_size], static_cast<uint32_t>(size));
  }

  std::vector<E820Entry> e820 = e820_map(memory);
  zero_page[bp_e820_entries] = static_cast<uint8_t>(e820.size());
  for (size_t i = 0; i < e820.size(); ++i) {
    uint8_t* e = &zero_page[bp_e820_table + 20 * i];
    store_le64(e, e820[i].address);
    store_le64(e + 8, e820[i].size);
    store_le32(e + 16, e820[i].type);
  }
  if (version >= 0x020e) store_le64(&zero_page[bp_acpi_rsdp], params.rsdp);
  memory.write(layout::zero_page, zero_page);
  return {BootProtocol::linux64, entry, layout::zero_page, how};
}

}  // namespace arche::hv
