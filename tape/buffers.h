// Large byte buffers that are reused (packs read ahead for the tape, objects read
// back from it). The first touch of fresh memory costs a page fault per 4 KiB,
// and on a virtual machine those faults, not the copies, were most of the time of
// a tape backup: the buffers are asked for transparent huge pages (512 times
// fewer faults, where the kernel has them) and are kept for the next object.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace arche::tape {

// Makes `buffer` hold at least `size` bytes without reallocating (with an eighth
// more, for a somewhat larger object later).
void reserve_buffer(std::vector<uint8_t>& buffer, size_t size);

}  // namespace arche::tape
