// The little of ELF the loaders need: PT_LOAD and PT_NOTE program headers and the
// entry point, bounds-checked against the file (ELF32 and ELF64, little-endian).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace arche::hv {

struct ElfSegment {
  uint64_t paddr, vaddr, filesz, memsz, offset;
};

struct ElfImage {
  bool is64 = false;
  uint64_t entry = 0;
  std::vector<ElfSegment> loads;
  std::vector<ElfSegment> notes;
};

ElfImage parse_elf(std::span<const uint8_t> image);

}  // namespace arche::hv
