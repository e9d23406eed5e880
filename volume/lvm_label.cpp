// LVM2 on-disk structures: the PV label and the metadata area (see lvm.h).
#include <zlib.h>

#include <cstring>

#include "core/bytes.h"
#include "core/error.h"
#include "core/units.h"
#include "volume/lvm.h"

namespace arche::volume::lvm {

namespace {

constexpr char kLabelId[] = "LABELONE";
constexpr char kLabelType[] = "LVM2 001";
constexpr char kMdaMagic[] = " LVM2 x[5A%r0N*>";
constexpr uint64_t kMdaHeaderSize = 512;
constexpr uint64_t kMaxMetadataText = 64 * MiB;  // LVM's own default area is 1 MiB
constexpr int kMaxAreas = 16;

}  // namespace

uint32_t lvm_crc(std::span<const uint8_t> data) {
  constexpr uint32_t kInitial = 0xf597a6cf;
  if (data.empty()) return kInitial;  // zlib answers an empty buffer with its own initial value
  // zlib's crc32 inverts before and after; LVM does neither.
  return ~static_cast<uint32_t>(::crc32(~kInitial, data.data(), static_cast<uInt>(data.size())));
}

std::string strip_dashes(std::string_view id) {
  std::string out;
  for (char c : id)
    if (c != '-') out.push_back(c);
  return out;
}

std::optional<PvLabel> read_pv_label(image::BlockDevice& pv) {
  if (pv.size() < 4 * kSectorSize) return std::nullopt;
  std::vector<uint8_t> head(4 * kSectorSize);
  pv.read(0, head);
  for (uint64_t s = 0; s < 4; ++s) {
    std::span<const uint8_t> sector(head.data() + s * kSectorSize, kSectorSize);
    if (std::memcmp(sector.data(), kLabelId, 8) != 0) continue;
    ByteReader r(sector, "LVM2 label");
    r.skip(8);
    const uint64_t sector_xl = r.le64();
    const uint32_t crc = r.le32();
    const uint32_t offset = r.le32();
    std::string type = r.string(8);
    if (sector_xl != s) continue;  // a stale copy moved with the data
    if (type != kLabelType) fail(ErrorCategory::unsupported, "LVM label in sector {} is of type \"{}\"", s, type);
    if (lvm_crc(sector.subspan(20)) != crc) fail(ErrorCategory::corrupt, "LVM2 label in sector {} fails its CRC", s);
    if (offset < 32 || offset + 40 > kSectorSize)
      fail(ErrorCategory::corrupt, "LVM2 label: PV header at offset {} does not fit the sector", offset);
    r.seek(offset);
    PvLabel label;
    label.uuid = r.string(32);
    label.device_size = r.le64();
    // Two lists, each ended by an entry of zeros; the reader stops at the end of the sector.
    for (auto* list : {&label.data_areas, &label.metadata_areas}) {
      while (true) {
        DiskArea a{r.le64(), r.le64()};
        if (a.offset == 0) break;
        if (list->size() >= kMaxAreas) fail(ErrorCategory::corrupt, "LVM2 PV header lists too many areas");
        list->push_back(a);
      }
    }
    for (char c : label.uuid)
      if (c < 0x21 || c > 0x7e) fail(ErrorCategory::corrupt, "LVM2 PV header: the PV uuid is not text");
    return label;
  }
  return std::nullopt;
}

std::vector<std::string> read_metadata_texts(image::BlockDevice& pv, const PvLabel& label,
                                             std::vector<std::string>& notes) {
  std::vector<std::string> texts;
  for (const DiskArea& area : label.metadata_areas) {
    const std::string where = fmt::format("metadata area at offset {}", area.offset);
    try {
      if (area.size < 2 * kMdaHeaderSize || !range_within(area.offset, area.size, pv.size()))
        fail(ErrorCategory::corrupt, "{}: {} bytes do not fit the PV", where, area.size);
      std::vector<uint8_t> header(kMdaHeaderSize);
      pv.read(area.offset, header);
      ByteReader r(header, "LVM2 mda header");
      const uint32_t crc = r.le32();
      if (std::memcmp(r.bytes(16).data(), kMdaMagic, 16) != 0) fail(ErrorCategory::corrupt, "{}: no mda magic", where);
      if (lvm_crc(std::span(header).subspan(4)) != crc) fail(ErrorCategory::corrupt, "{}: header fails its CRC", where);
      const uint32_t version = r.le32();
      if (version != 1) fail(ErrorCategory::unsupported, "{}: mda version {}", where, version);
      const uint64_t start = r.le64(), size = r.le64();
      if (start != area.offset || size != area.size)
        fail(ErrorCategory::corrupt, "{}: header says it lies at {} ({} bytes)", where, start, size);
      const uint64_t offset = r.le64(), length = r.le64();
      const uint32_t text_crc = r.le32(), flags = r.le32();
      if (offset == 0 && length == 0) continue;  // an empty area (new PV not yet in a VG)
      if (flags & 1) continue;                   // RAW_LOCN_IGNORED: this copy is not kept up to date
      if (offset < kMdaHeaderSize || offset >= size || length == 0 || length > size - kMdaHeaderSize ||
          length > kMaxMetadataText)
        fail(ErrorCategory::corrupt, "{}: text of {} bytes at {} does not fit", where, length, offset);
      std::vector<uint8_t> text(length);
      // The area is a circular buffer after its header: the text may wrap.
      const uint64_t first = std::min(length, size - offset);
      pv.read(area.offset + offset, std::span(text).first(first));
      if (first < length) pv.read(area.offset + kMdaHeaderSize, std::span(text).subspan(first));
      if (lvm_crc(text) != text_crc) fail(ErrorCategory::corrupt, "{}: text fails its CRC", where);
      texts.emplace_back(text.begin(), text.end());
    } catch (const Error& e) {
      notes.push_back(e.what());
    }
  }
  return texts;
}

}  // namespace arche::volume::lvm
