#include "image/vhd/vhd_format.h"

#include <algorithm>
#include <cstring>

#include "core/bytes.h"
#include "core/error.h"

namespace arche::image::vhd {

namespace {

constexpr char kFooterCookie[8] = {'c', 'o', 'n', 'e', 'c', 't', 'i', 'x'};
constexpr char kHeaderCookie[8] = {'c', 'x', 's', 'p', 'a', 'r', 's', 'e'};
constexpr size_t kFooterChecksumAt = 64;
constexpr size_t kHeaderChecksumAt = 36;

}  // namespace

const char* to_string(DiskType type) {
  switch (type) {
    case DiskType::fixed: return "fixed";
    case DiskType::dynamic: return "dynamic";
    case DiskType::differencing: return "differencing";
  }
  return "?";
}

Geometry geometry_for(uint64_t total_sectors) {
  // Appendix "CHS calculation" of the specification, step by step.
  uint64_t sectors = std::min(total_sectors, kMaxGeometrySectors);
  uint64_t spt, heads, cyl_times_heads;
  if (sectors >= 65535ull * 16 * 63) {
    spt = 255;
    heads = 16;
    cyl_times_heads = sectors / spt;
  } else {
    spt = 17;
    cyl_times_heads = sectors / spt;
    heads = (cyl_times_heads + 1023) / 1024;
    if (heads < 4) heads = 4;
    if (cyl_times_heads >= heads * 1024 || heads > 16) {
      spt = 31;
      heads = 16;
      cyl_times_heads = sectors / spt;
    }
    if (cyl_times_heads >= heads * 1024) {
      spt = 63;
      heads = 16;
      cyl_times_heads = sectors / spt;
    }
  }
  Geometry g;
  g.cylinders = static_cast<uint16_t>(std::min<uint64_t>(cyl_times_heads / heads, 65535));
  g.heads = static_cast<uint8_t>(heads);
  g.sectors_per_track = static_cast<uint8_t>(spt);
  return g;
}

uint32_t checksum(std::span<const uint8_t> bytes, size_t checksum_at) {
  uint32_t sum = 0;
  for (size_t i = 0; i < bytes.size(); ++i)
    if (i < checksum_at || i >= checksum_at + 4) sum += bytes[i];
  return ~sum;
}

Footer parse_footer(std::span<const uint8_t> bytes, const std::string& what) {
  ByteReader r(bytes, what);
  if (bytes.size() < kFooterSize || std::memcmp(bytes.data(), kFooterCookie, 8) != 0)
    fail(ErrorCategory::format, "{}: no VHD footer (cookie \"conectix\" missing)", what);
  r.skip(8);
  Footer f;
  f.features = r.be32();
  f.format_version = r.be32();
  f.data_offset = r.be64();
  f.timestamp = r.be32();
  auto app = r.bytes(4);
  std::memcpy(f.creator_app.data(), app.data(), 4);
  f.creator_version = r.be32();
  f.creator_host_os = r.be32();
  f.original_size = r.be64();
  f.current_size = r.be64();
  f.geometry.cylinders = r.be16();
  f.geometry.heads = r.u8();
  f.geometry.sectors_per_track = r.u8();
  uint32_t type = r.be32();
  f.checksum = r.be32();
  auto id = r.bytes(16);
  std::copy(id.begin(), id.end(), f.unique_id.begin());
  f.saved_state = r.u8();

  uint32_t expected = checksum(bytes.first(kFooterSize), kFooterChecksumAt);
  if (expected != f.checksum)
    fail(ErrorCategory::corrupt, "{}: VHD footer checksum is 0x{:08x}, expected 0x{:08x}", what, f.checksum, expected);
  if ((f.format_version >> 16) != 1)
    fail(ErrorCategory::unsupported, "{}: VHD format version {}.{} (only 1.x is defined)", what, f.format_version >> 16,
         f.format_version & 0xffff);
  if (type != 2 && type != 3 && type != 4)
    fail(ErrorCategory::unsupported, "{}: VHD disk type {} (known: 2 fixed, 3 dynamic, 4 differencing)", what, type);
  f.disk_type = static_cast<DiskType>(type);
  if (f.current_size % kSector != 0)
    fail(ErrorCategory::format, "{}: VHD size {} is not a multiple of 512", what, f.current_size);
  return f;
}

std::array<uint8_t, kFooterSize> encode_footer(const Footer& f) {
  ByteWriter w;
  w.bytes(std::span(reinterpret_cast<const uint8_t*>(kFooterCookie), 8));
  w.be32(f.features);
  w.be32(f.format_version);
  w.be64(f.data_offset);
  w.be32(f.timestamp);
  w.bytes(std::span(reinterpret_cast<const uint8_t*>(f.creator_app.data()), 4));
  w.be32(f.creator_version);
  w.be32(f.creator_host_os);
  w.be64(f.original_size);
  w.be64(f.current_size);
  w.be16(f.geometry.cylinders);
  w.u8(f.geometry.heads);
  w.u8(f.geometry.sectors_per_track);
  w.be32(static_cast<uint32_t>(f.disk_type));
  w.be32(0);
  w.bytes(f.unique_id);
  w.u8(f.saved_state);
  w.zeros(kFooterSize - w.size());
  std::array<uint8_t, kFooterSize> out{};
  std::memcpy(out.data(), w.buffer().data(), kFooterSize);
  store_be32(out.data() + kFooterChecksumAt, checksum(out, kFooterChecksumAt));
  return out;
}

bool size_from_geometry(const Footer& f) {
  if (f.geometry.total_sectors() == kMaxGeometrySectors) return false;
  const std::string app(f.creator_app.data(), 4);
  // Creators known to mean the footer's current size (qemu's table).
  for (const char* current : {"win ", "qem2", "d2v ", "CTXS"})
    if (app == current) return false;
  if (std::memcmp(f.creator_app.data(), "tap\0", 4) == 0) return false;
  return true;
}

uint64_t virtual_size(const Footer& f) {
  return size_from_geometry(f) ? f.geometry.total_sectors() * kSector : f.current_size;
}

DynamicHeader parse_dynamic_header(std::span<const uint8_t> bytes, const std::string& what) {
  if (bytes.size() < kDynamicHeaderSize || std::memcmp(bytes.data(), kHeaderCookie, 8) != 0)
    fail(ErrorCategory::format, "{}: no VHD dynamic disk header (cookie \"cxsparse\" missing)", what);
  ByteReader r(bytes, what);
  r.skip(8);
  DynamicHeader h;
  h.data_offset = r.be64();
  h.table_offset = r.be64();
  h.header_version = r.be32();
  h.max_table_entries = r.be32();
  h.block_size = r.be32();
  h.checksum = r.be32();
  auto id = r.bytes(16);
  std::copy(id.begin(), id.end(), h.parent_unique_id.begin());
  h.parent_timestamp = r.be32();
  r.skip(4);
  h.parent_name = foreign::utf16_to_utf8(foreign::utf16_from_bytes(r.bytes(512), true));
  for (ParentLocator& l : h.locators) {
    l.platform = r.be32();
    l.data_space = r.be32();
    l.data_length = r.be32();
    r.skip(4);
    l.data_offset = r.be64();
  }
  uint32_t expected = checksum(bytes.first(kDynamicHeaderSize), kHeaderChecksumAt);
  if (expected != h.checksum)
    fail(ErrorCategory::corrupt, "{}: VHD dynamic header checksum is 0x{:08x}, expected 0x{:08x}", what, h.checksum,
         expected);
  if ((h.header_version >> 16) != 1)
    fail(ErrorCategory::unsupported, "{}: VHD dynamic header version {}.{}", what, h.header_version >> 16,
         h.header_version & 0xffff);
  // Powers of two from one sector to 256 MiB: the specification only says "power
  // of two"; the bound keeps buffers of one block sane on crafted input.
  if (h.block_size < kSector || h.block_size > (256u << 20) || (h.block_size & (h.block_size - 1)))
    fail(ErrorCategory::format, "{}: VHD block size {} is not a power of two between 512 B and 256 MiB", what,
         h.block_size);
  return h;
}

std::array<uint8_t, kDynamicHeaderSize> encode_dynamic_header(const DynamicHeader& h) {
  ByteWriter w;
  w.bytes(std::span(reinterpret_cast<const uint8_t*>(kHeaderCookie), 8));
  w.be64(h.data_offset);
  w.be64(h.table_offset);
  w.be32(h.header_version);
  w.be32(h.max_table_entries);
  w.be32(h.block_size);
  w.be32(0);
  w.bytes(h.parent_unique_id);
  w.be32(h.parent_timestamp);
  w.be32(0);
  std::string name;
  foreign::utf16_to_bytes(foreign::utf8_to_utf16(h.parent_name), true, name);
  if (name.size() > 512) name.resize(512);
  w.string(name);
  w.zeros(512 - name.size());
  for (const ParentLocator& l : h.locators) {
    w.be32(l.platform);
    w.be32(l.data_space);
    w.be32(l.data_length);
    w.be32(0);
    w.be64(l.data_offset);
  }
  w.zeros(kDynamicHeaderSize - w.size());
  std::array<uint8_t, kDynamicHeaderSize> out{};
  std::memcpy(out.data(), w.buffer().data(), kDynamicHeaderSize);
  store_be32(out.data() + kHeaderChecksumAt, checksum(out, kHeaderChecksumAt));
  return out;
}

namespace {

std::string percent_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string windows_to_posix(std::string path) {
  std::replace(path.begin(), path.end(), '\\', '/');
  while (path.rfind("./", 0) == 0) path.erase(0, 2);
  return path;
}

}  // namespace

std::string locator_path(uint32_t platform, std::span<const uint8_t> data) {
  switch (platform) {
    case kPlatformW2ru:
    case kPlatformW2ku:
      return windows_to_posix(foreign::utf16_to_utf8(foreign::utf16_from_bytes(data, false)));
    case kPlatformWi2r:
    case kPlatformWi2k: {
      std::string s(reinterpret_cast<const char*>(data.data()), data.size());
      s = s.substr(0, s.find('\0'));
      return windows_to_posix(s);
    }
    case kPlatformMacX: {
      std::string s(reinterpret_cast<const char*>(data.data()), data.size());
      s = s.substr(0, s.find('\0'));
      if (s.rfind("file://localhost/", 0) == 0) s = s.substr(16);
      else if (s.rfind("file://", 0) == 0) s = s.substr(7);
      return percent_decode(s);
    }
    default: return "";
  }
}

}  // namespace arche::image::vhd
