// The VMDK on-disk format (VMware Virtual Disk Format 1.1): the text descriptor,
// the hosted sparse extent header, grain markers of streamOptimized extents, and
// the compression of grains. Pure parsing and encoding, no I/O, so the parsers can
// be fuzzed on plain buffers.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace arche::image::vmdk {

inline constexpr uint64_t kSector = 512;
inline constexpr uint32_t kSparseMagic = 0x564d444b;  // "KDMV" as a little-endian u32
inline constexpr uint32_t kCowdMagic = 0x44574f43;    // "COWD": ESX 2/3 VMFSSPARSE
inline constexpr uint64_t kSeSparseMagic = 0xcafebabe;

// Header flags.
inline constexpr uint32_t kFlagNewlineTest = 1u << 0;
inline constexpr uint32_t kFlagRedundantGd = 1u << 1;
inline constexpr uint32_t kFlagZeroGrain = 1u << 2;  // GTE 1 means "zeroed grain"
inline constexpr uint32_t kFlagCompressed = 1u << 16;
inline constexpr uint32_t kFlagMarkers = 1u << 17;

inline constexpr uint64_t kGdAtEnd = ~0ull;  // streamOptimized: the footer holds the GD offset
inline constexpr uint16_t kCompressNone = 0;
inline constexpr uint16_t kCompressDeflate = 1;
inline constexpr uint32_t kGteZero = 1;

// Limits for what arche accepts. Grains beyond 1 MiB and grain tables beyond 512
// entries do not occur in images VMware, VirtualBox or QEMU write; refusing them
// keeps memory bounded on damaged input.
inline constexpr uint64_t kMaxGrainSectors = 2048;
inline constexpr uint32_t kMaxGtesPerGt = 512;
inline constexpr uint64_t kMaxDescriptorBytes = 1 << 20;  // as QEMU
inline constexpr uint64_t kMaxSparseSectors = 1ull << 32;  // grain offsets are u32 sectors
inline constexpr size_t kMaxExtents = 16384;

// Defaults of newly created sparse extents (VMware's and QEMU's).
inline constexpr uint64_t kDefaultGrainSectors = 128;  // 64 KiB
inline constexpr uint32_t kDefaultGtesPerGt = 512;
inline constexpr uint64_t kEmbeddedDescriptorSectors = 20;

// Marker types of streamOptimized extents.
enum class MarkerType : uint32_t { end_of_stream = 0, grain_table = 1, grain_directory = 2, footer = 3 };

// The 512-byte header of a hosted sparse extent ("SparseExtentHeader").
struct SparseHeader {
  uint32_t version = 1;
  uint32_t flags = kFlagNewlineTest | kFlagRedundantGd;
  uint64_t capacity = 0;     // sectors
  uint64_t grain_size = kDefaultGrainSectors;  // sectors
  uint64_t descriptor_offset = 0;  // sectors, 0: none embedded
  uint64_t descriptor_size = 0;    // sectors
  uint32_t gtes_per_gt = kDefaultGtesPerGt;
  uint64_t rgd_offset = 0;  // sectors
  uint64_t gd_offset = 0;   // sectors, or kGdAtEnd
  uint64_t overhead = 0;    // sectors before the first grain
  uint8_t unclean_shutdown = 0;
  bool newline_bytes_ok = true;  // the four check bytes survived text-mode transfer
  uint16_t compress_algorithm = kCompressNone;

  uint64_t grain_bytes() const { return grain_size * kSector; }
  bool compressed() const { return compress_algorithm == kCompressDeflate; }
  bool has_markers() const { return flags & kFlagMarkers; }
  bool has_zero_grain() const { return flags & kFlagZeroGrain; }
  bool has_redundant_gd() const { return flags & kFlagRedundantGd; }
  // Bytes of the guest covered by one grain table.
  uint64_t gt_coverage() const { return uint64_t{gtes_per_gt} * grain_bytes(); }
  uint64_t gd_entries() const;
  uint64_t gt_bytes() const { return uint64_t{gtes_per_gt} * 4; }
  uint64_t gt_sectors() const { return (gt_bytes() + kSector - 1) / kSector; }
  uint64_t gd_sectors() const { return (gd_entries() * 4 + kSector - 1) / kSector; }
};

// Parses and validates a header (the first 512 bytes of a sparse extent, or a
// streamOptimized footer). `what` names the extent in errors.
SparseHeader parse_sparse_header(std::span<const uint8_t> sector, const std::string& what);
std::vector<uint8_t> encode_sparse_header(const SparseHeader& h);  // 512 bytes

// A 512-byte metadata marker of a streamOptimized extent: numSectors, size (0), type.
struct Marker {
  uint64_t value = 0;  // sectors of metadata that follow, or the LBA of a grain
  uint32_t size = 0;   // compressed bytes of a grain; 0 for metadata markers
  uint32_t type = 0;   // MarkerType when size == 0
};
Marker parse_marker(std::span<const uint8_t> bytes);  // at least 16 bytes
std::vector<uint8_t> encode_metadata_marker(MarkerType type, uint64_t sectors);  // 512 bytes

// ---- descriptor ----------------------------------------------------------------

enum class Access { rw, rdonly, noaccess };
enum class ExtentType { sparse, flat, zero, vmfs, vmfs_sparse, vmfs_rdm, vmfs_raw, se_sparse };

const char* to_string(Access a);
const char* to_string(ExtentType t);

struct ExtentLine {
  Access access = Access::rw;
  uint64_t sectors = 0;
  ExtentType type = ExtentType::sparse;
  std::string filename;  // empty for ZERO
  uint64_t offset = 0;   // sectors into the file (FLAT)
};

struct Descriptor {
  uint32_t version = 1;
  uint32_t cid = 0xfffffffe;
  uint32_t parent_cid = 0xffffffff;  // ffffffff: no parent
  std::string create_type;
  std::optional<std::string> parent_hint;  // parentFileNameHint
  std::vector<ExtentLine> extents;
  // The disk database (ddb.*) in file order, values unquoted.
  std::vector<std::pair<std::string, std::string>> ddb;
  // Other header keys (encoding, isNativeSnapshot, ...), kept when re-encoding.
  std::vector<std::pair<std::string, std::string>> other;

  std::optional<std::string> ddb_value(std::string_view key) const;
  uint64_t total_sectors() const;
};

// Parses descriptor text (which may be NUL-padded, as embedded descriptors are).
Descriptor parse_descriptor(std::string_view text, const std::string& what);
std::string encode_descriptor(const Descriptor& d);
// A fresh content id (CID) for a descriptor: random, never the reserved fffffffe
// and ffffffff (ffffffff means "no parent").
uint32_t random_content_id();

// The same text with the CID line set to `cid`; everything else is kept as it is.
std::string replace_cid(std::string_view text, uint32_t cid);

// True when `head` (the first bytes of a file) looks like a text descriptor.
bool looks_like_descriptor(std::span<const uint8_t> head);

// ---- grains ----------------------------------------------------------------------

// zlib (RFC 1950) compression of one grain, as VMware and QEMU write it.
std::vector<uint8_t> compress_grain(std::span<const uint8_t> grain, int level);
// Decompresses into out; returns the bytes produced (a stream may end early: QEMU
// stores the last, partial grain of a disk shorter). Throws a corrupt error when
// the stream is damaged or would produce more than out.size() bytes.
size_t decompress_grain(std::span<const uint8_t> in, std::span<uint8_t> out);

}  // namespace arche::image::vmdk
