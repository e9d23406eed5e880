// Reading a file into content-defined chunks (FastCDC), skipping the holes of
// sparse files: holes of kMinHole or more (SEEK_DATA/SEEK_HOLE) are neither read nor
// chunked but reported as holes, so a 100 GiB file holding 3 bytes is read in a
// moment; the data between them is chunked piece by piece. Shorter holes are read as
// the zeros they are, so a dense and a slightly sparse copy cut into the same chunks.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "backup/fastcdc.h"
#include "core/file.h"

namespace arche::backup {

constexpr uint64_t kMinHole = 1u << 20;

struct ReadCount {
  uint64_t covered = 0;  // bytes of the file accounted for (data and holes)
  uint64_t read = 0;     // bytes actually read
};

// Calls `emit` for each chunk and `hole` for each hole (at most kMaxHoleLength each),
// in file order, up to the end of file wherever it is when reached.
ReadCount read_chunks(const File& file, const FastCdc& cdc, std::vector<uint8_t>& buffer,
                      const std::function<void(std::span<const uint8_t>)>& emit,
                      const std::function<void(uint64_t)>& hole);

}  // namespace arche::backup
