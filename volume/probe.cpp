#include "volume/probe.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/bytes.h"
#include "core/error.h"
#include "core/units.h"
#include "image/foreign/ids.h"
#include "volume/lvm.h"
#include "volume/partition_table.h"
#include "volume/readers.h"

namespace arche::volume {

namespace {

constexpr size_t kHeadBytes = 128 * KiB;  // deep enough for btrfs (64 KiB + 0x40) and ReiserFS

class Head {
 public:
  explicit Head(image::BlockDevice& dev) : bytes_(static_cast<size_t>(std::min<uint64_t>(dev.size(), kHeadBytes))) {
    dev.read(0, bytes_);
  }
  bool has(size_t offset, size_t n) const { return offset <= bytes_.size() && n <= bytes_.size() - offset; }
  bool magic(size_t offset, std::string_view m) const {
    return has(offset, m.size()) && std::memcmp(bytes_.data() + offset, m.data(), m.size()) == 0;
  }
  uint8_t u8(size_t o) const { return has(o, 1) ? bytes_[o] : 0; }
  uint16_t le16(size_t o) const { return has(o, 2) ? load_le16(bytes_.data() + o) : 0; }
  uint32_t le32(size_t o) const { return has(o, 4) ? load_le32(bytes_.data() + o) : 0; }
  uint64_t le64(size_t o) const { return has(o, 8) ? load_le64(bytes_.data() + o) : 0; }
  uint32_t be32(size_t o) const { return has(o, 4) ? load_be32(bytes_.data() + o) : 0; }
  // Text of a fixed-size field: up to the first NUL, trailing spaces dropped.
  std::string text(size_t o, size_t n) const {
    if (!has(o, n)) return {};
    std::string s(reinterpret_cast<const char*>(bytes_.data() + o), n);
    s.resize(std::min(s.find('\0'), s.size()));
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
  }
  std::string uuid(size_t o) const {
    if (!has(o, 16)) return {};
    image::foreign::Id128 id;
    std::memcpy(id.data(), bytes_.data() + o, 16);
    return image::foreign::is_null(id) ? std::string() : image::foreign::uuid_string(id);
  }

 private:
  std::vector<uint8_t> bytes_;
};

std::string fat_serial(uint32_t v) { return fmt::format("{:04X}-{:04X}", v >> 16, v & 0xffff); }

Content fs(std::string type, std::string label = {}, std::string uuid = {}) {
  Content c;
  c.kind = ContentKind::filesystem;
  c.type = std::move(type);
  c.label = std::move(label);
  c.uuid = std::move(uuid);
  c.readable = c.type.starts_with("ext") || c.type == "ntfs" || c.type == "xfs" || c.type.starts_with("fat");
  return c;
}

Content other(ContentKind kind, std::string type, std::string uuid = {}, std::string label = {}) {
  Content c;
  c.kind = kind;
  c.type = std::move(type);
  c.uuid = std::move(uuid);
  c.label = std::move(label);
  return c;
}

// ---- boot-sector file systems (checked before partition tables) ----

std::optional<Content> ntfs(const Head& h) {
  if (!h.magic(3, "NTFS    ") || h.le16(510) != 0xAA55) return std::nullopt;
  const uint16_t bps = h.le16(11);
  if (bps < 256 || bps > 4096 || !is_power_of_two(bps)) return std::nullopt;
  return fs("ntfs", "", fmt::format("{:016X}", h.le64(0x48)));
}

std::optional<Content> fat(const Head& h) {
  const uint8_t jump = h.u8(0);
  if (!(jump == 0xE9 || (jump == 0xEB && h.u8(2) == 0x90)) || h.le16(510) != 0xAA55) return std::nullopt;
  const uint32_t bps = h.le16(11), spc = h.u8(13), reserved = h.le16(14), fats = h.u8(16), root_entries = h.le16(17);
  const uint8_t media = h.u8(21);
  const uint32_t total = h.le16(19) ? h.le16(19) : h.le32(32);
  const uint32_t fat_size = h.le16(22) ? h.le16(22) : h.le32(36);
  if ((bps != 512 && bps != 1024 && bps != 2048 && bps != 4096) || spc == 0 || !is_power_of_two(spc) ||
      reserved == 0 || fats == 0 || fats > 4 || (media != 0xF0 && media < 0xF8) || total == 0 || fat_size == 0)
    return std::nullopt;
  // A boot sector with a BPB but no "FAT" type string may be boot code (GRUB keeps a
  // BPB-shaped area): insist on it, as every formatter writes it.
  const bool fat32_bpb = h.le16(22) == 0;
  if (!(fat32_bpb ? h.magic(82, "FAT") : h.magic(54, "FAT"))) return std::nullopt;
  const uint64_t root_sectors = (uint64_t{root_entries} * 32 + bps - 1) / bps;
  const uint64_t meta = reserved + uint64_t{fats} * fat_size + root_sectors;
  if (meta >= total) return std::nullopt;
  const uint64_t clusters = (total - meta) / spc;
  const char* type = clusters < 4085 ? "fat12" : clusters < 65525 ? "fat16" : "fat32";
  std::string label = h.text(fat32_bpb ? 71 : 43, 11);
  if (label == "NO NAME") label.clear();
  return fs(type, label, fat_serial(h.le32(fat32_bpb ? 67 : 39)));
}

std::optional<Content> boot_sector_fs(const Head& h) {
  if (auto c = ntfs(h)) return c;
  if (h.magic(3, "EXFAT   ")) return fs("exfat", "", fat_serial(h.le32(100)));
  if (h.magic(3, "-FVE-FS-")) return other(ContentKind::other, "BitLocker");
  if (h.magic(3, "ReFS")) return fs("refs");
  return fat(h);
}

// ---- superblock magics ----

Content ext(const Head& h) {
  constexpr size_t sb = 1024;
  const uint32_t compat = h.le32(sb + 92), incompat = h.le32(sb + 96), ro_compat = h.le32(sb + 100);
  const std::string label = h.text(sb + 120, 16), uuid = h.uuid(sb + 104);
  if (incompat & 0x8) return other(ContentKind::other, "jbd", uuid, label);  // an external journal device
  return fs(ext_type_name(compat, incompat, ro_compat), label, uuid);
}

std::string dashed_pv_uuid(const std::string& u) {
  if (u.size() != 32) return u;
  return fmt::format("{}-{}-{}-{}-{}-{}-{}", u.substr(0, 6), u.substr(6, 4), u.substr(10, 4), u.substr(14, 4),
                     u.substr(18, 4), u.substr(22, 4), u.substr(26, 6));
}

std::optional<Content> md_raid(image::BlockDevice& dev, const Head& h) {
  constexpr uint32_t kMagic = 0xa92b4efc;
  if (h.le32(0) == kMagic || h.le32(4096) == kMagic) return other(ContentKind::other, "linux_raid_member");
  const uint64_t size = dev.size();
  for (uint64_t at : {size >= 8192 ? ((size >> 9) - 16) & ~uint64_t{7} : UINT64_MAX,     // 1.0 (sectors)
                      size >= 131072 ? ((size & ~uint64_t{65535}) - 65536) >> 9 : UINT64_MAX}) {  // 0.90
    if (at == UINT64_MAX) continue;
    uint8_t b[4];
    dev.read(at << 9, b);
    if (load_le32(b) == kMagic) return other(ContentKind::other, "linux_raid_member");
  }
  return std::nullopt;
}

std::optional<Content> swap(const Head& h) {
  for (size_t page : {4096u, 8192u, 16384u, 65536u}) {
    if (h.magic(page - 10, "SWAPSPACE2")) return other(ContentKind::other, "swap", h.uuid(1024 + 12), h.text(1024 + 28, 16));
    if (h.magic(page - 10, "SWAP-SPACE")) return other(ContentKind::other, "swap");
  }
  return std::nullopt;
}

// An ext file system whose primary superblock is gone still has a backup at the
// start of block group 1 (the reader falls back to it, as e2fsck does).
std::optional<Content> ext_backup(image::BlockDevice& dev) {
  for (uint64_t bs : {1024u, 2048u, 4096u, 65536u}) {
    const uint64_t at = (bs == 1024 ? 8193 : 8 * bs) * bs;
    uint8_t sb[1024];
    if (at + sizeof sb > dev.size()) continue;
    dev.read(at, sb);
    // The magic, a block size that matches where it was found, and group number 1
    // (0 in file systems older than the field).
    if (load_le16(sb + 56) != 0xEF53 || (uint64_t{1024} << load_le32(sb + 24)) != bs || load_le16(sb + 90) > 1)
      continue;
    Content c = fs(ext_type_name(load_le32(sb + 92), load_le32(sb + 96), load_le32(sb + 100)));
    image::foreign::Id128 id;
    std::memcpy(id.data(), sb + 104, 16);
    c.uuid = image::foreign::uuid_string(id);
    return c;
  }
  return std::nullopt;
}

}  // namespace

std::string ext_type_name(uint32_t compat, uint32_t incompat, uint32_t ro_compat) {
  // ext3 knew: incompat filetype, recover, journal_dev; ro_compat sparse_super, large_file, btree_dir.
  const bool ext4 = (incompat & ~uint32_t{0x0002 | 0x0004 | 0x0008}) || (ro_compat & ~uint32_t{0x1 | 0x2 | 0x4});
  return ext4 ? "ext4" : (compat & 0x4) ? "ext3" : "ext2";
}

Content identify(image::BlockDevice& dev) {
  if (dev.size() < 512) return {};
  Head h(dev);
  if (auto c = boot_sector_fs(h)) return *c;
  if (h.le16(510) == 0xAA55) {
    // A GPT needs the protective entry; read_partition_table does the rest.
    bool protective = false;
    for (int i = 0; i < 4; ++i) protective |= h.u8(446 + 16 * i + 4) == 0xEE;
    if (protective) return other(ContentKind::partition_table, "gpt");
    if (read_mbr(dev)) return other(ContentKind::partition_table, "mbr");
  }
  for (size_t s = 0; s < 4; ++s)
    if (h.magic(s * 512, "LABELONE") && h.magic(s * 512 + 24, "LVM2 001"))
      return other(ContentKind::lvm_pv, "LVM2_member", dashed_pv_uuid(h.text(s * 512 + h.le32(s * 512 + 20), 32)));
  if (h.magic(0, "LUKS\xba\xbe")) return other(ContentKind::other, "crypto_LUKS", h.text(168, 40), h.text(24, 48));
  if (auto c = md_raid(dev, h)) return *c;
  if (h.le16(1024 + 56) == 0xEF53) return ext(h);
  if (h.magic(0, "XFSB")) {
    const uint32_t bs = h.be32(4);
    if (bs >= 512 && bs <= 65536 && is_power_of_two(bs)) return fs("xfs", h.text(108, 12), h.uuid(32));
  }
  if (h.magic(0x10040, "_BHRfS_M")) return fs("btrfs", h.text(0x10000 + 0x12b, 256), h.uuid(0x10000 + 0x20));
  if (auto c = swap(h)) return *c;
  if (h.magic(0x8001, "CD001")) return fs("iso9660", h.text(0x8028, 32));
  if (h.magic(0, "hsqs")) return fs("squashfs");
  if (h.magic(65536 + 52, "ReIsEr")) return fs("reiserfs");
  if (h.magic(32768, "JFS1")) return fs("jfs");
  if (h.magic(1024, "H+") || h.magic(1024, "HX")) return fs("hfsplus");
  if (h.le32(1024) == 0xF2F52010) return fs("f2fs");
  if (auto c = ext_backup(dev)) return *c;
  return {};
}

std::unique_ptr<Filesystem> open_filesystem(std::shared_ptr<image::BlockDevice> device, const Content& content) {
  const std::string& t = content.type;
  if (t == "ext2" || t == "ext3" || t == "ext4") return open_ext(std::move(device));
  if (t == "ntfs") return open_ntfs(std::move(device));
  if (t == "fat12" || t == "fat16" || t == "fat32") return open_fat(std::move(device));
  if (t == "xfs") return open_xfs(std::move(device));
  if (content.kind == ContentKind::filesystem) fail(ErrorCategory::unsupported, "{} is not read by arche", t);
  if (t.empty()) fail(ErrorCategory::unsupported, "no file system arche recognises");
  fail(ErrorCategory::unsupported, "{} holds no file system", t);
}

}  // namespace arche::volume
