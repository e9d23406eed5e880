#include "volume/xfs_format.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "core/crc32c.h"
#include "core/endian.h"
#include "core/error.h"

namespace arche::volume::xfs {
namespace {

// sb_versionnum bits (v4) and the feature words (features2; v5 incompat).
constexpr uint16_t kVersionNumberMask = 0x000f;
constexpr uint16_t kVersionDirV2 = 0x2000;
constexpr uint16_t kVersionAsciiCi = 0x4000;
constexpr uint16_t kVersionMoreBits = 0x8000;
constexpr uint32_t kFeatures2Ftype = 0x0200;
constexpr uint32_t kIncompatFtype = 0x01;
constexpr uint32_t kIncompatSparseInodes = 0x02;
constexpr uint32_t kIncompatMetaUuid = 0x04;
constexpr uint32_t kIncompatBigtime = 0x08;
constexpr uint32_t kIncompatNeedsRepair = 0x10;
// Features that change nothing a reader of the data device looks at: 64-bit
// extent counters (handled per inode), file-range exchange (a log item), parent
// pointers (extended attributes).
constexpr uint32_t kIncompatNrext64 = 0x20;
constexpr uint32_t kIncompatExchange = 0x40;
constexpr uint32_t kIncompatParent = 0x80;
constexpr uint32_t kIncompatKnown = kIncompatFtype | kIncompatSparseInodes | kIncompatMetaUuid | kIncompatBigtime |
                                    kIncompatNeedsRepair | kIncompatNrext64 | kIncompatExchange | kIncompatParent;

constexpr uint32_t kAgfMagic = 0x58414746;  // "XAGF"
constexpr uint32_t kAgiMagic = 0x58414749;  // "XAGI"
constexpr uint16_t kInodeMagic = 0x494e;    // "IN"

// Inode flags.
constexpr uint16_t kFlagRealtime = 0x0001;
constexpr uint64_t kFlag2Bigtime = 1u << 3;
constexpr uint64_t kFlag2Nrext64 = 1u << 4;

bool power_of_two(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }
uint32_t log2_exact(uint64_t v) { return static_cast<uint32_t>(__builtin_ctzll(v)); }

// The 64-bit inode number ceil-log of agblocks: sb_agblklog.
uint32_t log2_ceil(uint64_t v) { return v <= 1 ? 0 : 64 - static_cast<uint32_t>(__builtin_clzll(v - 1)); }

std::string fname(std::span<const uint8_t> field) {
  size_t n = std::find(field.begin(), field.end(), 0) - field.begin();
  return std::string(reinterpret_cast<const char*>(field.data()), n);
}

}  // namespace

std::optional<uint64_t> Superblock::fsbno_offset(uint64_t fsbno, uint64_t count) const {
  const uint64_t agno = fsbno >> ag_block_log;
  const uint64_t agbno = fsbno & ((uint64_t{1} << ag_block_log) - 1);
  if (agno >= ag_count || count > ag_length(static_cast<uint32_t>(agno)) ||
      agbno > ag_length(static_cast<uint32_t>(agno)) - count)
    return std::nullopt;
  return ag_block_offset(static_cast<uint32_t>(agno), static_cast<uint32_t>(agbno));
}

bool Superblock::valid_inode(uint64_t ino) const {
  const uint64_t agno = ino >> (ag_block_log + inodes_per_block_log);
  const uint64_t agbno = (ino >> inodes_per_block_log) & ((uint64_t{1} << ag_block_log) - 1);
  return agno < ag_count && agbno < ag_length(static_cast<uint32_t>(agno));
}

uint64_t Superblock::inode_offset(uint64_t ino) const {
  const uint32_t agno = inode_ag(ino);
  const uint64_t agbno = (ino >> inodes_per_block_log) & ((uint64_t{1} << ag_block_log) - 1);
  const uint64_t index = ino & ((uint64_t{1} << inodes_per_block_log) - 1);
  return ag_block_offset(agno, static_cast<uint32_t>(agbno)) + (index << inode_log);
}

Superblock parse_superblock(std::span<const uint8_t> s) {
  if (s.size() < 512 || load_be32(s.data()) != kSuperMagic) fail(ErrorCategory::format, "xfs: no XFS superblock");
  Superblock sb;
  const uint16_t versionnum = load_be16(s.data() + 100);
  sb.version = versionnum & kVersionNumberMask;
  if (sb.version != 4 && sb.version != 5)
    fail(ErrorCategory::unsupported, "xfs: superblock version {} (only v4 and v5 are read)", sb.version);
  sb.block_size = load_be32(s.data() + 4);
  sb.data_blocks = load_be64(s.data() + 8);
  sb.realtime_blocks = load_be64(s.data() + 16);
  std::memcpy(sb.uuid, s.data() + 32, 16);
  std::memcpy(sb.meta_uuid, s.data() + 32, 16);
  sb.log_start = load_be64(s.data() + 48);
  sb.root_ino = load_be64(s.data() + 56);
  sb.ag_blocks = load_be32(s.data() + 84);
  sb.ag_count = load_be32(s.data() + 88);
  sb.log_blocks = load_be32(s.data() + 96);
  sb.sector_size = load_be16(s.data() + 102);
  sb.inode_size = load_be16(s.data() + 104);
  const uint32_t inodes_per_block = load_be16(s.data() + 106);
  sb.label = fname(s.subspan(108, 12));
  sb.block_log = s[120];
  const uint32_t sector_log = s[121];
  sb.inode_log = s[122];
  sb.inodes_per_block_log = s[123];
  sb.ag_block_log = s[124];
  const uint8_t in_progress = s[126];
  sb.dir_block_log = s[192];
  const uint32_t features2 = (versionnum & kVersionMoreBits) ? load_be32(s.data() + 200) : 0;

  if (!power_of_two(sb.block_size) || sb.block_size < 512 || sb.block_size > 65536 ||
      sb.block_log != log2_exact(sb.block_size))
    fail(ErrorCategory::corrupt, "xfs: superblock block size {} (log {})", sb.block_size, sb.block_log);
  if (!power_of_two(sb.sector_size) || sb.sector_size < 512 || sb.sector_size > sb.block_size ||
      sector_log != log2_exact(sb.sector_size))
    fail(ErrorCategory::corrupt, "xfs: superblock sector size {}", sb.sector_size);
  if (s.size() < sb.sector_size)
    fail(ErrorCategory::corrupt, "xfs: sector size {} larger than the volume", sb.sector_size);
  if (!power_of_two(sb.inode_size) || sb.inode_size < 256 || sb.inode_size > 2048 || sb.inode_size > sb.block_size ||
      sb.inode_log != log2_exact(sb.inode_size) || inodes_per_block != sb.block_size / sb.inode_size ||
      sb.inodes_per_block_log != log2_exact(inodes_per_block))
    fail(ErrorCategory::corrupt, "xfs: superblock inode size {} ({} per block)", sb.inode_size, inodes_per_block);
  if (sb.ag_blocks == 0 || sb.ag_count == 0 || sb.ag_block_log != log2_ceil(sb.ag_blocks) ||
      sb.ag_block_log + sb.inodes_per_block_log > 32)
    fail(ErrorCategory::corrupt, "xfs: superblock AG geometry ({} AGs of {} blocks, log {})", sb.ag_count, sb.ag_blocks,
         sb.ag_block_log);
  if (sb.data_blocks == 0 || sb.data_blocks > (uint64_t{1} << (63 - sb.block_log)) ||
      sb.data_blocks > uint64_t{sb.ag_count} * sb.ag_blocks ||
      sb.data_blocks <= uint64_t{sb.ag_count - 1} * sb.ag_blocks)
    fail(ErrorCategory::corrupt, "xfs: superblock says {} blocks in {} AGs of {}", sb.data_blocks, sb.ag_count,
         sb.ag_blocks);
  if (sb.dir_block_log > 7 || sb.dir_block_bytes() > 65536)
    fail(ErrorCategory::corrupt, "xfs: directory block size {} << {}", sb.block_size, sb.dir_block_log);
  if (in_progress) fail(ErrorCategory::corrupt, "xfs: mkfs.xfs did not finish (sb_inprogress set)");

  sb.ascii_ci = versionnum & kVersionAsciiCi;
  if (sb.version == 4) {
    if (!(versionnum & kVersionDirV2))
      fail(ErrorCategory::unsupported, "xfs: version 1 directories (XFS of IRIX era) are not read");
    sb.ftype = features2 & kFeatures2Ftype;
  } else {
    if (!crc_ok(s.first(sb.sector_size), 224)) fail(ErrorCategory::corrupt, "xfs: superblock CRC mismatch");
    const uint32_t incompat = load_be32(s.data() + 216);
    if (incompat & ~kIncompatKnown)
      fail(ErrorCategory::unsupported, "xfs: incompatible features 0x{:x} this reader does not know",
           incompat & ~kIncompatKnown);
    sb.crc = true;
    sb.ftype = incompat & kIncompatFtype;
    sb.sparse_inodes = incompat & kIncompatSparseInodes;
    sb.bigtime = incompat & kIncompatBigtime;
    sb.needs_repair = incompat & kIncompatNeedsRepair;
    if (incompat & kIncompatMetaUuid) std::memcpy(sb.meta_uuid, s.data() + 248, 16);
    if (sb.inode_size < 512) fail(ErrorCategory::corrupt, "xfs: v5 superblock with {}-byte inodes", sb.inode_size);
  }
  if (!sb.valid_inode(sb.root_ino)) fail(ErrorCategory::corrupt, "xfs: root inode {} outside the volume", sb.root_ino);
  return sb;
}

bool crc_ok(std::span<const uint8_t> b, size_t off) {
  if (b.size() < off + 4) return false;
  static constexpr uint8_t kZero[4] = {};
  uint32_t crc = crc32c(0, b.data(), off);
  crc = crc32c(crc, kZero, 4);
  crc = crc32c(crc, b.data() + off + 4, b.size() - off - 4);
  return crc == load_le32(b.data() + off);
}

Agf parse_agf(std::span<const uint8_t> s, const Superblock& sb, uint32_t agno) {
  if (load_be32(s.data()) != kAgfMagic || load_be32(s.data() + 4) != 1 || load_be32(s.data() + 8) != agno)
    fail(ErrorCategory::corrupt, "xfs: AG {}: bad AGF header", agno);
  if (sb.crc && (!crc_ok(s, 216) || std::memcmp(s.data() + 64, sb.meta_uuid, 16) != 0))
    fail(ErrorCategory::corrupt, "xfs: AG {}: AGF CRC or UUID mismatch", agno);
  Agf agf;
  agf.length = load_be32(s.data() + 12);
  agf.bno_root = load_be32(s.data() + 16);
  agf.bno_level = load_be32(s.data() + 28);
  agf.free_blocks = load_be32(s.data() + 52);
  if (agf.length != sb.ag_length(agno))
    fail(ErrorCategory::corrupt, "xfs: AG {}: AGF length {}, the superblock says {}", agno, agf.length,
         sb.ag_length(agno));
  if (agf.bno_root == 0 || agf.bno_root >= agf.length || agf.bno_level == 0 || agf.bno_level > kMaxBtreeLevels)
    fail(ErrorCategory::corrupt, "xfs: AG {}: free-space btree root {} level {}", agno, agf.bno_root, agf.bno_level);
  if (agf.free_blocks > agf.length)
    fail(ErrorCategory::corrupt, "xfs: AG {}: {} free blocks in {}", agno, agf.free_blocks, agf.length);
  return agf;
}

Agi parse_agi(std::span<const uint8_t> s, const Superblock& sb, uint32_t agno) {
  if (load_be32(s.data()) != kAgiMagic || load_be32(s.data() + 4) != 1 || load_be32(s.data() + 8) != agno)
    fail(ErrorCategory::corrupt, "xfs: AG {}: bad AGI header", agno);
  if (sb.crc && (!crc_ok(s, 312) || std::memcmp(s.data() + 296, sb.meta_uuid, 16) != 0))
    fail(ErrorCategory::corrupt, "xfs: AG {}: AGI CRC or UUID mismatch", agno);
  Agi agi;
  agi.length = load_be32(s.data() + 12);
  agi.root = load_be32(s.data() + 20);
  agi.level = load_be32(s.data() + 24);
  if (agi.length != sb.ag_length(agno))
    fail(ErrorCategory::corrupt, "xfs: AG {}: AGI length {}, the superblock says {}", agno, agi.length,
         sb.ag_length(agno));
  if (agi.root == 0 || agi.root >= agi.length || agi.level == 0 || agi.level > kMaxBtreeLevels)
    fail(ErrorCategory::corrupt, "xfs: AG {}: inode btree root {} level {}", agno, agi.root, agi.level);
  return agi;
}

int64_t timestamp_ns(const uint8_t* p, bool bigtime) {
  constexpr int64_t kNs = 1'000'000'000;
  if (bigtime) {
    // Nanoseconds since 1901-12-13 20:45:52 UTC (-2^31 s), the oldest 32-bit time.
    const uint64_t v = load_be64(p);
    const uint64_t offset = (uint64_t{1} << 31) * kNs;
    if (v < offset) return -static_cast<int64_t>(offset - v);
    return static_cast<int64_t>(std::min<uint64_t>(v - offset, std::numeric_limits<int64_t>::max()));
  }
  const int32_t seconds = static_cast<int32_t>(load_be32(p));
  const uint32_t nanos = std::min<uint32_t>(load_be32(p + 4), kNs - 1);
  return int64_t{seconds} * kNs + nanos;
}

Extent unpack_extent(const uint8_t* r) {
  const uint64_t l0 = load_be64(r), l1 = load_be64(r + 8);
  Extent e;
  e.unwritten = l0 >> 63;
  e.offset = (l0 >> 9) & ((uint64_t{1} << 54) - 1);
  e.block = ((l0 & 0x1ff) << 43) | (l1 >> 21);
  e.count = static_cast<uint32_t>(l1 & 0x1fffff);
  return e;
}

Inode parse_inode(std::span<const uint8_t> raw, uint64_t ino, const Superblock& sb) {
  const uint8_t* p = raw.data();
  if (load_be16(p) != kInodeMagic) fail(ErrorCategory::corrupt, "xfs: inode {}: bad magic", ino);
  Inode in;
  in.ino = ino;
  in.mode = load_be16(p + 2);
  in.version = p[4];
  const uint8_t format = p[5];
  if (sb.crc ? in.version != 3 : (in.version != 1 && in.version != 2))
    fail(ErrorCategory::corrupt, "xfs: inode {}: version {} on a v{} file system", ino, in.version, sb.version);
  if (in.version == 3) {
    if (!crc_ok(raw, 100)) fail(ErrorCategory::corrupt, "xfs: inode {}: CRC mismatch", ino);
    if (load_be64(p + 152) != ino || std::memcmp(p + 160, sb.meta_uuid, 16) != 0)
      fail(ErrorCategory::corrupt, "xfs: inode {}: says it is inode {} of another file system", ino,
           load_be64(p + 152));
  }
  if (in.mode == 0) fail(ErrorCategory::corrupt, "xfs: inode {} is free (mode 0) but a directory names it", ino);
  in.uid = load_be32(p + 8);
  in.gid = load_be32(p + 12);
  in.nlink = in.version == 1 ? load_be16(p + 6) : load_be32(p + 16);
  const uint64_t flags2 = in.version == 3 ? load_be64(p + 120) : 0;
  const bool bigtime = flags2 & kFlag2Bigtime;
  in.atime_ns = timestamp_ns(p + 32, bigtime);
  in.mtime_ns = timestamp_ns(p + 40, bigtime);
  in.ctime_ns = timestamp_ns(p + 48, bigtime);
  if (in.version == 3) in.crtime_ns = timestamp_ns(p + 144, bigtime);
  in.size = load_be64(p + 56);
  in.extent_count = (flags2 & kFlag2Nrext64) ? load_be64(p + 24) : load_be32(p + 76);
  in.realtime = load_be16(p + 90) & kFlagRealtime;
  if (in.size > uint64_t{std::numeric_limits<int64_t>::max()})
    fail(ErrorCategory::corrupt, "xfs: inode {}: size {}", ino, in.size);

  const size_t core = in.version == 3 ? 176 : 100;
  const size_t literal = sb.inode_size - core;
  const size_t fork_offset = size_t{p[82]} * 8;
  if (fork_offset >= literal) fail(ErrorCategory::corrupt, "xfs: inode {}: attribute fork offset {}", ino, fork_offset);
  const size_t data_fork = fork_offset ? fork_offset : literal;
  in.data_fork.assign(p + core, p + core + data_fork);

  const uint16_t type = in.mode & S_IFMT;
  bool format_ok = false;
  switch (type) {
    case S_IFREG: format_ok = format == 2 || format == 3; break;
    case S_IFDIR:
    case S_IFLNK: format_ok = format >= 1 && format <= 3; break;
    case S_IFCHR:
    case S_IFBLK:
    case S_IFIFO:
    case S_IFSOCK: format_ok = format == 0; break;
    default: fail(ErrorCategory::corrupt, "xfs: inode {}: file type 0{:o}", ino, type);
  }
  if (!format_ok)
    fail(ErrorCategory::corrupt, "xfs: inode {}: data fork format {} for file type 0{:o}", ino, format, type);
  in.format = static_cast<ForkFormat>(format);
  if (in.format == ForkFormat::extents && in.extent_count > data_fork / 16)
    fail(ErrorCategory::corrupt, "xfs: inode {}: {} extents do not fit the {}-byte fork", ino, in.extent_count,
         data_fork);
  if (in.format == ForkFormat::local && in.size > data_fork)
    fail(ErrorCategory::corrupt, "xfs: inode {}: {} bytes of inline data in a {}-byte fork", ino, in.size, data_fork);
  return in;
}

}  // namespace arche::volume::xfs
