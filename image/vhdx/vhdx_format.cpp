#include "image/vhdx/vhdx_format.h"

#include <algorithm>
#include <cstring>

#include "core/bytes.h"
#include "core/crc32c.h"
#include "core/error.h"
#include "core/units.h"

namespace arche::image::vhdx {

namespace {

constexpr uint32_t kHeaderSignature = 0x64616568;  // "head"
constexpr uint32_t kRegionSignature = 0x69676572;  // "regi"
constexpr uint64_t kMetadataSignature = 0x617461646174656DULL;  // "metadata"
constexpr size_t kMaxRegionEntries = 2047;
constexpr size_t kMaxMetadataEntries = 2047;

Id128 read_id(ByteReader& r) {
  Id128 id{};
  auto b = r.bytes(16);
  std::copy(b.begin(), b.end(), id.begin());
  return id;
}

// CRC32C of `bytes` with the 4-byte checksum field at `at` taken as zero.
uint32_t crc_with_hole(std::span<const uint8_t> bytes, size_t at) {
  static const uint8_t zero[4] = {0, 0, 0, 0};
  uint32_t c = crc32c(0, bytes.data(), at);
  c = crc32c(c, zero, 4);
  return crc32c(c, bytes.data() + at + 4, bytes.size() - at - 4);
}

}  // namespace

Id128 guid(const char* text) {
  Id128 id{};
  if (!foreign::parse_guid(text, id)) throw Error(ErrorCategory::internal, std::string("bad GUID literal ") + text);
  return id;
}

const Id128 kBatRegion = guid("2DC27766-F623-4200-9D64-115E9BFD4A08");
const Id128 kMetadataRegion = guid("8B7CA206-4790-4B9A-B8FE-575F050F886E");
const Id128 kFileParameters = guid("CAA16737-FA36-4D43-B3B6-33F0AA44E76B");
const Id128 kVirtualDiskSize = guid("2FA54224-CD1B-4876-B211-5DBED83BF4B8");
const Id128 kPage83Data = guid("BECA12AB-B2E6-4523-93EF-C309E000C746");
const Id128 kLogicalSectorSize = guid("8141BF1D-A96F-4709-BA47-F233A8FAAB5F");
const Id128 kPhysicalSectorSize = guid("CDA348C7-445D-4471-9CC9-E9885251C556");
const Id128 kParentLocator = guid("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C");
const Id128 kVhdxParentLocatorType = guid("B04AEFB7-D19E-4A81-B789-25B8E9445913");

Header parse_header(std::span<const uint8_t> block, const std::string& what) {
  if (block.size() < kHeaderSize) fail(ErrorCategory::format, "{}: truncated", what);
  ByteReader r(block.first(kHeaderSize), what);
  if (r.le32() != kHeaderSignature) fail(ErrorCategory::corrupt, "{}: signature \"head\" missing", what);
  uint32_t stored = r.le32();
  uint32_t computed = crc_with_hole(block.first(kHeaderSize), 4);
  if (stored != computed)
    fail(ErrorCategory::corrupt, "{}: CRC32C is 0x{:08x}, expected 0x{:08x}", what, stored, computed);
  Header h;
  h.sequence = r.le64();
  h.file_write_guid = read_id(r);
  h.data_write_guid = read_id(r);
  h.log_guid = read_id(r);
  h.log_version = r.le16();
  h.version = r.le16();
  h.log_length = r.le32();
  h.log_offset = r.le64();
  if (h.version != 1) fail(ErrorCategory::unsupported, "{}: VHDX version {} (only 1 is defined)", what, h.version);
  return h;
}

std::vector<uint8_t> encode_header(const Header& h) {
  ByteWriter w;
  w.le32(kHeaderSignature);
  w.le32(0);
  w.le64(h.sequence);
  w.bytes(h.file_write_guid);
  w.bytes(h.data_write_guid);
  w.bytes(h.log_guid);
  w.le16(h.log_version);
  w.le16(h.version);
  w.le32(h.log_length);
  w.le64(h.log_offset);
  w.zeros(kHeaderSize - w.size());
  std::vector<uint8_t> out = w.take();
  store_le32(out.data() + 4, crc_with_hole(out, 4));
  return out;
}

std::vector<RegionEntry> parse_region_table(std::span<const uint8_t> table, const std::string& what) {
  if (table.size() < kRegionTableSize) fail(ErrorCategory::format, "{}: truncated", what);
  ByteReader r(table.first(kRegionTableSize), what);
  if (r.le32() != kRegionSignature) fail(ErrorCategory::corrupt, "{}: signature \"regi\" missing", what);
  uint32_t stored = r.le32();
  uint32_t computed = crc_with_hole(table.first(kRegionTableSize), 4);
  if (stored != computed)
    fail(ErrorCategory::corrupt, "{}: CRC32C is 0x{:08x}, expected 0x{:08x}", what, stored, computed);
  uint32_t count = r.le32();
  r.skip(4);
  if (count > kMaxRegionEntries) fail(ErrorCategory::corrupt, "{}: {} entries (at most 2047)", what, count);
  std::vector<RegionEntry> out;
  for (uint32_t i = 0; i < count; ++i) {
    RegionEntry e;
    e.id = read_id(r);
    e.offset = r.le64();
    e.length = r.le32();
    e.required = r.le32() & 1;
    if (e.offset % kMiB || e.length % kMiB || e.offset < kMiB || e.length == 0)
      fail(ErrorCategory::corrupt, "{}: region {} at 0x{:x} (+{}) is not 1 MiB aligned", what,
           foreign::guid_string(e.id), e.offset, e.length);
    out.push_back(e);
  }
  return out;
}

std::vector<uint8_t> encode_region_table(const std::vector<RegionEntry>& entries) {
  ByteWriter w;
  w.le32(kRegionSignature);
  w.le32(0);
  w.le32(static_cast<uint32_t>(entries.size()));
  w.le32(0);
  for (const RegionEntry& e : entries) {
    w.bytes(e.id);
    w.le64(e.offset);
    w.le32(e.length);
    w.le32(e.required ? 1 : 0);
  }
  w.zeros(kRegionTableSize - w.size());
  std::vector<uint8_t> out = w.take();
  store_le32(out.data() + 4, crc_with_hole(out, 4));
  return out;
}

namespace {

ParentLocator parse_parent_locator(std::span<const uint8_t> item, const std::string& what) {
  ByteReader r(item, what + ": parent locator");
  ParentLocator p;
  p.type = read_id(r);
  r.skip(2);
  uint16_t count = r.le16();
  for (uint16_t i = 0; i < count; ++i) {
    uint32_t key_offset = r.le32(), value_offset = r.le32();
    uint16_t key_length = r.le16(), value_length = r.le16();
    if (!range_within(key_offset, key_length, item.size()) ||
        !range_within(value_offset, value_length, item.size()) || key_length == 0 || key_length % 2 ||
        value_length % 2)
      fail(ErrorCategory::corrupt, "{}: parent locator entry {} lies outside the item", what, i);
    auto text = [&](uint32_t off, uint16_t len) {
      std::u16string u;
      for (uint32_t k = 0; k < len; k += 2) u += static_cast<char16_t>(item[off + k] | item[off + k + 1] << 8);
      return foreign::utf16_to_utf8(u);
    };
    p.entries[text(key_offset, key_length)] = text(value_offset, value_length);
  }
  return p;
}

std::vector<uint8_t> encode_parent_locator(const ParentLocator& p) {
  ByteWriter head, data;
  head.bytes(p.type);
  head.le16(0);
  head.le16(static_cast<uint16_t>(p.entries.size()));
  const size_t data_start = 20 + 12 * p.entries.size();
  for (const auto& [key, value] : p.entries) {
    std::string k, v;
    foreign::utf16_to_bytes(foreign::utf8_to_utf16(key), false, k);
    foreign::utf16_to_bytes(foreign::utf8_to_utf16(value), false, v);
    head.le32(static_cast<uint32_t>(data_start + data.size()));
    data.string(k);
    head.le32(static_cast<uint32_t>(data_start + data.size()));
    data.string(v);
    head.le16(static_cast<uint16_t>(k.size()));
    head.le16(static_cast<uint16_t>(v.size()));
  }
  std::vector<uint8_t> out = head.take();
  out.insert(out.end(), data.buffer().begin(), data.buffer().end());
  return out;
}

}  // namespace

Metadata parse_metadata(std::span<const uint8_t> region, const std::string& what) {
  if (region.size() < kMetadataTableSize) fail(ErrorCategory::corrupt, "{}: metadata region smaller than its table", what);
  ByteReader r(region.first(kMetadataTableSize), what + ": metadata table");
  if (r.le64() != kMetadataSignature) fail(ErrorCategory::corrupt, "{}: metadata table signature missing", what);
  r.skip(2);
  uint16_t count = r.le16();
  r.skip(20);
  if (count > kMaxMetadataEntries) fail(ErrorCategory::corrupt, "{}: {} metadata entries (at most 2047)", what, count);
  Metadata m;
  bool have_params = false, have_size = false, have_logical = false, have_physical = false;
  for (uint16_t i = 0; i < count; ++i) {
    Id128 id = read_id(r);
    uint32_t offset = r.le32(), length = r.le32(), flags = r.le32();
    r.skip(4);
    if (length == 0) continue;
    if (offset < kMetadataTableSize || !range_within(offset, length, region.size()) || length > kMiB)
      fail(ErrorCategory::corrupt, "{}: metadata item {} at {} (+{}) lies outside the metadata region", what,
           foreign::guid_string(id), offset, length);
    std::span<const uint8_t> item = region.subspan(offset, length);
    ByteReader v(item, what + ": metadata item " + foreign::guid_string(id));
    if (id == kFileParameters) {
      m.block_size = v.le32();
      uint32_t bits = v.le32();
      m.leave_blocks_allocated = bits & 1;
      m.has_parent = bits & 2;
      have_params = true;
    } else if (id == kVirtualDiskSize) {
      m.virtual_disk_size = v.le64();
      have_size = true;
    } else if (id == kPage83Data) {
      m.page83 = read_id(v);
    } else if (id == kLogicalSectorSize) {
      m.logical_sector_size = v.le32();
      have_logical = true;
    } else if (id == kPhysicalSectorSize) {
      m.physical_sector_size = v.le32();
      have_physical = true;
    } else if (id == kParentLocator) {
      m.parent_locator = parse_parent_locator(item, what);
    } else if ((flags & kIsRequired) && !(flags & kIsUser)) {
      fail(ErrorCategory::unsupported, "{}: required metadata item {} is unknown to arche", what,
           foreign::guid_string(id));
    }
  }
  if (!have_params || !have_size || !have_logical || !have_physical)
    fail(ErrorCategory::corrupt, "{}: a required metadata item is missing (file parameters, size, sector sizes)", what);
  if (m.block_size < kMiB || m.block_size > 256 * kMiB || (m.block_size & (m.block_size - 1)))
    fail(ErrorCategory::corrupt, "{}: block size {} is not a power of two between 1 MiB and 256 MiB", what, m.block_size);
  if (m.logical_sector_size != 512 && m.logical_sector_size != 4096)
    fail(ErrorCategory::corrupt, "{}: logical sector size {} (must be 512 or 4096)", what, m.logical_sector_size);
  if (m.physical_sector_size != 512 && m.physical_sector_size != 4096)
    fail(ErrorCategory::corrupt, "{}: physical sector size {} (must be 512 or 4096)", what, m.physical_sector_size);
  if (m.virtual_disk_size == 0 || m.virtual_disk_size > kMaxDiskSize || m.virtual_disk_size % m.logical_sector_size)
    fail(ErrorCategory::corrupt, "{}: virtual disk size {} is not a multiple of the sector size up to 64 TiB", what,
         m.virtual_disk_size);
  if (m.has_parent && !m.parent_locator)
    fail(ErrorCategory::corrupt, "{}: differencing disk without a parent locator", what);
  return m;
}

std::vector<uint8_t> encode_metadata(const Metadata& m, uint64_t region_size) {
  struct Item {
    Id128 id;
    uint32_t flags;
    std::vector<uint8_t> data;
  };
  std::vector<Item> items;
  ByteWriter w;
  w.le32(m.block_size);
  w.le32((m.leave_blocks_allocated ? 1u : 0u) | (m.has_parent ? 2u : 0u));
  items.push_back({kFileParameters, kIsRequired, w.take()});
  w.le64(m.virtual_disk_size);
  items.push_back({kVirtualDiskSize, kIsRequired | kIsVirtualDisk, w.take()});
  w.bytes(m.page83);
  items.push_back({kPage83Data, kIsRequired | kIsVirtualDisk, w.take()});
  w.le32(m.logical_sector_size);
  items.push_back({kLogicalSectorSize, kIsRequired | kIsVirtualDisk, w.take()});
  w.le32(m.physical_sector_size);
  items.push_back({kPhysicalSectorSize, kIsRequired | kIsVirtualDisk, w.take()});
  if (m.parent_locator) items.push_back({kParentLocator, kIsRequired, encode_parent_locator(*m.parent_locator)});

  std::vector<uint8_t> out(region_size, 0);
  ByteWriter table;
  table.le64(kMetadataSignature);
  table.le16(0);
  table.le16(static_cast<uint16_t>(items.size()));
  table.zeros(20);
  uint64_t at = kMetadataTableSize;
  for (const Item& item : items) {
    if (at + item.data.size() > region_size) throw Error(ErrorCategory::usage, "vhdx: metadata does not fit its region");
    table.bytes(item.id);
    table.le32(static_cast<uint32_t>(at));
    table.le32(static_cast<uint32_t>(item.data.size()));
    table.le32(item.flags);
    table.le32(0);
    std::memcpy(out.data() + at, item.data.data(), item.data.size());
    at += align_up(item.data.size(), 8);
  }
  std::memcpy(out.data(), table.buffer().data(), table.size());
  return out;
}

BatLayout bat_layout(uint64_t disk_size, uint32_t block_size, uint32_t logical_sector_size, bool has_parent) {
  BatLayout l;
  l.block_size = block_size;
  l.chunk_ratio = kSectorsPerBitmapBlock * logical_sector_size / block_size;
  l.payload_blocks = (disk_size + block_size - 1) / block_size;
  l.bitmap_blocks = (l.payload_blocks + l.chunk_ratio - 1) / l.chunk_ratio;
  l.entries = has_parent ? l.bitmap_blocks * (l.chunk_ratio + 1)
                         : l.payload_blocks + (l.payload_blocks ? (l.payload_blocks - 1) / l.chunk_ratio : 0);
  return l;
}

}  // namespace arche::image::vhdx
