#include "convert/used_map.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "core/interrupt.h"
#include "core/units.h"

namespace arche::convert {

using volume::ByteRange;
using volume::VolumeInfo;
using volume::VolumeKind;

const char* to_string(CopyMethod method) {
  switch (method) {
    case CopyMethod::used_ranges: return "used-ranges";
    case CopyMethod::swap_header: return "swap-header";
    case CopyMethod::lvm: return "lvm";
    case CopyMethod::layout: return "layout";
    case CopyMethod::whole: return "whole";
  }
  return "?";
}

uint64_t DiskMap::bytes() const {
  uint64_t n = 0;
  for (const ByteRange& r : ranges) n += r.length;
  return n;
}

uint64_t UsedMap::bytes() const {
  uint64_t n = 0;
  for (const DiskMap& d : disks) n += d.bytes();
  return n;
}

bool UsedMap::any_whole() const {
  return std::any_of(volumes.begin(), volumes.end(), [](const CopiedVolume& v) { return v.method == CopyMethod::whole; });
}

std::vector<ByteRange> normalise_ranges(std::vector<ByteRange> ranges, uint64_t size) {
  constexpr uint64_t kSector = 512;
  for (ByteRange& r : ranges) {
    const uint64_t end = r.offset > size || r.length > size - r.offset ? size : r.offset + r.length;
    r.offset = align_down(std::min(r.offset, size), kSector);
    r.length = std::min(align_up(end, kSector), size) - r.offset;
  }
  std::erase_if(ranges, [](const ByteRange& r) { return r.length == 0; });
  std::sort(ranges.begin(), ranges.end(), [](const ByteRange& a, const ByteRange& b) { return a.offset < b.offset; });
  std::vector<ByteRange> out;
  for (const ByteRange& r : ranges) {
    if (!out.empty() && r.offset <= out.back().offset + out.back().length) {
      const uint64_t end = std::max(out.back().offset + out.back().length, r.offset + r.length);
      out.back().length = end - out.back().offset;
    } else {
      out.push_back(r);
    }
  }
  return out;
}

namespace {

// Errors that describe the volume (it is copied whole), as opposed to I/O failures
// and interruptions, which end the conversion: the same line volume/tree.cpp draws.
bool damage(const Error& e) { return e.category() != ErrorCategory::io && e.category() != ErrorCategory::interrupted; }

// Swap keeps its header page: the signature "SWAPSPACE2" (or the old "SWAP-SPACE")
// ends the first page, whose size is that of the machine that made it.
constexpr uint64_t kSwapPageSizes[] = {4096, 8192, 16384, 65536};

class Planner {
 public:
  Planner(volume::Tree& tree, const std::vector<std::shared_ptr<image::BlockDevice>>& disks)
      : tree_(tree), disks_(disks), ranges_(disks.size()) {
    if (tree.disk_names().size() != disks.size())
      fail(ErrorCategory::internal, "used-block map: {} disks for a tree of {}", disks.size(), tree.disk_names().size());
  }

  UsedMap run() {
    const auto& volumes = tree_.volumes();
    for (size_t i = 0; i < volumes.size(); ++i) {
      interrupt::check();
      const VolumeInfo& v = volumes[i];
      if (v.placement.empty()) continue;  // VGs, extended partitions, LVs that cannot be read (kept through their PVs)
      if (v.kind == VolumeKind::disk && has_partitions(i)) plan_layout(i);
      else plan_leaf(i);
    }
    UsedMap out;
    for (size_t d = 0; d < disks_.size(); ++d)
      out.disks.push_back({tree_.disk_names()[d], disks_[d]->size(), normalise_ranges(ranges_[d], disks_[d]->size())});
    out.volumes = std::move(copied_);
    return out;
  }

 private:
  bool has_partitions(size_t disk_volume) const {
    const auto& volumes = tree_.volumes();
    return std::any_of(volumes.begin(), volumes.end(), [&](const VolumeInfo& v) {
      return v.kind == VolumeKind::partition && v.disk == volumes[disk_volume].disk;
    });
  }

  // Bytes [offset, offset + length) of volume `v`, onto its disks through its placement.
  // Returns the bytes added.
  uint64_t add(const VolumeInfo& v, uint64_t offset, uint64_t length) {
    uint64_t added = 0, start = 0;
    for (const volume::Placement& p : v.placement) {
      const uint64_t from = std::max(offset, start), to = std::min(offset + length, start + p.length);
      for (uint64_t pos = from; pos < to;) {
        const uint64_t rel = pos - start;
        uint64_t run = to - pos, at = 0;
        uint32_t disk = 0;
        if (p.areas.size() == 1) {
          disk = p.areas[0].disk;
          at = p.areas[0].offset + rel;
        } else {
          if (p.areas.empty() || p.stripe_size == 0) fail(ErrorCategory::internal, "a placement without areas");
          const uint64_t chunk = rel / p.stripe_size, within = rel % p.stripe_size;
          const volume::PlacedArea& area = p.areas[chunk % p.areas.size()];
          disk = area.disk;
          at = area.offset + (chunk / p.areas.size()) * p.stripe_size + within;
          run = std::min(run, p.stripe_size - within);
        }
        if (disk >= ranges_.size()) fail(ErrorCategory::internal, "a placement on disk {}", disk);
        ranges_[disk].push_back({at, run});
        added += run;
        pos += run;
      }
      start += p.length;
    }
    return added;
  }

  // Reads bytes of a volume (through its first placement area: disks and partitions).
  bool read_start(const VolumeInfo& v, std::span<uint8_t> out) {
    if (v.placement.empty() || v.placement[0].areas.size() != 1 || v.placement[0].length < out.size()) return false;
    const volume::PlacedArea& a = v.placement[0].areas[0];
    image::BlockDevice& disk = *disks_[a.disk];
    if (!range_within(a.offset, out.size(), disk.size())) return false;
    disk.read(a.offset, out);
    return true;
  }

  CopiedVolume entry(const VolumeInfo& v, CopyMethod method) const {
    CopiedVolume c;
    c.disk = v.disk;
    c.volume = v.name;
    c.content = v.content;
    c.method = method;
    c.size = v.size;
    return c;
  }

  void whole(const VolumeInfo& v, std::string reason) {
    CopiedVolume c = entry(v, CopyMethod::whole);
    if (!v.notes.empty() && reason.find(v.notes.front()) == std::string::npos) reason += " (" + v.notes.front() + ")";
    c.reason = std::move(reason);
    c.selected = add(v, 0, v.size);
    copied_.push_back(std::move(c));
  }

  // A partitioned disk: everything outside its data partitions.
  void plan_layout(size_t index) {
    const auto& volumes = tree_.volumes();
    const VolumeInfo& d = volumes[index];
    std::vector<ByteRange> parts;
    for (const VolumeInfo& v : volumes)
      if (v.kind == VolumeKind::partition && v.disk == d.disk && !v.placement.empty()) parts.push_back({v.offset, v.size});
    parts = normalise_ranges(std::move(parts), d.size);
    CopiedVolume c = entry(d, CopyMethod::layout);
    uint64_t pos = 0;
    for (const ByteRange& p : parts) {
      if (p.offset > pos) c.selected += add(d, pos, p.offset - pos);
      pos = std::max(pos, p.offset + p.length);
    }
    if (pos < d.size) c.selected += add(d, pos, d.size - pos);
    copied_.push_back(std::move(c));
  }

  void plan_leaf(size_t index) {
    const VolumeInfo& v = tree_.volumes()[index];
    if (v.browsable) return plan_filesystem(index);
    if (v.content == "swap") return plan_swap(v);
    if (v.content == "LVM2_member") {
      if (!v.lvm_assembled) return whole(v, "an LVM2 physical volume whose volume group could not be read");
      CopiedVolume c = entry(v, CopyMethod::lvm);
      for (const ByteRange& r : v.lvm_keep) c.selected += add(v, r.offset, r.length);
      copied_.push_back(std::move(c));
      return;
    }
    if (v.kind == VolumeKind::disk && (v.content == "gpt" || v.content == "mbr"))
      return whole(v, "its partition table cannot be read");
    if (!v.unsupported.empty()) return whole(v, v.unsupported);
    if (v.content.empty()) return whole(v, "holds nothing arche recognises");
    whole(v, v.content + " has no used-block map in arche");
  }

  void plan_filesystem(size_t index) {
    const VolumeInfo& v = tree_.volumes()[index];
    std::vector<ByteRange> used;
    uint64_t fs_used = 0;
    try {
      volume::Filesystem& fs = tree_.filesystem(index);
      used = fs.used_ranges();
      fs_used = fs.used_bytes();
    } catch (const Error& e) {
      if (!damage(e)) throw;
      return whole(v, fmt::format("{} cannot be read: {}", v.content, e.what()));
    }
    if (used.empty()) return whole(v, v.content + " reports no used blocks, not even its own metadata");
    used = normalise_ranges(std::move(used), v.size);
    uint64_t mapped = 0;
    for (const ByteRange& r : used) mapped += r.length;
    // The allocation map against the file system's own count (superblock, $Bitmap
    // total): far less means the map was read from damaged metadata (garbage group
    // descriptors point at garbage bitmaps) and would drop data. A live file
    // system's count lags a little; half is no lag.
    if (mapped < fs_used / 2)
      return whole(v, fmt::format("{}: its allocation map covers {} bytes but it counts {} as used", v.content, mapped,
                                  fs_used));
    CopiedVolume c = entry(v, CopyMethod::used_ranges);
    c.fs_used = fs_used;
    for (const ByteRange& r : used) c.selected += add(v, r.offset, r.length);
    copied_.push_back(std::move(c));
  }

  void plan_swap(const VolumeInfo& v) {
    std::vector<uint8_t> head(kSwapPageSizes[std::size(kSwapPageSizes) - 1]);
    const size_t readable = std::min<uint64_t>(head.size(), v.size);
    if (read_start(v, std::span(head.data(), readable))) {
      for (uint64_t page : kSwapPageSizes) {
        if (page > readable) break;
        const char* sig = reinterpret_cast<const char*>(head.data() + page - 10);
        if (std::memcmp(sig, "SWAPSPACE2", 10) == 0 || std::memcmp(sig, "SWAP-SPACE", 10) == 0) {
          CopiedVolume c = entry(v, CopyMethod::swap_header);
          c.selected = add(v, 0, page);
          copied_.push_back(std::move(c));
          return;
        }
      }
    }
    whole(v, "swap without a signature where its page ends");
  }

  volume::Tree& tree_;
  const std::vector<std::shared_ptr<image::BlockDevice>>& disks_;
  std::vector<std::vector<ByteRange>> ranges_;  // per disk, unsorted
  std::vector<CopiedVolume> copied_;
};

}  // namespace

UsedMap map_used_blocks(volume::Tree& tree, const std::vector<std::shared_ptr<image::BlockDevice>>& disks) {
  return Planner(tree, disks).run();
}

}  // namespace arche::convert
