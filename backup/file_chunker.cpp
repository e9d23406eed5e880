#include "backup/file_chunker.h"

#include <algorithm>
#include <cstring>

#include "backup/chunk_list.h"
#include "core/interrupt.h"

namespace arche::backup {

namespace {

// Cuts [offset, end) of `file` (end: UINT64_MAX = up to the end of file, wherever it
// is by then) into content-defined chunks.
void chunk_range(const File& file, uint64_t offset, uint64_t end, const FastCdc& cdc, std::vector<uint8_t>& buffer,
                 const std::function<void(std::span<const uint8_t>)>& emit, ReadCount& count) {
  const size_t max = cdc.params().max_size;
  buffer.resize(2 * max);
  size_t start = 0, filled = 0;
  bool eof = false;
  while (!eof || start < filled) {
    if (!eof && filled - start < max) {
      if (start > 0) {
        std::memmove(buffer.data(), buffer.data() + start, filled - start);
        filled -= start;
        start = 0;
      }
      size_t want = buffer.size() - filled;
      if (end != UINT64_MAX) want = static_cast<size_t>(std::min<uint64_t>(want, end - offset));
      size_t got = want ? file.read_some(offset, std::span(buffer.data() + filled, want)) : 0;
      offset += got;
      filled += got;
      count.read += got;
      count.covered += got;
      if (got == 0) eof = true;
      continue;
    }
    size_t n = cdc.cut(std::span(buffer.data() + start, filled - start), eof);
    if (n == 0) continue;  // needs more data (cannot happen once eof)
    emit(std::span(buffer.data() + start, n));
    start += n;
  }
}

}  // namespace

ReadCount read_chunks(const File& file, const FastCdc& cdc, std::vector<uint8_t>& buffer,
                      const std::function<void(std::span<const uint8_t>)>& emit,
                      const std::function<void(uint64_t)>& hole) {
  ReadCount count;
  const uint64_t size = file.size();
  if (file.allocated_bytes() >= size || !file.seek_data(0)) {
    chunk_range(file, 0, UINT64_MAX, cdc, buffer, emit, count);
    return count;
  }
  uint64_t pos = 0;
  while (pos < size) {
    interrupt::check();
    // The next hole worth skipping: from the end of this data to the next data.
    uint64_t data_end = pos;
    uint64_t next_data = pos;
    for (;;) {
      std::optional<uint64_t> h = file.seek_hole(data_end);
      data_end = h ? std::min(*h, size) : size;
      if (data_end >= size) break;
      std::optional<uint64_t> d = file.seek_data(data_end);
      next_data = d ? std::min(*d, size) : size;
      if (next_data - data_end >= kMinHole || next_data >= size) break;
      data_end = next_data;  // a short hole: read it as zeros
    }
    if (data_end > pos) {
      // The last piece reads to the end of file, so growth while reading is seen.
      const uint64_t end = data_end >= size ? UINT64_MAX : data_end;
      ReadCount piece;
      chunk_range(file, pos, end, cdc, buffer, emit, piece);
      count.read += piece.read;
      count.covered += piece.covered;
      if (end == UINT64_MAX) return count;
      pos += piece.covered;
      if (pos < data_end) return count;  // shrank while read: stop where it ended
    }
    const uint64_t hole_end = std::max(next_data, data_end) >= size ? size : next_data;
    for (uint64_t h = pos; h < hole_end;) {
      const uint64_t n = std::min<uint64_t>(kMaxHoleLength, hole_end - h);
      hole(n);
      h += n;
      count.covered += n;
    }
    pos = hole_end;
  }
  return count;
}

}  // namespace arche::backup
