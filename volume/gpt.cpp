// GUID Partition Table (UEFI 2.x, chapter 5): the header at LBA 1 and its entry
// array, both CRC32-protected, and the backup header (with its own array) at the
// last LBA. A damaged primary is replaced by the backup, with a note.
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/bytes.h"
#include "core/error.h"
#include "core/units.h"
#include "image/foreign/ids.h"
#include "volume/partition_table.h"

namespace arche::volume {

namespace {

constexpr uint64_t kMaxEntryArrayBytes = 4 * MiB;  // 128 entries of 128 bytes is normal (16 KiB)

struct GptHeader {
  uint64_t my_lba = 0, alternate_lba = 0, first_usable = 0, last_usable = 0, entries_lba = 0;
  uint32_t num_entries = 0, entry_size = 0, entries_crc = 0;
  image::foreign::Id128 disk_guid{};
};

uint32_t crc32_of(std::span<const uint8_t> data) {
  return static_cast<uint32_t>(::crc32(0L, data.data(), static_cast<uInt>(data.size())));
}

// The header at `lba`, or the reason it is not usable.
std::optional<GptHeader> read_header(image::BlockDevice& disk, uint32_t ss, uint64_t lba, std::string& why) {
  const uint64_t sectors = disk.size() / ss;
  if (lba >= sectors) {
    why = fmt::format("LBA {} is beyond the end of the disk", lba);
    return std::nullopt;
  }
  std::vector<uint8_t> sector(ss);
  disk.read(lba * ss, sector);
  if (std::memcmp(sector.data(), "EFI PART", 8) != 0) {
    why = fmt::format("no \"EFI PART\" signature at LBA {}", lba);
    return std::nullopt;
  }
  ByteReader r(sector, "GPT header");
  r.seek(12);
  const uint32_t header_size = r.le32();
  const uint32_t crc = r.le32();
  if (header_size < 92 || header_size > ss) {
    why = fmt::format("header at LBA {} claims {} bytes", lba, header_size);
    return std::nullopt;
  }
  std::vector<uint8_t> copy(sector.begin(), sector.begin() + header_size);
  store_le32(copy.data() + 16, 0);
  if (crc32_of(copy) != crc) {
    why = fmt::format("header at LBA {} fails its CRC32", lba);
    return std::nullopt;
  }
  GptHeader h;
  r.seek(24);
  h.my_lba = r.le64();
  h.alternate_lba = r.le64();
  h.first_usable = r.le64();
  h.last_usable = r.le64();
  std::memcpy(h.disk_guid.data(), r.bytes(16).data(), 16);
  h.entries_lba = r.le64();
  h.num_entries = r.le32();
  h.entry_size = r.le32();
  h.entries_crc = r.le32();
  const uint64_t array_bytes = uint64_t{h.num_entries} * h.entry_size;
  if (h.my_lba != lba) {
    why = fmt::format("header at LBA {} says it is at LBA {}", lba, h.my_lba);
  } else if (h.first_usable > h.last_usable || h.last_usable >= sectors) {
    why = fmt::format("header at LBA {}: usable LBAs {}-{} do not fit the {}-sector disk", lba, h.first_usable,
                      h.last_usable, sectors);
  } else if (h.entry_size < 128 || h.entry_size % 8 != 0 || array_bytes > kMaxEntryArrayBytes) {
    why = fmt::format("header at LBA {}: {} entries of {} bytes", lba, h.num_entries, h.entry_size);
  } else if (h.entries_lba >= sectors || div_round_up(array_bytes, ss) > sectors - h.entries_lba) {
    why = fmt::format("header at LBA {}: entry array at LBA {} lies beyond the disk", lba, h.entries_lba);
  } else {
    return h;
  }
  return std::nullopt;
}

// The entry array of `h`, or nullopt (with why) when it fails its CRC.
std::optional<std::vector<uint8_t>> read_entries(image::BlockDevice& disk, uint32_t ss, const GptHeader& h,
                                                 std::string& why) {
  std::vector<uint8_t> array(static_cast<size_t>(uint64_t{h.num_entries} * h.entry_size));
  disk.read(h.entries_lba * ss, array);
  if (crc32_of(array) != h.entries_crc) {
    why = fmt::format("entry array at LBA {} fails its CRC32", h.entries_lba);
    return std::nullopt;
  }
  return array;
}

std::string guid_text(std::span<const uint8_t> bytes) {
  image::foreign::Id128 id;
  std::memcpy(id.data(), bytes.data(), 16);
  return image::foreign::guid_string(id);
}

PartitionTable build(image::BlockDevice& disk, uint32_t ss, const GptHeader& h, const std::vector<uint8_t>& array) {
  PartitionTable t;
  t.scheme = PartitionScheme::gpt;
  t.sector_size = ss;
  t.disk_id = image::foreign::guid_string(h.disk_guid);
  const uint64_t disk_bytes = disk.size();
  for (uint32_t i = 0; i < h.num_entries; ++i) {
    std::span<const uint8_t> e(array.data() + uint64_t{i} * h.entry_size, 128);
    if (all_zero(e.first(16))) continue;  // unused entry
    Partition p;
    p.number = i + 1;
    p.type_id = guid_text(e.first(16));
    p.type_name = gpt_type_name(p.type_id);
    p.uuid = guid_text(e.subspan(16, 16));
    const uint64_t first = load_le64(e.data() + 32), last = load_le64(e.data() + 40);
    p.attributes = load_le64(e.data() + 48);
    p.name = image::foreign::utf16_to_utf8(image::foreign::utf16_from_bytes(e.subspan(56, 72), false));
    if (last < first) {
      t.notes.push_back(fmt::format("GPT entry {} ends (LBA {}) before it starts (LBA {}); ignored", p.number, last, first));
      continue;
    }
    const uint64_t sectors = last - first + 1;
    if (first > disk_bytes / ss) {
      p.offset = disk_bytes;
      p.size = 0;
      p.notes.push_back(fmt::format("starts at LBA {}, beyond the end of the disk", first));
    } else {
      p.offset = first * ss;
      p.size = std::min<uint64_t>(sectors > UINT64_MAX / ss ? UINT64_MAX : sectors * ss, disk_bytes - p.offset);
      if (p.size / ss < sectors)
        p.notes.push_back(fmt::format("reaches beyond the end of the disk (LBA {}); cut to {} bytes", last, p.size));
    }
    t.partitions.push_back(std::move(p));
  }
  return t;
}

}  // namespace

std::optional<PartitionTable> read_gpt(image::BlockDevice& disk, uint32_t ss) {
  const uint64_t sectors = disk.size() / ss;
  if (sectors < 3) return std::nullopt;
  std::string primary_why, backup_why;
  std::optional<GptHeader> primary = read_header(disk, ss, 1, primary_why);
  std::optional<std::vector<uint8_t>> primary_entries;
  if (primary) primary_entries = read_entries(disk, ss, *primary, primary_why);
  if (primary && primary_entries) {
    PartitionTable t = build(disk, ss, *primary, *primary_entries);
    std::string why;
    if (!read_header(disk, ss, primary->alternate_lba, why))
      t.notes.push_back("backup GPT header is damaged (" + why + "); the primary is intact");
    return t;
  }
  // The backup: where the primary says, or at the last LBA when the primary header
  // itself is unusable.
  const uint64_t backup_lba = primary ? primary->alternate_lba : sectors - 1;
  std::optional<GptHeader> backup = read_header(disk, ss, backup_lba, backup_why);
  std::optional<std::vector<uint8_t>> backup_entries;
  if (backup) backup_entries = read_entries(disk, ss, *backup, backup_why);
  if (backup && backup_entries) {
    PartitionTable t = build(disk, ss, *backup, *backup_entries);
    t.notes.insert(t.notes.begin(), fmt::format("primary GPT is damaged ({}); read the backup at LBA {}", primary_why,
                                                backup_lba));
    return t;
  }
  if (!primary && primary_why.starts_with("no \"EFI PART\"") && !backup) return std::nullopt;
  fail(ErrorCategory::corrupt, "GPT: primary damaged ({}) and backup damaged ({})", primary_why, backup_why);
}

}  // namespace arche::volume
