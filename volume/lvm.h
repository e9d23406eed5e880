// LVM2: physical volume labels, metadata areas and the volume groups and logical
// volumes they describe, read from the disk alone (no lvm tools, no
// device-mapper). Layout on a PV (lib/format_text/layout.h in LVM2):
//
//   sector 0-3   one of them holds the label: "LABELONE", its sector number,
//                CRC, offset of the PV header, "LVM2 001"
//   PV header    uuid (32 chars), device size, lists of data areas and of
//                metadata areas (offset, size in bytes), each ended by a zero entry
//   metadata     mda header (CRC, " LVM2 x[5A%r0N*>", version 1, start, size, and
//   area         the location of the current text: offset, size, CRC), then a
//                circular buffer holding the text (lvm_metadata.h)
//
// The CRCs are LVM's own: CRC-32 (IEEE) from the initial value 0xf597a6cf without
// the final inversion. Every PV of a VG carries (usually) a copy of the metadata;
// the copy with the highest seqno wins.
//
// Logical volumes whose segments are all linear or striped become
// SegmentedDevices over their PVs. Thin, mirror, RAID, snapshot, cache, VDO and
// other segment types are listed with the reason they cannot be read.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "image/block_device.h"
#include "volume/lvm_metadata.h"

namespace arche::volume::lvm {

constexpr uint64_t kSectorSize = 512;  // LVM counts pe_start and extent_size in 512-byte sectors

struct DiskArea {
  uint64_t offset = 0, size = 0;  // bytes from the start of the PV
};

struct PvLabel {
  std::string uuid;  // 32 characters, without dashes
  uint64_t device_size = 0;
  std::vector<DiskArea> data_areas, metadata_areas;
};

// The PV label in sectors 0-3, or nullopt when there is none. Throws corrupt when
// a "LABELONE" sector fails its CRC or its PV header does not fit the sector.
std::optional<PvLabel> read_pv_label(image::BlockDevice& pv);

// The current metadata text of every usable metadata area of the PV (header CRC,
// magic, version and text CRC checked). Areas that fail add a line to `notes`.
std::vector<std::string> read_metadata_texts(image::BlockDevice& pv, const PvLabel& label,
                                             std::vector<std::string>& notes);

// LVM's CRC (see above), for tests and for building fixtures.
uint32_t lvm_crc(std::span<const uint8_t> data);

// "N37ZH1-xdcf-..." -> "N37ZH1xdcf..." (metadata ids carry dashes, labels do not).
std::string strip_dashes(std::string_view id);

struct SegmentArea {
  std::string pv;  // the name in the metadata ("pv0"); for other segment types an LV name
  uint64_t first_extent = 0;
};

struct LvSegment {
  uint64_t start_extent = 0, extent_count = 0;
  std::string type;          // "striped", "thin", "raid1", ...
  uint64_t stripe_size = 0;  // sectors (striped with more than one stripe)
  std::vector<SegmentArea> stripes;
  std::string cow_store, origin;  // snapshot segments
};

struct LogicalVolume {
  std::string name, uuid;
  std::vector<std::string> status;
  bool visible = false;
  std::vector<LvSegment> segments;
  int64_t creation_time = 0;
  // Why arche cannot read it ("thin volume", "RAID1"), empty when it can.
  std::string unsupported;
};

struct PvInfo {
  std::string name, uuid;  // "pv0", uuid without dashes
  std::string device;      // the device path the host last saw it as (informational)
  uint64_t pe_start = 0, pe_count = 0;  // sectors / extents
};

struct VolumeGroup {
  std::string name, uuid;
  int64_t seqno = 0;
  uint64_t extent_size = 0;  // sectors
  std::vector<PvInfo> pvs;
  std::vector<LogicalVolume> lvs;  // visible ones, in metadata order
  // The PV extents every LV occupies, hidden ones (RAID images, thin pool data,
  // copy-on-write stores) included: P2V skips only the extents no LV holds.
  struct Allocation {
    std::string lv, pv;  // names in the metadata
    uint64_t first_extent = 0, extent_count = 0;
  };
  std::vector<Allocation> allocated;
};

// The volume group described by parsed metadata text. Throws format when
// required fields are missing or out of range.
VolumeGroup parse_volume_group(const Section& root);

// A PV found on one of the disks: its device (a partition, a whole disk) and label.
struct FoundPv {
  std::shared_ptr<image::BlockDevice> device;
  PvLabel label;
  std::string where;  // for messages: "disk.raw p2"
};

// A volume group put together from the PVs that were found.
struct AssembledVg {
  VolumeGroup vg;
  std::vector<std::shared_ptr<image::BlockDevice>> devices;  // per vg.pvs entry; null when missing
  std::vector<std::string> notes;
};

// What was wrong with one of the PVs given to assemble_volume_groups (its index).
struct PvProblem {
  size_t pv;
  std::string what;
};

// Groups the PVs by VG (from their metadata; the highest seqno wins) and matches
// every PV the metadata lists with a found one. PVs without metadata of their own
// join the VG that lists them.
std::vector<AssembledVg> assemble_volume_groups(const std::vector<FoundPv>& pvs, std::vector<PvProblem>& problems);

// The LV as a device. Throws unsupported (lv.unsupported) or not_found (a PV it
// needs is missing) or corrupt (segments that do not fit their PVs).
std::shared_ptr<image::BlockDevice> open_logical_volume(const AssembledVg& vg, const LogicalVolume& lv);

}  // namespace arche::volume::lvm
