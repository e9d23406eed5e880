// The qcow2 on-disk format (docs/interop/qcow2.txt in QEMU): header, header
// extensions, table entry encodings and the snapshot table. Pure parsing and
// encoding, no I/O, so the parsers can be fuzzed on plain buffers.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/compress.h"

namespace arche::image::qcow2 {

inline constexpr uint32_t kMagic = 0x514649fb;  // "QFI\xfb"
inline constexpr uint32_t kMinClusterBits = 9;
inline constexpr uint32_t kMaxClusterBits = 21;  // 2 MiB, as QEMU
inline constexpr uint32_t kV2HeaderLength = 72;
inline constexpr uint32_t kV3HeaderLength = 112;  // through compression_type, padded
inline constexpr uint64_t kMaxL1Bytes = 32 * 1024 * 1024;         // QEMU's limit
inline constexpr uint64_t kMaxRefcountTableBytes = 8 * 1024 * 1024;  // QEMU's limit
inline constexpr uint32_t kMaxSnapshots = 65536;
inline constexpr uint32_t kMaxBackingNameLength = 1023;

// Incompatible feature bits.
inline constexpr uint64_t kIncompatDirty = 1ull << 0;
inline constexpr uint64_t kIncompatCorrupt = 1ull << 1;
inline constexpr uint64_t kIncompatDataFile = 1ull << 2;
inline constexpr uint64_t kIncompatCompression = 1ull << 3;
inline constexpr uint64_t kIncompatExtendedL2 = 1ull << 4;
inline constexpr uint64_t kIncompatSupported = kIncompatDirty | kIncompatCorrupt | kIncompatCompression;
// Compatible feature bits.
inline constexpr uint64_t kCompatLazyRefcounts = 1ull << 0;
// Autoclear feature bits.
inline constexpr uint64_t kAutoclearBitmaps = 1ull << 0;

// Header extension types.
inline constexpr uint32_t kExtEnd = 0;
inline constexpr uint32_t kExtBackingFormat = 0xe2792aca;
inline constexpr uint32_t kExtFeatureTable = 0x6803f857;
inline constexpr uint32_t kExtBitmaps = 0x23852875;
inline constexpr uint32_t kExtEncryption = 0x0537be77;
inline constexpr uint32_t kExtDataFile = 0x44415441;

// Table entry bits.
inline constexpr uint64_t kOflagCopied = 1ull << 63;
inline constexpr uint64_t kOflagCompressed = 1ull << 62;
inline constexpr uint64_t kOflagZero = 1ull << 0;
inline constexpr uint64_t kOffsetMask = 0x00fffffffffffe00ull;  // bits 9-55
inline constexpr uint64_t kL1ReservedMask = 0x7f000000000001ffull;
inline constexpr uint64_t kL2StandardReservedMask = 0x3f000000000001feull;
inline constexpr uint64_t kRefcountTableReservedMask = 0x1ffull;

enum class CompressionType : uint8_t { zlib = 0, zstd = 1 };
// How clusters are compressed. "zlib" clusters are raw deflate streams: QEMU writes
// them with a 4 KiB window but reads a whole cluster in one inflate call, which
// resolves distances up to deflate's 32 KiB as any reader does. zstd: one frame.
// Deflate level 1 of libdeflate gives about the size of QEMU's zlib level 6 at a
// third of its CPU time (64 KiB clusters of the bench image); zstd 3 is QEMU's.
inline compress::Codec codec_of(CompressionType type) {
  return type == CompressionType::zstd ? compress::Codec::zstd : compress::Codec::deflate;
}
inline int compression_level(CompressionType type) { return type == CompressionType::zstd ? 3 : 1; }

struct FeatureName {
  uint8_t type;  // 0 incompatible, 1 compatible, 2 autoclear
  uint8_t bit;
  std::string name;
};

struct Extension {
  uint32_t type;
  std::vector<uint8_t> data;
};

struct BitmapsExtension {
  uint32_t nb_bitmaps = 0;
  uint64_t directory_size = 0;
  uint64_t directory_offset = 0;
};

// Where an encrypted image keeps its LUKS header (the full disk encryption
// header pointer extension).
struct EncryptionExtension {
  uint64_t offset = 0;
  uint64_t length = 0;
};

// crypt_method values.
inline constexpr uint32_t kCryptNone = 0;
inline constexpr uint32_t kCryptAes = 1;   // legacy AES-CBC, deprecated by QEMU
inline constexpr uint32_t kCryptLuks = 2;

struct Header {
  uint32_t version = 3;
  uint64_t backing_file_offset = 0;
  uint32_t backing_file_size = 0;
  uint32_t cluster_bits = 16;
  uint64_t size = 0;
  uint32_t crypt_method = 0;
  uint32_t l1_size = 0;
  uint64_t l1_table_offset = 0;
  uint64_t refcount_table_offset = 0;
  uint32_t refcount_table_clusters = 0;
  uint32_t nb_snapshots = 0;
  uint64_t snapshots_offset = 0;
  uint64_t incompatible_features = 0;
  uint64_t compatible_features = 0;
  uint64_t autoclear_features = 0;
  uint32_t refcount_order = 4;
  uint32_t header_length = kV3HeaderLength;
  CompressionType compression_type = CompressionType::zlib;
  // Additional header fields beyond those arche knows, kept verbatim (spec rule 2).
  std::vector<uint8_t> unknown_fields;

  std::string backing_file;
  std::optional<std::string> backing_format;
  std::optional<std::string> data_file;
  std::optional<BitmapsExtension> bitmaps;
  std::optional<EncryptionExtension> encryption;
  std::vector<FeatureName> feature_names;
  // Extensions arche does not interpret (bitmaps included, as raw bytes), kept when
  // the header is rewritten.
  std::vector<Extension> other_extensions;

  uint64_t cluster_size() const { return 1ull << cluster_bits; }
  uint64_t l2_entries() const { return cluster_size() / 8; }
  uint32_t refcount_bits() const { return 1u << refcount_order; }
};

// Parses and validates the first cluster of an image. `file_size` bounds every
// offset the header names. Throws format/unsupported errors with a clear message.
Header parse_header(std::span<const uint8_t> first_cluster, uint64_t file_size, const std::string& name);

// Encrypted images parse (their header is plain, so `image info` can describe
// them), but arche reads and writes no data of them: everything else calls this.
void refuse_encrypted(const Header& header, const std::string& name);

// Encodes header, extensions and backing file name into one cluster-sized buffer.
// Throws if they do not fit.
std::vector<uint8_t> encode_header(const Header& header);

// The feature name table arche writes (what QEMU writes too).
std::vector<FeatureName> default_feature_names();

// Human-readable names of the bits set in `bits` of the given feature type,
// preferring the image's own feature table.
std::string describe_features(const Header& header, uint8_t type, uint64_t bits);

// Number of L1 entries needed for a disk of `size` bytes.
uint64_t l1_entries_for(uint64_t size, uint32_t cluster_bits);

// Compressed cluster descriptor fields.
struct CompressedRef {
  uint64_t offset;  // byte offset of the compressed data in the file
  uint64_t length;  // bytes from offset to the end of its last sector
};
CompressedRef decode_compressed(uint64_t entry, uint32_t cluster_bits);
uint64_t encode_compressed(uint64_t offset, uint64_t length, uint32_t cluster_bits);
// Largest compressed length a descriptor can express for this cluster size.
uint64_t max_compressed_length(uint32_t cluster_bits);

// Entry `index` of a refcount block whose entries are 2^order bits wide (sub-byte
// widths pack from the least significant bit, as the specification says).
uint64_t refcount_get(std::span<const uint8_t> block, uint64_t index, uint32_t order);
void refcount_set(std::span<uint8_t> block, uint64_t index, uint32_t order, uint64_t value);

struct Snapshot {
  uint64_t l1_table_offset = 0;
  uint32_t l1_size = 0;
  std::string id;
  std::string name;
  uint32_t date_sec = 0;
  uint32_t date_nsec = 0;
  uint64_t vm_clock_nsec = 0;
  uint64_t vm_state_size = 0;
  std::optional<uint64_t> disk_size;
};

// Parses nb_snapshots entries from the snapshot table bytes. Returns the entries
// and (through table_bytes) how many bytes the table occupies.
std::vector<Snapshot> parse_snapshot_table(std::span<const uint8_t> data, uint32_t count, const std::string& name,
                                           uint64_t* table_bytes);

struct BitmapDirectoryEntry {
  uint64_t table_offset;
  uint32_t table_size;  // entries
  std::string name;
};
std::vector<BitmapDirectoryEntry> parse_bitmap_directory(std::span<const uint8_t> data, uint32_t count,
                                                         const std::string& name);

}  // namespace arche::image::qcow2
