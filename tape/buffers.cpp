#include "tape/buffers.h"

#include <sys/mman.h>

namespace arche::tape {

void reserve_buffer(std::vector<uint8_t>& buffer, size_t size) {
  if (buffer.capacity() >= size) return;
  buffer.reserve(size + size / 8);
  // The whole pages inside the allocation; a hint only (no huge pages: still correct).
  constexpr uintptr_t kPage = 4096;
  const auto begin = (reinterpret_cast<uintptr_t>(buffer.data()) + kPage - 1) & ~(kPage - 1);
  const auto end = (reinterpret_cast<uintptr_t>(buffer.data()) + buffer.capacity()) & ~(kPage - 1);
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
}

}  // namespace arche::tape
