#include "volume/fat_format.h"

#include <algorithm>
#include <cstring>

#include "core/endian.h"
#include "core/error.h"

namespace arche::volume::fat {
namespace {

// Code page 437 (the IBM PC's, which DOS and Linux use by default for 8.3 names),
// bytes 0x80..0xff as Unicode.
constexpr uint16_t kCp437High[128] = {
    0x00c7, 0x00fc, 0x00e9, 0x00e2, 0x00e4, 0x00e0, 0x00e5, 0x00e7, 0x00ea, 0x00eb, 0x00e8, 0x00ef, 0x00ee,
    0x00ec, 0x00c4, 0x00c5, 0x00c9, 0x00e6, 0x00c6, 0x00f4, 0x00f6, 0x00f2, 0x00fb, 0x00f9, 0x00ff, 0x00d6,
    0x00dc, 0x00a2, 0x00a3, 0x00a5, 0x20a7, 0x0192, 0x00e1, 0x00ed, 0x00f3, 0x00fa, 0x00f1, 0x00d1, 0x00aa,
    0x00ba, 0x00bf, 0x2310, 0x00ac, 0x00bd, 0x00bc, 0x00a1, 0x00ab, 0x00bb, 0x2591, 0x2592, 0x2593, 0x2502,
    0x2524, 0x2561, 0x2562, 0x2556, 0x2555, 0x2563, 0x2551, 0x2557, 0x255d, 0x255c, 0x255b, 0x2510, 0x2514,
    0x2534, 0x252c, 0x251c, 0x2500, 0x253c, 0x255e, 0x255f, 0x255a, 0x2554, 0x2569, 0x2566, 0x2560, 0x2550,
    0x256c, 0x2567, 0x2568, 0x2564, 0x2565, 0x2559, 0x2558, 0x2552, 0x2553, 0x256b, 0x256a, 0x2518, 0x250c,
    0x2588, 0x2584, 0x258c, 0x2590, 0x2580, 0x03b1, 0x00df, 0x0393, 0x03c0, 0x03a3, 0x03c3, 0x00b5, 0x03c4,
    0x03a6, 0x0398, 0x03a9, 0x03b4, 0x221e, 0x03c6, 0x03b5, 0x2229, 0x2261, 0x00b1, 0x2265, 0x2264, 0x2320,
    0x2321, 0x00f7, 0x2248, 0x00b0, 0x2219, 0x00b7, 0x221a, 0x207f, 0x00b2, 0x25a0, 0x00a0};

constexpr uint32_t kFat12Limit = 4085;   // fewer clusters than this: FAT12
constexpr uint32_t kFat16Limit = 65525;  // fewer than this: FAT16, else FAT32

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

// An OEM byte of a short name or label. '/' and control bytes cannot be in a
// valid name; they become '_' so that a damaged entry still has a usable name.
void append_oem(std::string& out, uint8_t byte, bool lower) {
  if (byte >= 0x80) {
    append_utf8(out, kCp437High[byte - 0x80]);
  } else if (byte < 0x20 || byte == '/' || byte == 0x7f) {
    out += '_';
  } else {
    out += static_cast<char>(lower && byte >= 'A' && byte <= 'Z' ? byte + ('a' - 'A') : byte);
  }
}

std::string oem_field(std::span<const uint8_t> bytes, bool lower) {
  size_t n = bytes.size();
  while (n > 0 && bytes[n - 1] == ' ') --n;
  std::string out;
  for (size_t i = 0; i < n; ++i) append_oem(out, bytes[i], lower);
  return out;
}

bool power_of_two(uint32_t v) { return v != 0 && (v & (v - 1)) == 0; }

// Days from 1970-01-01 to the given civil date (proleptic Gregorian).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

}  // namespace

uint64_t Geometry::data_offset() const {
  const uint64_t root_sectors = (root_dir_bytes() + bytes_per_sector - 1) / bytes_per_sector;
  return fat_offset(fat_count) + root_sectors * bytes_per_sector;
}

Geometry parse_boot_sector(std::span<const uint8_t> s) {
  if (s.size() < 512) fail(ErrorCategory::format, "fat: boot sector shorter than 512 bytes");
  if (std::memcmp(s.data() + 3, "EXFAT   ", 8) == 0)
    fail(ErrorCategory::format, "fat: exFAT volume (not supported: FAT12/16/32 only)");
  if (std::memcmp(s.data() + 3, "NTFS    ", 8) == 0) fail(ErrorCategory::format, "fat: NTFS volume, not FAT");
  const bool jump_ok = s[0] == 0xeb || s[0] == 0xe9;
  const bool signature_ok = s[510] == 0x55 && s[511] == 0xaa;
  if (!jump_ok && !signature_ok)
    fail(ErrorCategory::format, "fat: no boot sector (neither a jump instruction nor 0x55AA)");

  Geometry g;
  g.bytes_per_sector = load_le16(s.data() + 11);
  g.sectors_per_cluster = s[13];
  g.reserved_sectors = load_le16(s.data() + 14);
  g.fat_count = s[16];
  g.root_entries = load_le16(s.data() + 17);
  const uint16_t total16 = load_le16(s.data() + 19);
  const uint8_t media = s[21];
  const uint16_t fat_size16 = load_le16(s.data() + 22);
  const uint32_t total32 = load_le32(s.data() + 32);
  const uint32_t fat_size32 = load_le32(s.data() + 36);

  if (g.bytes_per_sector < 512 || g.bytes_per_sector > 4096 || !power_of_two(g.bytes_per_sector))
    fail(ErrorCategory::format, "fat: BPB bytes per sector {} (must be 512, 1024, 2048 or 4096)", g.bytes_per_sector);
  if (!power_of_two(g.sectors_per_cluster))
    fail(ErrorCategory::format, "fat: BPB sectors per cluster {} is not a power of two", g.sectors_per_cluster);
  if (g.reserved_sectors == 0) fail(ErrorCategory::format, "fat: BPB reserved sector count is 0");
  if (g.fat_count == 0 || g.fat_count > 16) fail(ErrorCategory::format, "fat: BPB number of FATs {}", g.fat_count);
  if (media != 0xf0 && media < 0xf8) fail(ErrorCategory::format, "fat: BPB media byte 0x{:02x}", media);
  g.cluster_bytes = g.bytes_per_sector * g.sectors_per_cluster;
  g.total_sectors = total16 ? total16 : total32;
  if (g.total_sectors == 0) fail(ErrorCategory::format, "fat: BPB total sector count is 0");

  const bool fat32_layout = fat_size16 == 0;
  g.fat_sectors = fat32_layout ? fat_size32 : fat_size16;
  if (g.fat_sectors == 0) fail(ErrorCategory::format, "fat: BPB FAT size is 0");
  if (fat32_layout && g.root_entries != 0)
    fail(ErrorCategory::corrupt, "fat: FAT32 BPB with {} fixed root directory entries", g.root_entries);

  const uint64_t meta_sectors = g.data_offset() / g.bytes_per_sector;
  if (meta_sectors >= g.total_sectors)
    fail(ErrorCategory::corrupt,
         "fat: reserved sectors, FATs and root directory ({} sectors) fill the whole volume ({})", meta_sectors,
         g.total_sectors);
  const uint64_t clusters = (g.total_sectors - meta_sectors) / g.sectors_per_cluster;
  if (clusters == 0) fail(ErrorCategory::corrupt, "fat: no data clusters");
  if (clusters > 0x0ffffff5) fail(ErrorCategory::corrupt, "fat: {} clusters is more than FAT32 can address", clusters);
  g.cluster_count = static_cast<uint32_t>(clusters);

  if (fat32_layout) {
    g.bits = 32;
  } else if (g.cluster_count < kFat12Limit) {
    g.bits = 12;
  } else if (g.cluster_count < kFat16Limit) {
    g.bits = 16;
  } else {
    fail(ErrorCategory::corrupt, "fat: FAT12/16 BPB with {} clusters (FAT32 needs the FAT32 BPB)", g.cluster_count);
  }
  // Every cluster, plus the two reserved entries, needs an entry in each FAT.
  const uint64_t fat_entries = uint64_t{g.fat_sectors} * g.bytes_per_sector * 8 / g.bits;
  if (fat_entries < uint64_t{g.cluster_count} + 2)
    fail(ErrorCategory::corrupt, "fat: FAT of {} sectors holds {} entries, {} clusters need {}", g.fat_sectors,
         fat_entries, g.cluster_count, uint64_t{g.cluster_count} + 2);

  size_t ext = 36;  // the extended BPB of FAT12/16
  if (g.bits == 32) {
    const uint16_t ext_flags = load_le16(s.data() + 40);
    const uint16_t version = load_le16(s.data() + 42);
    if (version != 0) fail(ErrorCategory::unsupported, "fat: FAT32 version {}.{}", version >> 8, version & 0xff);
    g.active_fat = (ext_flags & 0x80) ? (ext_flags & 0x0f) : 0;
    if (g.active_fat >= g.fat_count)
      fail(ErrorCategory::corrupt, "fat: active FAT {} of {} FATs", g.active_fat, g.fat_count);
    g.root_cluster = load_le32(s.data() + 44);
    if (!g.valid_cluster(g.root_cluster))
      fail(ErrorCategory::corrupt, "fat: root directory cluster {} outside 2..{}", g.root_cluster, g.max_cluster());
    const uint16_t fsinfo = load_le16(s.data() + 48);
    if (fsinfo != 0 && fsinfo != 0xffff && fsinfo < g.reserved_sectors) g.fsinfo_sector = fsinfo;
    ext = 64;
  }
  const uint8_t boot_signature = s[ext + 2];
  if (boot_signature == 0x29 || boot_signature == 0x28) g.serial = load_le32(s.data() + ext + 3);
  if (boot_signature == 0x29) {
    std::string label = oem_field(s.subspan(ext + 7, 11), false);
    if (label != "NO NAME") g.boot_label = std::move(label);
  }
  return g;
}

std::optional<uint32_t> parse_fsinfo_free_count(std::span<const uint8_t> s, const Geometry& g) {
  if (s.size() < 512) return std::nullopt;
  if (load_le32(s.data()) != 0x41615252 || load_le32(s.data() + 484) != 0x61417272 ||
      load_le32(s.data() + 508) != 0xaa550000)
    return std::nullopt;
  const uint32_t free = load_le32(s.data() + 488);
  if (free > g.cluster_count) return std::nullopt;  // 0xffffffff: unknown
  return free;
}

std::string short_name(std::span<const uint8_t, kEntrySize> e) {
  uint8_t base[8];
  std::memcpy(base, e.data(), 8);
  if (base[0] == 0x05) base[0] = 0xe5;  // a real 0xE5 first byte, escaped
  const uint8_t nt = e[12];
  std::string name = oem_field(base, nt & 0x08);
  std::string extension = oem_field(e.subspan(8, 3), nt & 0x10);
  if (!extension.empty()) name += "." + extension;
  return name;
}

std::string volume_label(std::span<const uint8_t, kEntrySize> e) { return oem_field(e.first(11), false); }

uint8_t short_name_checksum(std::span<const uint8_t, kEntrySize> e) {
  uint8_t sum = 0;
  for (size_t i = 0; i < 11; ++i) sum = static_cast<uint8_t>(((sum & 1) << 7) + (sum >> 1) + e[i]);
  return sum;
}

std::string utf16_to_utf8(std::span<const uint16_t> units) {
  std::string out;
  out.reserve(units.size());
  for (size_t i = 0; i < units.size(); ++i) {
    uint32_t u = units[i];
    if (u >= 0xd800 && u <= 0xdbff && i + 1 < units.size() && units[i + 1] >= 0xdc00 && units[i + 1] <= 0xdfff) {
      append_utf8(out, 0x10000 + ((u - 0xd800) << 10) + (units[i + 1] - 0xdc00));
      ++i;
    } else if (u >= 0xd800 && u <= 0xdfff) {
      append_utf8(out, 0xfffd);
    } else {
      append_utf8(out, u);
    }
  }
  return out;
}

int64_t fat_time_ns(uint16_t date, uint16_t time, uint8_t tenths) {
  const int64_t year = 1980 + (date >> 9);
  const unsigned month = std::clamp<unsigned>((date >> 5) & 0x0f, 1, 12);
  const unsigned day = std::max<unsigned>(date & 0x1f, 1);
  const int64_t seconds = days_from_civil(year, month, day) * 86400 + int64_t{time >> 11} * 3600 +
                          int64_t{(time >> 5) & 0x3f} * 60 + int64_t{time & 0x1f} * 2;
  // CrtTimeTenth counts 10 ms units (0..199) on top of the 2-second field.
  const int64_t extra_ms = int64_t{std::min<uint8_t>(tenths, 199)} * 10;
  return seconds * 1'000'000'000 + extra_ms * 1'000'000;
}

}  // namespace arche::volume::fat
