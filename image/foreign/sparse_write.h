// Writing into space that already reads as zeros (a block just allocated past the
// old end of an image file): pages that are all zero are skipped, so the host file
// stays sparse and conversions of disks with zero runs do not fill the disk.
#pragma once

#include <cstdint>
#include <span>

#include "core/file.h"

namespace arche::image::foreign {

// Writes `data` at `offset`, skipping 4 KiB file pages that would only receive zeros.
// The caller guarantees that the target range reads as zeros beforehand.
void write_into_zeroed(const File& file, uint64_t offset, std::span<const uint8_t> data);

// What the host file holds at [host, host+max): a hole (reads as zeros) or data,
// and for how many bytes. Files without SEEK_DATA report data.
struct HostRun {
  bool hole = false;
  uint64_t length = 0;
};
HostRun host_run(const File& file, uint64_t host, uint64_t max);

}  // namespace arche::image::foreign
