#include "image/foreign/sparse_write.h"

#include <algorithm>

#include "core/bytes.h"
#include "core/units.h"

namespace arche::image::foreign {

void write_into_zeroed(const File& file, uint64_t offset, std::span<const uint8_t> data) {
  constexpr uint64_t kPage = 4096;
  size_t pos = 0;
  while (pos < data.size()) {
    // Pages are aligned in the file, so a skipped page is a whole host page.
    size_t page_end = std::min<size_t>(data.size(), static_cast<size_t>(align_down(offset + pos, kPage) + kPage - offset));
    if (all_zero(data.subspan(pos, page_end - pos))) {
      pos = page_end;
      continue;
    }
    size_t run_end = page_end;
    while (run_end < data.size()) {
      size_t next = std::min<size_t>(data.size(), run_end + kPage);
      if (all_zero(data.subspan(run_end, next - run_end))) break;
      run_end = next;
    }
    file.write_all(offset + pos, data.subspan(pos, run_end - pos));
    pos = run_end;
  }
}

HostRun host_run(const File& file, uint64_t host, uint64_t max) {
  std::optional<uint64_t> data = file.seek_data(host);
  if (!data) return {false, max};
  if (*data > host) return {true, std::min(*data - host, max)};
  std::optional<uint64_t> hole = file.seek_hole(host);
  if (!hole || *hole <= host) return {false, max};
  return {false, std::min(*hole - host, max)};
}

}  // namespace arche::image::foreign
