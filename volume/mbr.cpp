// The MBR partition table: four primary entries at offset 446 of sector 0, and in
// an extended partition a chain of EBRs (extended boot records), each holding one
// logical partition (relative to the EBR) and a link to the next EBR (relative to
// the extended partition's start). The chain comes from the disk: it is followed
// loop-safely and only within the extended partition.
#include <algorithm>
#include <set>
#include <vector>

#include "core/bytes.h"
#include "core/error.h"
#include "volume/partition_table.h"

namespace arche::volume {

namespace {

constexpr uint64_t kSector = 512;
constexpr unsigned kMaxLogical = 256;  // fdisk stops far below; a longer chain is damage

struct Entry {
  uint8_t status = 0, type = 0;
  uint32_t start = 0, count = 0;
  bool empty() const { return type == 0 || count == 0; }
};

bool is_extended(uint8_t type) { return type == 0x05 || type == 0x0f || type == 0x85; }

Entry entry_at(std::span<const uint8_t> sector, int i) {
  const uint8_t* e = sector.data() + 446 + 16 * i;
  return Entry{e[0], e[4], load_le32(e + 8), load_le32(e + 12)};
}

bool has_signature(std::span<const uint8_t> sector) { return sector[510] == 0x55 && sector[511] == 0xAA; }

Partition make(unsigned number, const Entry& e, uint64_t base_lba, uint64_t disk_bytes, const std::string& signature) {
  Partition p;
  p.number = number;
  p.type_id = fmt::format("0x{:02x}", e.type);
  p.type_name = mbr_type_name(e.type);
  p.uuid = fmt::format("{}-{:02x}", signature.substr(2), number);
  p.attributes = e.status;
  const uint64_t first = base_lba + e.start;  // < 2^33: no overflow
  const uint64_t disk_sectors = disk_bytes / kSector;
  if (first >= disk_sectors) {
    p.offset = disk_bytes;
    p.notes.push_back(fmt::format("starts at sector {}, beyond the end of the disk", first));
    return p;
  }
  p.offset = first * kSector;
  p.size = std::min<uint64_t>(uint64_t{e.count} * kSector, disk_bytes - p.offset);
  if (p.size < uint64_t{e.count} * kSector)
    p.notes.push_back(fmt::format("reaches beyond the end of the disk; cut to {} bytes", p.size));
  return p;
}

void read_logical(image::BlockDevice& disk, const Partition& extended, uint64_t ext_lba, const std::string& signature,
                  PartitionTable& t) {
  const uint64_t ext_end = (extended.offset + extended.size) / kSector;
  std::set<uint64_t> seen;
  std::vector<uint8_t> sector(kSector);
  unsigned number = 5;
  uint64_t ebr = ext_lba;
  while (true) {
    if (!seen.insert(ebr).second) {
      t.notes.push_back(fmt::format("the EBR chain loops back to sector {}; stopped there", ebr));
      return;
    }
    if (ebr < ext_lba || ebr >= ext_end) {
      t.notes.push_back(fmt::format("an EBR link points to sector {}, outside the extended partition; stopped", ebr));
      return;
    }
    if (number - 5 >= kMaxLogical) {
      t.notes.push_back(fmt::format("more than {} logical partitions; the rest are not read", kMaxLogical));
      return;
    }
    disk.read(ebr * kSector, sector);
    if (!has_signature(sector)) {
      t.notes.push_back(fmt::format("the EBR at sector {} has no 0x55AA signature; logical partitions from there on are not read", ebr));
      return;
    }
    std::optional<uint64_t> next;
    for (int i = 0; i < 4; ++i) {
      Entry e = entry_at(sector, i);
      if (e.empty()) continue;
      if (is_extended(e.type)) {
        if (!next) next = ext_lba + e.start;
        continue;
      }
      Partition p = make(number++, e, ebr, disk.size(), signature);
      p.logical = true;
      t.partitions.push_back(std::move(p));
    }
    if (!next) return;
    ebr = *next;
  }
}

}  // namespace

std::optional<PartitionTable> read_mbr(image::BlockDevice& disk) {
  if (disk.size() < kSector) return std::nullopt;
  std::vector<uint8_t> sector(kSector);
  disk.read(0, sector);
  if (!has_signature(sector)) return std::nullopt;
  Entry entries[4];
  for (int i = 0; i < 4; ++i) {
    entries[i] = entry_at(sector, i);
    // Boot code where a table should be: the status byte is 0x00 or 0x80 in every
    // real entry (libblkid draws the same line).
    if (entries[i].status != 0x00 && entries[i].status != 0x80) return std::nullopt;
  }
  PartitionTable t;
  t.scheme = PartitionScheme::mbr;
  t.disk_id = fmt::format("0x{:08x}", load_le32(sector.data() + 440));
  bool extended_seen = false;
  for (int i = 0; i < 4; ++i) {
    if (entries[i].empty()) continue;
    Partition p = make(static_cast<unsigned>(i + 1), entries[i], 0, disk.size(), t.disk_id);
    if (is_extended(entries[i].type)) {
      p.extended = true;
      if (extended_seen) {
        p.notes.push_back("a second extended partition; its logical partitions are not read");
      } else if (p.size) {
        extended_seen = true;
        t.partitions.push_back(p);
        read_logical(disk, p, p.offset / kSector, t.disk_id, t);
        continue;
      }
    }
    t.partitions.push_back(std::move(p));
  }
  std::stable_sort(t.partitions.begin(), t.partitions.end(),
                   [](const Partition& a, const Partition& b) { return a.number < b.number; });
  return t;
}

}  // namespace arche::volume
