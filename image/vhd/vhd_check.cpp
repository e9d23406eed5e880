// `image check` for VHD: footer and its copy, dynamic header, and a BAT whose
// blocks lie inside the file without overlapping. Repair rewrites a damaged footer
// at the end of a dynamic disk from its copy at offset 0.
#include <algorithm>
#include <cstring>

#include "core/endian.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "core/units.h"
#include "image/format.h"
#include "image/vhd/vhd_format.h"

namespace arche::image::vhd {

CheckResult check_vhd(const std::string& path, RepairMode repair) {
  File file = File::open(path, repair == RepairMode::none ? OpenMode::read_only : OpenMode::read_write);
  OpenOptions lock_options;
  lock_options.writable = repair != RepairMode::none;
  lock_image_file(file, lock_options);
  CheckResult r;
  auto problem = [&](std::string message) {
    r.messages.push_back("ERROR " + message);
    ++r.corruptions;
  };
  const uint64_t file_size = file.size();
  if (file_size < kFooterSize) fail(ErrorCategory::format, "{}: too small for a VHD image", path);
  std::array<uint8_t, kFooterSize> end{}, start{};
  file.read_exact(file_size - kFooterSize, end);
  file.read_exact(0, start);
  Footer f;
  bool end_ok = false;
  try {
    f = parse_footer(end, "footer");
    end_ok = true;
  } catch (const Error& e) {
    try {
      f = parse_footer(start, "footer copy");
    } catch (const Error&) {
      throw Error(e.category(), path + ": " + e.what());
    }
    if (repair != RepairMode::none && f.disk_type != DiskType::fixed) {
      // The footer belongs after the last block: appending it is safe either way.
      file.write_all(align_up(file_size, kSector), encode_footer(f));
      file.sync();
      r.messages.push_back(fmt::format("Repaired: {}; footer rewritten from the copy at offset 0", e.what()));
      ++r.corruptions_fixed;
    } else {
      problem(e.what());
    }
  }
  r.image_end_offset = file_size;
  if (f.disk_type == DiskType::fixed) {
    if (virtual_size(f) > file_size - kFooterSize)
      problem(fmt::format("fixed disk of {} bytes, but the file holds only {} bytes of data", virtual_size(f),
                          file_size - kFooterSize));
    return r;
  }
  if (end_ok && std::memcmp(start.data(), end.data(), kFooterSize) != 0) problem("the footer copy at offset 0 differs from the footer");
  if (!range_within(f.data_offset, kDynamicHeaderSize, file_size)) {
    problem(fmt::format("dynamic header offset 0x{:x} lies outside the file", f.data_offset));
    return r;
  }
  std::array<uint8_t, kDynamicHeaderSize> raw{};
  file.read_exact(f.data_offset, raw);
  DynamicHeader h;
  try {
    h = parse_dynamic_header(raw, "dynamic header");
  } catch (const Error& e) {
    problem(e.what());
    return r;
  }
  const uint64_t block_size = h.block_size, bitmap = bitmap_bytes(block_size);
  const uint64_t needed = div_round_up(virtual_size(f), block_size);
  r.total_clusters = needed;
  if (h.max_table_entries < needed) problem(fmt::format("BAT has {} entries, the disk needs {}", h.max_table_entries, needed));
  const uint64_t table_bytes = uint64_t{h.max_table_entries} * 4;
  if (!range_within(h.table_offset, table_bytes, file_size)) {
    problem(fmt::format("BAT at 0x{:x} lies outside the file", h.table_offset));
    return r;
  }
  std::vector<uint8_t> table(table_bytes);
  file.read_exact(h.table_offset, table);
  std::vector<std::pair<uint64_t, uint64_t>> blocks;  // (host, index)
  for (uint64_t i = 0; i < h.max_table_entries; ++i) {
    if (i % 4096 == 0) interrupt::check();
    uint32_t e = load_be32(table.data() + i * 4);
    if (e == kUnallocated) continue;
    if (i >= needed) {
      problem(fmt::format("BAT entry {} lies beyond the end of the disk but is allocated", i));
      continue;
    }
    uint64_t host = uint64_t{e} * kSector;
    if (!range_within(host, bitmap + block_size, file_size)) {
      problem(fmt::format("block {} at 0x{:x} lies outside the file", i, host));
      continue;
    }
    if (host < h.table_offset + table_bytes && host + bitmap + block_size > h.table_offset)
      problem(fmt::format("block {} at 0x{:x} overlaps the BAT", i, host));
    blocks.emplace_back(host, i);
  }
  std::sort(blocks.begin(), blocks.end());
  uint64_t last_end = 0;
  for (size_t k = 0; k < blocks.size(); ++k) {
    if (k && blocks[k].first < last_end)
      problem(fmt::format("block {} at 0x{:x} overlaps block {}", blocks[k].second, blocks[k].first, blocks[k - 1].second));
    if (k && blocks[k].first != last_end) ++r.fragmented_clusters;
    last_end = blocks[k].first + bitmap + block_size;
  }
  r.allocated_clusters = blocks.size();
  return r;
}

}  // namespace arche::image::vhd
