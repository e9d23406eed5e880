#include "volume/tree.h"

#include <algorithm>
#include <mutex>

#include "core/error.h"
#include "core/interrupt.h"
#include "volume/lvm.h"
#include "volume/partition_table.h"
#include "volume/probe.h"
#include "volume/views.h"

namespace arche::volume {

const char* to_string(VolumeKind kind) {
  switch (kind) {
    case VolumeKind::disk: return "disk";
    case VolumeKind::partition: return "partition";
    case VolumeKind::volume_group: return "volume-group";
    case VolumeKind::logical_volume: return "logical-volume";
  }
  return "?";
}

namespace {

// "linear", "striped", or the first segment type LVM names that is neither.
std::string lv_type(const lvm::LogicalVolume& lv) {
  std::string type = "linear";
  for (const lvm::LvSegment& s : lv.segments) {
    if (s.type != "striped" && s.type != "linear") return s.type;
    if (s.stripes.size() > 1) type = "striped";
  }
  return type;
}

// Errors that describe the volume (recorded in its notes, the rest of the tree
// goes on), as opposed to I/O failures and interruptions, which end explore().
bool damage(const Error& e) { return e.category() != ErrorCategory::io && e.category() != ErrorCategory::interrupted; }

class LocalTree final : public Tree {
 public:
  explicit LocalTree(std::vector<Disk> disks) : disks_(std::move(disks)) {
    for (const Disk& d : disks_) names_.push_back(d.name);
    std::vector<lvm::FoundPv> pvs;
    for (uint32_t i = 0; i < disks_.size(); ++i) add_disk(i, pvs);
    add_volume_groups(pvs);
  }

  const std::vector<VolumeInfo>& volumes() const override { return volumes_; }
  const std::vector<std::string>& disk_names() const override { return names_; }

  Filesystem& filesystem(size_t index) override {
    std::lock_guard lock(mutex_);
    if (index >= volumes_.size()) fail(ErrorCategory::internal, "volume {} does not exist", index);
    return open(index);
  }

 private:
  struct Entry {
    std::shared_ptr<image::BlockDevice> device;
    Content content;
    std::unique_ptr<Filesystem> fs;
  };

  std::string display(const VolumeInfo& v) const {
    return v.name.empty() ? disks_[v.disk].name : disks_[v.disk].name + " " + v.name;
  }

  Filesystem& open(size_t index) {
    Entry& e = entries_[index];
    const VolumeInfo& v = volumes_[index];
    if (e.fs) return *e.fs;
    if (!v.browsable)
      fail(ErrorCategory::unsupported, "{}: {}", display(v), v.unsupported.empty() ? "holds no file system" : v.unsupported);
    try {
      e.fs = open_filesystem(e.device, e.content);
    } catch (const Error& err) {
      throw Error(err.category(), display(v) + ": " + err.what());
    }
    return *e.fs;
  }

  // Records what `device` holds in `v` and returns the content.
  Content probe(VolumeInfo& v, const std::shared_ptr<image::BlockDevice>& device) {
    Content c;
    try {
      c = identify(*device);
    } catch (const Error& e) {
      if (!damage(e)) throw;
      v.notes.push_back(std::string("cannot identify the contents: ") + e.what());
      return c;
    }
    v.content = c.type;
    v.label = c.label;
    v.uuid = c.uuid;
    v.browsable = c.readable;
    if (c.kind == ContentKind::filesystem && !c.readable) v.unsupported = c.type + " is not read by arche";
    if (c.kind == ContentKind::other) v.unsupported = c.type + " holds no file system arche reads";
    return c;
  }

  size_t push(VolumeInfo v, std::shared_ptr<image::BlockDevice> device, Content content) {
    volumes_.push_back(std::move(v));
    entries_.push_back(Entry{std::move(device), std::move(content), nullptr});
    return volumes_.size() - 1;
  }

  void add_disk(uint32_t index, std::vector<lvm::FoundPv>& pvs) {
    interrupt::check();
    const Disk& disk = disks_[index];
    VolumeInfo v;
    v.kind = VolumeKind::disk;
    v.disk = index;
    v.size = disk.device->size();
    v.placement.push_back({v.size, {{index, 0}}, 0});
    Content c = probe(v, disk.device);
    std::optional<PartitionTable> table;
    if (c.kind == ContentKind::partition_table) {
      v.scheme = c.type;
      try {
        table = read_partition_table(*disk.device);
        if (table) {
          v.scheme = to_string(table->scheme);
          v.content = v.scheme;
          if (!table->disk_id.empty()) v.uuid = table->disk_id;
          v.notes.insert(v.notes.end(), table->notes.begin(), table->notes.end());
        }
      } catch (const Error& e) {
        if (!damage(e)) throw;
        v.notes.push_back(e.what());
      }
    }
    const size_t disk_volume = push(v, disk.device, c);
    if (c.kind == ContentKind::lvm_pv) note_pv(disk_volume, pvs);
    if (!table) return;
    for (const Partition& p : table->partitions) {
      interrupt::check();
      VolumeInfo pv;
      pv.kind = VolumeKind::partition;
      pv.disk = index;
      pv.name = fmt::format("p{}", p.number);
      pv.offset = p.offset;
      pv.size = p.size;
      pv.scheme = to_string(table->scheme);
      pv.type_id = p.type_id;
      pv.type_name = p.type_name;
      pv.part_name = p.name;
      pv.part_uuid = p.uuid;
      pv.notes = p.notes;
      std::shared_ptr<image::BlockDevice> dev;
      Content pc;
      if (p.extended) {
        pv.content = "extended";
      } else if (p.size > 0) {
        dev = std::make_shared<SliceDevice>(disk.device, p.offset, p.size, disk.name + " " + pv.name);
        pv.placement.push_back({p.size, {{index, p.offset}}, 0});
        pc = probe(pv, dev);
      }
      const size_t at = push(std::move(pv), std::move(dev), pc);
      if (pc.kind == ContentKind::lvm_pv) note_pv(at, pvs);
    }
  }

  // What P2V must copy of PV `k` as it is: everything outside its physical
  // extents (label, metadata areas), and the extents of LVs without a placement.
  void note_lvm_keep(VolumeInfo& v, const lvm::VolumeGroup& vg, size_t k,
                     const std::vector<std::string>& placed_lvs) const {
    const lvm::PvInfo& pv = vg.pvs[k];
    const uint64_t extent_bytes = vg.extent_size * lvm::kSectorSize;
    const uint64_t start = std::min(pv.pe_start * lvm::kSectorSize, v.size);
    const uint64_t extents = pv.pe_count * extent_bytes;
    const uint64_t end = extents > v.size - start ? v.size : start + extents;
    v.lvm_assembled = true;
    v.lvm_keep.clear();
    if (start > 0) v.lvm_keep.push_back({0, start});
    for (const lvm::VolumeGroup::Allocation& a : vg.allocated) {
      if (a.pv != pv.name || std::find(placed_lvs.begin(), placed_lvs.end(), a.lv) != placed_lvs.end()) continue;
      const uint64_t first = std::min(a.first_extent, pv.pe_count);
      const uint64_t from = start + first * extent_bytes;
      const uint64_t to = from + std::min(a.extent_count, pv.pe_count - first) * extent_bytes;
      if (to > from && to <= v.size) v.lvm_keep.push_back({from, to - from});
    }
    if (end < v.size) v.lvm_keep.push_back({end, v.size - end});
  }

  // Where the LV's segments lie on the disks (open_logical_volume has checked them).
  std::vector<Placement> lv_placement(const lvm::AssembledVg& a, const lvm::LogicalVolume& lv,
                                      const std::vector<size_t>& pv_volume) const {
    const uint64_t extent_bytes = a.vg.extent_size * lvm::kSectorSize;
    std::vector<lvm::LvSegment> segments = lv.segments;
    std::sort(segments.begin(), segments.end(),
              [](const lvm::LvSegment& x, const lvm::LvSegment& y) { return x.start_extent < y.start_extent; });
    std::vector<Placement> out;
    for (const lvm::LvSegment& seg : segments) {
      Placement p;
      p.length = seg.extent_count * extent_bytes;
      if (seg.stripes.size() > 1) p.stripe_size = seg.stripe_size * lvm::kSectorSize;
      for (const lvm::SegmentArea& area : seg.stripes) {
        size_t k = 0;
        while (k < a.vg.pvs.size() && a.vg.pvs[k].name != area.pv) ++k;
        if (k == a.vg.pvs.size() || pv_volume[k] == SIZE_MAX) return {};
        const VolumeInfo& pv = volumes_[pv_volume[k]];
        p.areas.push_back({pv.disk, pv.offset + a.vg.pvs[k].pe_start * lvm::kSectorSize + area.first_extent * extent_bytes});
      }
      out.push_back(std::move(p));
    }
    return out;
  }

  void note_pv(size_t volume, std::vector<lvm::FoundPv>& pvs) {
    VolumeInfo& v = volumes_[volume];
    try {
      if (auto label = lvm::read_pv_label(*entries_[volume].device)) {
        pvs.push_back({entries_[volume].device, *label, display(v)});
        pv_volumes_.push_back(volume);
      }
    } catch (const Error& e) {
      if (!damage(e)) throw;
      v.notes.push_back(e.what());
    }
  }

  void add_volume_groups(const std::vector<lvm::FoundPv>& pvs) {
    if (pvs.empty()) return;
    std::vector<lvm::PvProblem> problems;
    std::vector<lvm::AssembledVg> vgs = lvm::assemble_volume_groups(pvs, problems);
    for (const lvm::PvProblem& p : problems) volumes_[pv_volumes_[p.pv]].notes.push_back(p.what);
    for (const lvm::AssembledVg& a : vgs) {
      VolumeInfo g;
      g.kind = VolumeKind::volume_group;
      g.name = a.vg.name;
      g.content = "LVM2";
      g.uuid = a.vg.uuid;
      g.notes = a.notes;
      bool placed = false;
      std::vector<size_t> pv_volume(a.vg.pvs.size(), SIZE_MAX);  // indices: volumes_ grows below
      for (size_t k = 0; k < a.vg.pvs.size(); ++k) {
        g.size += a.vg.pvs[k].pe_count * a.vg.extent_size * lvm::kSectorSize;
        if (!a.devices[k]) continue;
        for (size_t i = 0; i < volumes_.size(); ++i) {
          if (entries_[i].device != a.devices[k]) continue;
          pv_volume[k] = i;
          g.pvs.push_back(display(volumes_[i]));
          volumes_[i].unsupported = fmt::format("LVM2 physical volume of VG {}: address its logical volumes as {}/LV",
                                                a.vg.name, a.vg.name);
          if (!placed) g.disk = volumes_[i].disk;
          placed = true;
        }
      }
      push(g, nullptr, {});
      std::vector<std::string> placed_lvs;
      for (const lvm::LogicalVolume& lv : a.vg.lvs) {
        interrupt::check();
        VolumeInfo l;
        l.kind = VolumeKind::logical_volume;
        l.disk = g.disk;
        l.name = a.vg.name + "/" + lv.name;
        for (const lvm::LvSegment& s : lv.segments) l.size += s.extent_count * a.vg.extent_size * lvm::kSectorSize;
        l.type_name = lv_type(lv);
        l.part_uuid = lv.uuid;
        std::shared_ptr<image::BlockDevice> dev;
        Content c;
        if (!lv.unsupported.empty()) {
          l.unsupported = lv.unsupported;
        } else {
          try {
            dev = lvm::open_logical_volume(a, lv);
            l.placement = lv_placement(a, lv, pv_volume);
            if (!l.placement.empty()) placed_lvs.push_back(lv.name);
            c = probe(l, dev);
          } catch (const Error& e) {
            if (!damage(e)) throw;
            l.unsupported = e.what();
          }
        }
        push(std::move(l), std::move(dev), std::move(c));
      }
      for (size_t k = 0; k < a.vg.pvs.size(); ++k)
        if (pv_volume[k] != SIZE_MAX) note_lvm_keep(volumes_[pv_volume[k]], a.vg, k, placed_lvs);
    }
  }

  std::vector<Disk> disks_;
  std::vector<std::string> names_;
  std::vector<VolumeInfo> volumes_;
  std::vector<Entry> entries_;
  std::vector<size_t> pv_volumes_;  // the volume of each PV found, in the order found
  std::mutex mutex_;
};

}  // namespace

std::unique_ptr<Tree> explore(std::vector<Disk> disks) { return std::make_unique<LocalTree>(std::move(disks)); }

}  // namespace arche::volume
