// Consistency check of VMDK sparse extents: every grain directory entry points to a
// grain table inside the file, the redundant directory's tables hold the same
// entries as the primary ones, every grain lies inside the file and after the
// metadata, compressed grains carry a marker for the right sector, and no two
// structures (two grain table entries, a grain and a table, ...) share bytes.
// VMDK has no reference counts, so there are no leaks to find or fix.
#include <algorithm>

#include "core/endian.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "core/units.h"
#include "image/vmdk/vmdk_device.h"

namespace arche::image::vmdk {

namespace {

constexpr size_t kMaxMessages = 1000;

struct Region {
  uint64_t start, end;
  std::string what;
};

}  // namespace

CheckResult check_device(VmdkDevice& dev) {
  CheckResult r;
  auto report = [&](std::string message) {
    ++r.corruptions;
    if (r.messages.size() < kMaxMessages) r.messages.push_back("ERROR " + std::move(message));
  };
  std::vector<std::vector<Region>> regions(dev.files_.size());

  if (dev.embedded_descriptor_) {
    regions[0].push_back({0, kSector, "the header"});
    regions[0].push_back({dev.descriptor_offset_, dev.descriptor_offset_ + dev.descriptor_room_, "the descriptor"});
  }
  for (const auto& e : dev.extents_) {
    if (!e.sparse) continue;
    const VmdkDevice::Sparse& s = *e.sparse;
    const SparseHeader& h = s.header;
    const File& f = dev.file_of(e);
    const std::string& name = dev.file_paths_[static_cast<size_t>(e.file)];
    const uint64_t file_size = f.size();
    const uint64_t grain = s.grain_bytes, coverage = h.gt_coverage();
    auto& reg = regions[static_cast<size_t>(e.file)];
    if (e.file != 0) reg.push_back({0, kSector, "the header"});
    reg.push_back({h.gd_offset * kSector, h.gd_offset * kSector + s.gd.size() * 4, "the grain directory"});
    if (!s.rgd.empty())
      reg.push_back({h.rgd_offset * kSector, h.rgd_offset * kSector + s.rgd.size() * 4, "the redundant grain directory"});
    r.total_clusters += div_round_up(e.length, grain);

    auto read_table = [&](uint32_t sector, const std::string& what, std::vector<uint32_t>& out) {
      const uint64_t offset = uint64_t{sector} * kSector;
      if (!range_within(offset, h.gt_bytes(), file_size)) {
        report(fmt::format("{}: {} at 0x{:x} lies outside the file ({} bytes)", name, what, offset, file_size));
        return false;
      }
      std::vector<uint8_t> raw(h.gt_bytes());
      f.read_exact(offset, raw);
      out.resize(h.gtes_per_gt);
      for (size_t i = 0; i < out.size(); ++i) out[i] = load_le32(raw.data() + i * 4);
      reg.push_back({offset, offset + h.gt_bytes(), what});
      return true;
    };

    uint64_t previous_end = 0;
    std::vector<uint32_t> gt, rgt;
    for (uint64_t i = 0; i < s.gd.size(); ++i) {
      interrupt::check();
      const uint32_t redundant = s.rgd.empty() ? 0 : s.rgd[i];
      if (s.gd[i] == 0) {
        if (redundant != 0)
          report(fmt::format("{}: grain directory entry {} is empty, its redundant copy is not", name, i));
        continue;
      }
      if (!read_table(s.gd[i], fmt::format("grain table {}", i), gt)) continue;
      if (!s.rgd.empty()) {
        if (redundant == 0) {
          report(fmt::format("{}: the redundant grain directory has no table {}", name, i));
        } else if (read_table(redundant, fmt::format("redundant grain table {}", i), rgt)) {
          size_t differ = 0;
          for (size_t k = 0; k < gt.size(); ++k) differ += gt[k] != rgt[k];
          if (differ)
            report(fmt::format("{}: grain table {} and its redundant copy differ in {} entries", name, i, differ));
        }
      }
      for (uint64_t k = 0; k < gt.size(); ++k) {
        const uint32_t gte = gt[k];
        const uint64_t rel = i * coverage + k * grain;
        if (gte == 0 || gte == kGteZero) continue;
        if (rel >= e.length) {
          report(fmt::format("{}: grain table {} maps a grain beyond the end of the extent", name, i));
          continue;
        }
        const uint64_t guest = e.start + rel;
        const uint64_t host = uint64_t{gte} * kSector;
        if (gte < h.overhead) {
          report(fmt::format("{}: grain for guest offset {} points into the metadata (0x{:x})", name, guest, host));
          continue;
        }
        if (host >= file_size) {
          report(fmt::format("{}: grain for guest offset {} at 0x{:x} lies beyond the end of the file", name, guest,
                             host));
          continue;
        }
        ++r.allocated_clusters;
        if (h.compressed()) {
          ++r.compressed_clusters;
          uint64_t end = host + grain;
          if (h.has_markers()) {
            uint8_t marker[12];
            if (f.read_some(host, marker) != sizeof(marker)) {
              report(fmt::format("{}: grain marker at 0x{:x} is cut off by the end of the file", name, host));
              continue;
            }
            const uint64_t lba = load_le64(marker);
            const uint32_t size = load_le32(marker + 8);
            if (lba != rel / kSector)
              report(fmt::format("{}: grain marker at 0x{:x} is for sector {}, the grain table uses it for {}", name,
                                 host, lba, rel / kSector));
            end = align_up(host + sizeof(marker) + size, kSector);
            if (size == 0 || size > 2 * grain + 1024 || end > align_up(file_size, kSector)) {
              report(fmt::format("{}: compressed grain at 0x{:x} has an invalid size or lies outside the file", name,
                                 host));
              continue;
            }
          }
          reg.push_back({host, end, fmt::format("the grain for guest offset {}", guest)});
          continue;
        }
        if (previous_end && host != previous_end) ++r.fragmented_clusters;
        previous_end = host + grain;
        reg.push_back({host, host + grain, fmt::format("the grain for guest offset {}", guest)});
      }
    }
  }

  for (size_t k = 0; k < regions.size(); ++k) {
    auto& reg = regions[k];
    std::sort(reg.begin(), reg.end(), [](const Region& a, const Region& b) { return a.start < b.start; });
    const Region* widest = nullptr;
    for (const Region& x : reg) {
      if (x.start == x.end) continue;
      if (widest && x.start < widest->end)
        report(fmt::format("{}: {} at 0x{:x} overlaps {} at 0x{:x}", dev.file_paths_[k], x.what, x.start, widest->what,
                           widest->start));
      if (!widest || x.end > widest->end) widest = &x;
      if (k == 0) r.image_end_offset = std::max(r.image_end_offset, x.end);
    }
  }
  return r;
}

}  // namespace arche::image::vmdk
