// LVM2 volume groups from their metadata text, assembled from the PVs found on
// the disks, and logical volumes as devices over those PVs (see lvm.h).
#include <algorithm>
#include <map>

#include "core/error.h"
#include "volume/lvm.h"
#include "volume/views.h"

namespace arche::volume::lvm {

namespace {

const Value& required(const Section& s, std::string_view name, std::string_view where) {
  const Value* v = s.value(name);
  if (!v) fail(ErrorCategory::format, "LVM metadata: {} has no {}", where, name);
  return *v;
}

uint64_t count(const Section& s, std::string_view name, std::string_view where) {
  const Value& v = required(s, name, where);
  if (v.kind != Value::Kind::integer || v.integer < 0)
    fail(ErrorCategory::format, "LVM metadata: {} of {} is not a count", name, where);
  return static_cast<uint64_t>(v.integer);
}

std::string text(const Section& s, std::string_view name, std::string_view where, bool needed = true) {
  const Value* v = s.value(name);
  if (!v) {
    if (needed) fail(ErrorCategory::format, "LVM metadata: {} has no {}", where, name);
    return {};
  }
  if (v->kind != Value::Kind::string) fail(ErrorCategory::format, "LVM metadata: {} of {} is not a string", name, where);
  return v->string;
}

std::vector<std::string> strings(const Section& s, std::string_view name) {
  std::vector<std::string> out;
  if (const Value* v = s.value(name); v && v->kind == Value::Kind::array)
    for (const Value& item : v->items)
      if (item.kind == Value::Kind::string) out.push_back(item.string);
  return out;
}

// Why a segment type cannot be read, in the words an admin knows.
std::string unsupported_type(const std::string& type) {
  if (type == "striped" || type == "linear") return {};
  if (type == "thin") return "thin volume (thin provisioning is not supported)";
  if (type == "thin-pool") return "thin pool (thin provisioning is not supported)";
  if (type == "mirror") return "mirrored volume (type mirror is not supported)";
  if (type.starts_with("raid")) return fmt::format("RAID volume (type {} is not supported)", type);
  if (type == "snapshot") return "snapshot (copy-on-write snapshots are not supported)";
  if (type == "cache" || type == "cache-pool" || type == "writecache")
    return fmt::format("cached volume (type {} is not supported)", type);
  if (type == "vdo" || type == "vdo-pool") return "VDO volume (deduplication/compression is not supported)";
  if (type == "integrity") return "integrity volume (dm-integrity is not supported)";
  return fmt::format("segment type {} is not supported", type);
}

LvSegment parse_segment(const Section& s, const std::string& where) {
  LvSegment seg;
  seg.start_extent = count(s, "start_extent", where);
  seg.extent_count = count(s, "extent_count", where);
  seg.type = text(s, "type", where);
  if (seg.type == "striped" || seg.type == "linear") {
    const uint64_t n = count(s, "stripe_count", where);
    const Value& stripes = required(s, "stripes", where);
    if (stripes.kind != Value::Kind::array || n == 0 || stripes.items.size() != 2 * n)
      fail(ErrorCategory::format, "LVM metadata: {}: {} stripes, but the stripe list does not match", where, n);
    for (size_t i = 0; i < stripes.items.size(); i += 2) {
      const Value& name = stripes.items[i];
      const Value& pe = stripes.items[i + 1];
      if (name.kind != Value::Kind::string || pe.kind != Value::Kind::integer || pe.integer < 0)
        fail(ErrorCategory::format, "LVM metadata: {}: a stripe is not \"pvN\", extent", where);
      seg.stripes.push_back({name.string, static_cast<uint64_t>(pe.integer)});
    }
    if (n > 1) seg.stripe_size = count(s, "stripe_size", where);
  } else if (seg.type == "snapshot") {
    seg.cow_store = text(s, "cow_store", where, false);
    seg.origin = text(s, "origin", where, false);
  }
  return seg;
}

}  // namespace

VolumeGroup parse_volume_group(const Section& root) {
  if (const Value* contents = root.value("contents");
      contents && (contents->kind != Value::Kind::string || contents->string != "Text Format Volume Group"))
    fail(ErrorCategory::unsupported, "LVM metadata holds \"{}\", not a volume group", contents->string);
  if (root.sections.size() != 1)
    fail(ErrorCategory::format, "LVM metadata: expected one volume group, found {} sections", root.sections.size());
  const auto& [vg_name, s] = root.sections.front();
  VolumeGroup vg;
  vg.name = vg_name;
  const std::string where = "VG " + vg_name;
  vg.uuid = strip_dashes(text(s, "id", where));
  vg.seqno = static_cast<int64_t>(count(s, "seqno", where));
  vg.extent_size = count(s, "extent_size", where);
  if (vg.extent_size == 0 || vg.extent_size > (uint64_t{1} << 40))
    fail(ErrorCategory::format, "LVM metadata: {} has an extent size of {} sectors", where, vg.extent_size);
  if (text(s, "format", where, false) != "" && text(s, "format", where, false) != "lvm2")
    fail(ErrorCategory::unsupported, "{}: metadata format {}", where, text(s, "format", where, false));
  if (const Section* pvs = s.section("physical_volumes")) {
    for (const auto& [name, p] : pvs->sections) {
      const std::string pw = where + " PV " + name;
      vg.pvs.push_back({name, strip_dashes(text(p, "id", pw)), text(p, "device", pw, false), count(p, "pe_start", pw),
                        count(p, "pe_count", pw)});
    }
  }
  std::map<std::string, std::string> snapshot_of;  // cow store LV -> origin
  if (const Section* lvs = s.section("logical_volumes")) {
    for (const auto& [name, l] : lvs->sections) {
      const std::string lw = where + " LV " + name;
      LogicalVolume lv;
      lv.name = name;
      lv.uuid = strip_dashes(text(l, "id", lw));
      lv.status = strings(l, "status");
      lv.visible = std::find(lv.status.begin(), lv.status.end(), "VISIBLE") != lv.status.end();
      if (const Value* t = l.value("creation_time"); t && t->kind == Value::Kind::integer) lv.creation_time = t->integer;
      for (const auto& [sname, seg] : l.sections) {
        if (!sname.starts_with("segment")) continue;
        lv.segments.push_back(parse_segment(seg, lw + " " + sname));
        const LvSegment& last = lv.segments.back();
        if (lv.unsupported.empty()) lv.unsupported = unsupported_type(last.type);
        if (last.type == "snapshot" && !last.cow_store.empty()) snapshot_of[last.cow_store] = last.origin;
      }
      if (lv.segments.empty() && lv.unsupported.empty()) lv.unsupported = "it has no segments";
      vg.lvs.push_back(std::move(lv));
    }
  }
  // Stripes that name an LV rather than a PV: the data is being moved (pvmove).
  for (LogicalVolume& lv : vg.lvs) {
    for (const LvSegment& seg : lv.segments)
      for (const SegmentArea& a : seg.stripes)
        if (lv.unsupported.empty() &&
            std::none_of(vg.pvs.begin(), vg.pvs.end(), [&](const PvInfo& p) { return p.name == a.pv; }))
          lv.unsupported = fmt::format("its data lies on {}, which is not a PV of the VG (a pvmove in progress?)", a.pv);
    // LVM stores a snapshot as its copy-on-write LV (not VISIBLE in the metadata,
    // yet what `lvs` shows under the snapshot's name) and a hidden "snapshotN" LV
    // that ties it to its origin.
    if (auto it = snapshot_of.find(lv.name); it != snapshot_of.end()) {
      lv.visible = true;
      lv.unsupported = fmt::format("snapshot of {} (copy-on-write snapshots are not supported)", it->second);
    }
  }
  for (const LogicalVolume& lv : vg.lvs)
    for (const LvSegment& seg : lv.segments) {
      if (seg.stripes.empty()) continue;
      // A count that does not divide is refused when the LV is opened; here the
      // larger share is assumed, so that nothing is left out.
      const uint64_t per_area = (seg.extent_count + seg.stripes.size() - 1) / seg.stripes.size();
      for (const SegmentArea& a : seg.stripes) vg.allocated.push_back({lv.name, a.pv, a.first_extent, per_area});
    }
  std::erase_if(vg.lvs, [](const LogicalVolume& lv) { return !lv.visible; });
  return vg;
}

std::vector<AssembledVg> assemble_volume_groups(const std::vector<FoundPv>& pvs, std::vector<PvProblem>& problems) {
  struct Candidate {
    VolumeGroup vg;
    std::string from;
    std::vector<std::string> notes;
  };
  std::map<std::string, Candidate> newest;  // VG uuid -> metadata with the highest seqno
  for (size_t i = 0; i < pvs.size(); ++i) {
    const FoundPv& pv = pvs[i];
    std::vector<std::string> area_notes;
    for (const std::string& t : read_metadata_texts(*pv.device, pv.label, area_notes)) {
      try {
        VolumeGroup vg = parse_volume_group(parse_metadata(t));
        auto [it, fresh] = newest.try_emplace(vg.uuid, Candidate{vg, pv.where, {}});
        if (fresh || vg.seqno == it->second.vg.seqno) continue;
        it->second.notes.push_back(fmt::format("{} holds metadata seqno {}, {} holds {}; the newer one is used",
                                               pv.where, vg.seqno, it->second.from, it->second.vg.seqno));
        if (vg.seqno > it->second.vg.seqno) {
          it->second.vg = std::move(vg);
          it->second.from = pv.where;
        }
      } catch (const Error& e) {
        area_notes.push_back(std::string("LVM metadata not usable: ") + e.what());
      }
    }
    for (std::string& n : area_notes) problems.push_back({i, std::move(n)});
  }
  std::vector<AssembledVg> out;
  for (auto& [uuid, c] : newest) {
    AssembledVg a;
    a.vg = std::move(c.vg);
    a.notes = std::move(c.notes);
    for (const PvInfo& info : a.vg.pvs) {
      std::shared_ptr<image::BlockDevice> dev;
      for (const FoundPv& pv : pvs) {
        if (pv.label.uuid != info.uuid) continue;
        if (dev) {
          a.notes.push_back(fmt::format("PV {} ({}) is found twice; {} is used", info.name, info.uuid, dev->filename()));
          break;
        }
        dev = pv.device;
      }
      if (!dev) a.notes.push_back(fmt::format("PV {} ({}, last seen as {}) is not on these disks", info.name, info.uuid,
                                              info.device.empty() ? "?" : info.device));
      a.devices.push_back(std::move(dev));
    }
    out.push_back(std::move(a));
  }
  return out;
}

std::shared_ptr<image::BlockDevice> open_logical_volume(const AssembledVg& a, const LogicalVolume& lv) {
  const std::string name = a.vg.name + "/" + lv.name;
  if (!lv.unsupported.empty()) fail(ErrorCategory::unsupported, "LV {}: {}", name, lv.unsupported);
  const uint64_t extent_bytes = a.vg.extent_size * kSectorSize;
  std::vector<LvSegment> segments = lv.segments;
  std::sort(segments.begin(), segments.end(),
            [](const LvSegment& x, const LvSegment& y) { return x.start_extent < y.start_extent; });
  std::vector<Segment> out;
  uint64_t next = 0;
  for (const LvSegment& seg : segments) {
    if (seg.start_extent != next)
      fail(ErrorCategory::corrupt, "LV {}: segments leave a gap or overlap at extent {}", name, next);
    if (seg.extent_count == 0 || seg.extent_count > UINT64_MAX / extent_bytes)
      fail(ErrorCategory::corrupt, "LV {}: a segment of {} extents", name, seg.extent_count);
    const uint64_t n = seg.stripes.size();
    if (seg.extent_count % n != 0)
      fail(ErrorCategory::corrupt, "LV {}: {} extents cannot be split over {} stripes", name, seg.extent_count, n);
    const uint64_t per_area = seg.extent_count / n;
    Segment s;
    s.length = seg.extent_count * extent_bytes;
    if (n > 1) {
      if (seg.stripe_size == 0 || seg.stripe_size > UINT64_MAX / kSectorSize)
        fail(ErrorCategory::corrupt, "LV {}: stripe size {} sectors", name, seg.stripe_size);
      s.stripe_size = seg.stripe_size * kSectorSize;
    }
    for (const SegmentArea& area : seg.stripes) {
      size_t i = 0;
      while (i < a.vg.pvs.size() && a.vg.pvs[i].name != area.pv) ++i;
      if (i == a.vg.pvs.size()) fail(ErrorCategory::corrupt, "LV {}: its segment names an unknown PV {}", name, area.pv);
      const PvInfo& pv = a.vg.pvs[i];
      if (!a.devices[i])
        fail(ErrorCategory::not_found, "LV {} needs PV {} ({}), which is not on these disks", name, pv.name, pv.uuid);
      if (area.first_extent > pv.pe_count || per_area > pv.pe_count - area.first_extent)
        fail(ErrorCategory::corrupt, "LV {}: extents {}+{} of PV {} beyond its {} extents", name, area.first_extent,
             per_area, pv.name, pv.pe_count);
      if (pv.pe_start > UINT64_MAX / kSectorSize || area.first_extent > UINT64_MAX / extent_bytes)
        fail(ErrorCategory::corrupt, "LV {}: PV {} offsets overflow", name, pv.name);
      s.areas.push_back({a.devices[i], pv.pe_start * kSectorSize + area.first_extent * extent_bytes});
    }
    out.push_back(std::move(s));
    next += seg.extent_count;
  }
  return std::make_shared<SegmentedDevice>(std::move(out), name);
}

}  // namespace arche::volume::lvm
