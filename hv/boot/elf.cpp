#include "hv/boot/elf.h"

#include <elf.h>

#include <cstring>

#include "core/bytes.h"
#include "core/error.h"
#include "core/units.h"

namespace arche::hv {

ElfImage parse_elf(std::span<const uint8_t> image) {
  ByteReader r(image, "kernel ELF header");
  if (image.size() < EI_NIDENT || std::memcmp(image.data(), ELFMAG, SELFMAG) != 0)
    fail(ErrorCategory::format, "kernel: not an ELF file");
  bool is64 = image[EI_CLASS] == ELFCLASS64;
  if (!is64 && image[EI_CLASS] != ELFCLASS32) fail(ErrorCategory::format, "kernel: unknown ELF class");
  if (image[EI_DATA] != ELFDATA2LSB) fail(ErrorCategory::format, "kernel: ELF is not little-endian");
  uint64_t phoff, info_entry;
  uint16_t phentsize, phnum;
  if (is64) {
    r.seek(24);
    info_entry = r.le64();
    phoff = r.le64();
    r.seek(54);
  } else {
    r.seek(24);
    info_entry = r.le32();
    phoff = r.le32();
    r.seek(42);
  }
  phentsize = r.le16();
  phnum = r.le16();
  if (phentsize < (is64 ? 56 : 32) || phnum == 0 || phnum > 128)
    fail(ErrorCategory::format, "kernel: bad ELF program header table ({} entries of {} bytes)", phnum, phentsize);
  ElfImage info;
  info.is64 = is64;
  info.entry = info_entry;
  for (uint16_t i = 0; i < phnum; ++i) {
    ByteReader p(image, "kernel ELF program header");
    if (!range_within(phoff + uint64_t(i) * phentsize, phentsize, image.size()))
      fail(ErrorCategory::format, "kernel: ELF program header {} outside the file", i);
    p.seek(static_cast<size_t>(phoff + uint64_t(i) * phentsize));
    uint32_t type = p.le32();
    ElfSegment s{};
    if (is64) {
      p.skip(4);  // flags
      s.offset = p.le64();
      s.vaddr = p.le64();
      s.paddr = p.le64();
      s.filesz = p.le64();
      s.memsz = p.le64();
    } else {
      s.offset = p.le32();
      s.vaddr = p.le32();
      s.paddr = p.le32();
      s.filesz = p.le32();
      s.memsz = p.le32();
    }
    if (!range_within(s.offset, s.filesz, image.size()))
      fail(ErrorCategory::format, "kernel: ELF segment {} reaches beyond the file", i);
    if (type == PT_LOAD) {
      if (s.filesz > s.memsz) fail(ErrorCategory::format, "kernel: ELF segment {} file size exceeds memory size", i);
      info.loads.push_back(s);
    } else if (type == PT_NOTE) {
      info.notes.push_back(s);
    }
  }
  return info;
}

}  // namespace arche::hv
