#include "image/qcow2/qcow2_format.h"

#include <algorithm>
#include <cstring>

#include "core/bytes.h"
#include "core/error.h"
#include "core/units.h"

namespace arche::image::qcow2 {

namespace {

constexpr size_t kFeatureNameEntrySize = 48;
constexpr uint32_t kMaxSnapshotExtraData = 1024;
constexpr uint64_t kMaxSnapshotTableBytes = 64 * MiB;

std::string feature_default_name(uint8_t type, uint8_t bit) {
  for (const FeatureName& f : default_feature_names())
    if (f.type == type && f.bit == bit) return f.name;
  return fmt::format("bit {}", bit);
}

void parse_extensions(ByteReader& r, size_t end, Header& h, const std::string& name) {
  while (r.position() + 8 <= end) {
    uint32_t type = r.be32();
    uint32_t length = r.be32();
    if (type == kExtEnd) return;
    if (length > end - r.position())
      fail(ErrorCategory::format, "{}: qcow2 header extension 0x{:08x} of {} bytes runs past the header area", name,
           type, length);
    std::span<const uint8_t> data = r.bytes(length);
    r.skip(std::min<size_t>(align_up(length, 8) - length, r.remaining()));
    switch (type) {
      case kExtBackingFormat:
        h.backing_format = std::string(reinterpret_cast<const char*>(data.data()), data.size());
        break;
      case kExtFeatureTable:
        for (size_t off = 0; off + kFeatureNameEntrySize <= data.size(); off += kFeatureNameEntrySize) {
          const char* text = reinterpret_cast<const char*>(data.data() + off + 2);
          h.feature_names.push_back({data[off], data[off + 1], std::string(text, strnlen(text, 46))});
        }
        break;
      case kExtEncryption:
        if (data.size() < 16) fail(ErrorCategory::format, "{}: qcow2 encryption header extension is too short", name);
        h.encryption = EncryptionExtension{load_be64(data.data()), load_be64(data.data() + 8)};
        h.other_extensions.push_back({type, std::vector<uint8_t>(data.begin(), data.end())});
        break;
      case kExtDataFile:
        h.data_file = std::string(reinterpret_cast<const char*>(data.data()), data.size());
        break;
      case kExtBitmaps: {
        if (data.size() < 24) fail(ErrorCategory::format, "{}: qcow2 bitmaps extension is too short", name);
        BitmapsExtension b;
        b.nb_bitmaps = load_be32(data.data());
        b.directory_size = load_be64(data.data() + 8);
        b.directory_offset = load_be64(data.data() + 16);
        h.bitmaps = b;
        h.other_extensions.push_back({type, std::vector<uint8_t>(data.begin(), data.end())});
        break;
      }
      default:
        h.other_extensions.push_back({type, std::vector<uint8_t>(data.begin(), data.end())});
        break;
    }
  }
}

}  // namespace

std::vector<FeatureName> default_feature_names() {
  return {
      {0, 0, "dirty bit"},         {0, 1, "corrupt bit"},          {0, 2, "external data file"},
      {0, 3, "compression type"},  {0, 4, "extended L2 entries"},  {1, 0, "lazy refcounts"},
      {2, 0, "bitmaps"},           {2, 1, "raw external data"},
  };
}

std::string describe_features(const Header& header, uint8_t type, uint64_t bits) {
  std::string out;
  for (uint8_t bit = 0; bit < 64; ++bit) {
    if (!(bits & (1ull << bit))) continue;
    std::string feature;
    for (const FeatureName& f : header.feature_names)
      if (f.type == type && f.bit == bit) feature = f.name;
    if (feature.empty()) feature = feature_default_name(type, bit);
    out += (out.empty() ? "" : ", ") + feature;
  }
  return out;
}

uint64_t l1_entries_for(uint64_t size, uint32_t cluster_bits) {
  uint64_t clusters = div_round_up(size, 1ull << cluster_bits);
  return div_round_up(clusters, (1ull << cluster_bits) / 8);
}

Header parse_header(std::span<const uint8_t> buf, uint64_t file_size, const std::string& name) {
  if (buf.size() < kV2HeaderLength || load_be32(buf.data()) != kMagic)
    fail(ErrorCategory::format, "{}: not a qcow2 image (no QFI magic or header too short)", name);
  ByteReader r(buf, name + ": qcow2 header");
  Header h;
  r.skip(4);
  h.version = r.be32();
  if (h.version != 2 && h.version != 3)
    fail(ErrorCategory::unsupported, "{}: qcow2 version {} is not supported (only 2 and 3)", name, h.version);
  h.backing_file_offset = r.be64();
  h.backing_file_size = r.be32();
  h.cluster_bits = r.be32();
  if (h.cluster_bits < kMinClusterBits || h.cluster_bits > kMaxClusterBits)
    fail(ErrorCategory::format, "{}: qcow2 cluster_bits {} is out of range (9 to 21: 512 B to 2 MiB)", name,
         h.cluster_bits);
  const uint64_t cs = h.cluster_size();
  h.size = r.be64();
  h.crypt_method = r.be32();
  h.l1_size = r.be32();
  h.l1_table_offset = r.be64();
  h.refcount_table_offset = r.be64();
  h.refcount_table_clusters = r.be32();
  h.nb_snapshots = r.be32();
  h.snapshots_offset = r.be64();

  if (h.version == 2) {
    h.header_length = kV2HeaderLength;
    h.refcount_order = 4;
  } else {
    h.incompatible_features = r.be64();
    h.compatible_features = r.be64();
    h.autoclear_features = r.be64();
    h.refcount_order = r.be32();
    h.header_length = r.be32();
    if (h.header_length < 104 || h.header_length % 8 != 0 || h.header_length > buf.size() || h.header_length > cs)
      fail(ErrorCategory::format, "{}: qcow2 header_length {} is invalid", name, h.header_length);
    if (h.header_length > 104) {
      uint8_t type = buf[104];
      if (type > 1) fail(ErrorCategory::unsupported, "{}: qcow2 compression type {} is unknown", name, type);
      h.compression_type = static_cast<CompressionType>(type);
    }
    if (h.header_length > kV3HeaderLength)
      h.unknown_fields.assign(buf.begin() + kV3HeaderLength, buf.begin() + h.header_length);
  }

  // Extensions live between the header and the backing file name (or cluster end).
  size_t ext_end = std::min<uint64_t>(buf.size(), cs);
  if (h.backing_file_offset != 0) {
    if (h.backing_file_offset < h.header_length || h.backing_file_offset > ext_end)
      fail(ErrorCategory::format, "{}: qcow2 backing file name offset {} is outside the first cluster", name,
           h.backing_file_offset);
    ext_end = h.backing_file_offset;
  }
  r.seek(h.header_length);
  parse_extensions(r, ext_end, h, name);

  uint64_t unknown_incompat = h.incompatible_features & ~(kIncompatSupported | kIncompatDataFile | kIncompatExtendedL2);
  if (unknown_incompat)
    fail(ErrorCategory::unsupported, "{}: qcow2 image uses incompatible features arche does not know: {}", name,
         describe_features(h, 0, unknown_incompat));
  if (h.incompatible_features & kIncompatDataFile)
    fail(ErrorCategory::unsupported, "{}: qcow2 images with an external data file are not supported", name);
  if (h.incompatible_features & kIncompatExtendedL2)
    fail(ErrorCategory::unsupported, "{}: qcow2 images with extended L2 entries (subclusters) are not supported",
         name);
  bool compression_bit = h.incompatible_features & kIncompatCompression;
  if (compression_bit != (h.compression_type != CompressionType::zlib))
    fail(ErrorCategory::format, "{}: qcow2 compression type field and feature bit disagree", name);
  if (h.crypt_method > kCryptLuks)
    fail(ErrorCategory::unsupported, "{}: qcow2 encryption method {} is unknown", name, h.crypt_method);
  if (h.crypt_method == kCryptLuks && !h.encryption)
    fail(ErrorCategory::format, "{}: LUKS-encrypted qcow2 image without its encryption header extension", name);
  if (h.refcount_order > 6)
    fail(ErrorCategory::format, "{}: qcow2 refcount_order {} is invalid (at most 6)", name, h.refcount_order);

  if (h.backing_file_offset != 0) {
    if (h.backing_file_size > kMaxBackingNameLength)
      fail(ErrorCategory::format, "{}: qcow2 backing file name is {} bytes long (at most {})", name,
           h.backing_file_size, kMaxBackingNameLength);
    if (h.backing_file_offset + h.backing_file_size > std::min<uint64_t>(buf.size(), cs))
      fail(ErrorCategory::format, "{}: qcow2 backing file name runs past the first cluster", name);
    h.backing_file.assign(reinterpret_cast<const char*>(buf.data() + h.backing_file_offset), h.backing_file_size);
  }

  // Tables: aligned, inside the file, sizes within QEMU's limits.
  auto check_area = [&](const char* what, uint64_t offset, uint64_t bytes) {
    if (offset % cs != 0)
      fail(ErrorCategory::format, "{}: qcow2 {} offset 0x{:x} is not cluster-aligned", name, what, offset);
    if (offset == 0 || !range_within(offset, bytes, file_size))
      fail(ErrorCategory::format, "{}: qcow2 {} (0x{:x}, {} bytes) lies outside the {}-byte file", name, what, offset,
           bytes, file_size);
  };
  if (static_cast<uint64_t>(h.l1_size) * 8 > kMaxL1Bytes)
    fail(ErrorCategory::format, "{}: qcow2 L1 table of {} entries is too large", name, h.l1_size);
  if (h.size > (1ull << 62) || h.l1_size < l1_entries_for(h.size, h.cluster_bits))
    fail(ErrorCategory::format, "{}: qcow2 L1 table ({} entries) is too small for a {}-byte disk", name, h.l1_size,
         h.size);
  if (h.l1_size > 0) check_area("L1 table", h.l1_table_offset, uint64_t{h.l1_size} * 8);
  if (h.refcount_table_clusters == 0 || uint64_t{h.refcount_table_clusters} * cs > kMaxRefcountTableBytes)
    fail(ErrorCategory::format, "{}: qcow2 refcount table size ({} clusters) is invalid", name,
         h.refcount_table_clusters);
  check_area("refcount table", h.refcount_table_offset, uint64_t{h.refcount_table_clusters} * cs);
  if (h.nb_snapshots > kMaxSnapshots)
    fail(ErrorCategory::format, "{}: qcow2 image claims {} snapshots (at most {})", name, h.nb_snapshots,
         kMaxSnapshots);
  if (h.nb_snapshots > 0) check_area("snapshot table", h.snapshots_offset, 40);
  return h;
}

namespace {

std::vector<uint8_t> encode_header_with(const Header& h, bool feature_table) {
  ByteWriter w;
  w.be32(kMagic);
  w.be32(h.version);
  w.be64(0);  // backing_file_offset: patched below
  w.be32(static_cast<uint32_t>(h.backing_file.size()));
  w.be32(h.cluster_bits);
  w.be64(h.size);
  w.be32(h.crypt_method);
  w.be32(h.l1_size);
  w.be64(h.l1_table_offset);
  w.be64(h.refcount_table_offset);
  w.be32(h.refcount_table_clusters);
  w.be32(h.nb_snapshots);
  w.be64(h.snapshots_offset);
  if (h.version >= 3) {
    uint32_t header_length = static_cast<uint32_t>(align_up(kV3HeaderLength + h.unknown_fields.size(), 8));
    w.be64(h.incompatible_features);
    w.be64(h.compatible_features);
    w.be64(h.autoclear_features);
    w.be32(h.refcount_order);
    w.be32(header_length);
    w.u8(static_cast<uint8_t>(h.compression_type));
    w.zeros(kV3HeaderLength - 105);
    w.bytes(h.unknown_fields);
    w.pad_to(8);
  }
  auto extension = [&](uint32_t type, std::span<const uint8_t> data) {
    w.be32(type);
    w.be32(static_cast<uint32_t>(data.size()));
    w.bytes(data);
    w.pad_to(8);
  };
  auto text = [](const std::string& s) { return std::span(reinterpret_cast<const uint8_t*>(s.data()), s.size()); };
  if (!h.backing_file.empty() && h.backing_format) extension(kExtBackingFormat, text(*h.backing_format));
  if (h.data_file) extension(kExtDataFile, text(*h.data_file));
  if (h.version >= 3 && feature_table) {
    ByteWriter table;
    for (const FeatureName& f : h.feature_names.empty() ? default_feature_names() : h.feature_names) {
      table.u8(f.type);
      table.u8(f.bit);
      std::string padded = f.name.substr(0, 46);
      padded.resize(46, '\0');
      table.string(padded);
    }
    extension(kExtFeatureTable, table.buffer());
  }
  for (const Extension& e : h.other_extensions) extension(e.type, e.data);
  w.be32(kExtEnd);
  w.be32(0);
  if (!h.backing_file.empty()) {
    if (h.backing_file.size() > kMaxBackingNameLength)
      fail(ErrorCategory::usage, "backing file name is longer than {} bytes", kMaxBackingNameLength);
    store_be64(w.buffer().data() + 8, w.size());
    w.string(h.backing_file);
  }
  if (w.size() > h.cluster_size())
    fail(ErrorCategory::usage, "qcow2 header, extensions and backing file name ({} bytes) do not fit in a {}-byte cluster",
         w.size(), h.cluster_size());
  w.zeros(h.cluster_size() - w.size());
  return w.take();
}

}  // namespace

void refuse_encrypted(const Header& h, const std::string& name) {
  if (h.crypt_method != kCryptNone)
    fail(ErrorCategory::unsupported,
         "{}: encrypted qcow2 images ({}) cannot be read or written by arche; `arche image info` describes them", name,
         h.crypt_method == kCryptLuks ? "LUKS" : "legacy AES");
}

std::vector<uint8_t> encode_header(const Header& h) {
  // The feature name table is optional: small clusters leave it out, as QEMU does.
  try {
    return encode_header_with(h, true);
  } catch (const Error&) {
    return encode_header_with(h, false);
  }
}

CompressedRef decode_compressed(uint64_t entry, uint32_t cluster_bits) {
  uint32_t x = 62 - (cluster_bits - 8);
  uint64_t offset = entry & ((1ull << x) - 1);
  uint64_t sectors = ((entry >> x) & ((1ull << (cluster_bits - 8)) - 1)) + 1;
  return {offset, sectors * 512 - (offset & 511)};
}

uint64_t encode_compressed(uint64_t offset, uint64_t length, uint32_t cluster_bits) {
  uint32_t x = 62 - (cluster_bits - 8);
  uint64_t extra_sectors = ((offset + length - 1) >> 9) - (offset >> 9);
  if (offset >= (1ull << x) || extra_sectors >= (1ull << (cluster_bits - 8)))
    fail(ErrorCategory::internal, "compressed cluster at {} ({} bytes) cannot be described", offset, length);
  return kOflagCompressed | (extra_sectors << x) | offset;
}

uint64_t max_compressed_length(uint32_t cluster_bits) { return (1ull << cluster_bits) - 512; }

uint64_t refcount_get(std::span<const uint8_t> block, uint64_t index, uint32_t order) {
  switch (order) {
    case 0:
    case 1:
    case 2: {
      uint32_t bits = 1u << order;
      uint64_t per_byte = 8 / bits;
      return (block[index / per_byte] >> ((index % per_byte) * bits)) & ((1u << bits) - 1);
    }
    case 3: return block[index];
    case 4: return load_be16(block.data() + index * 2);
    case 5: return load_be32(block.data() + index * 4);
    default: return load_be64(block.data() + index * 8);
  }
}

void refcount_set(std::span<uint8_t> block, uint64_t index, uint32_t order, uint64_t value) {
  switch (order) {
    case 0:
    case 1:
    case 2: {
      uint32_t bits = 1u << order;
      uint64_t per_byte = 8 / bits;
      uint32_t shift = static_cast<uint32_t>((index % per_byte) * bits);
      uint8_t& byte = block[index / per_byte];
      byte = static_cast<uint8_t>((byte & ~(((1u << bits) - 1) << shift)) | (value << shift));
      break;
    }
    case 3: block[index] = static_cast<uint8_t>(value); break;
    case 4: store_be16(block.data() + index * 2, static_cast<uint16_t>(value)); break;
    case 5: store_be32(block.data() + index * 4, static_cast<uint32_t>(value)); break;
    default: store_be64(block.data() + index * 8, value); break;
  }
}

std::vector<Snapshot> parse_snapshot_table(std::span<const uint8_t> data, uint32_t count, const std::string& name,
                                           uint64_t* table_bytes) {
  ByteReader r(data, name + ": qcow2 snapshot table");
  std::vector<Snapshot> out;
  for (uint32_t i = 0; i < count; ++i) {
    size_t start = r.position();
    Snapshot s;
    s.l1_table_offset = r.be64();
    s.l1_size = r.be32();
    uint16_t id_len = r.be16();
    uint16_t name_len = r.be16();
    s.date_sec = r.be32();
    s.date_nsec = r.be32();
    s.vm_clock_nsec = r.be64();
    s.vm_state_size = r.be32();
    uint32_t extra = r.be32();
    if (extra > kMaxSnapshotExtraData)
      fail(ErrorCategory::format, "{}: qcow2 snapshot {} has {} bytes of extra data (too many)", name, i, extra);
    ByteReader x(r.bytes(extra), name + ": qcow2 snapshot extra data");
    if (extra >= 8) s.vm_state_size = x.be64();
    if (extra >= 16) s.disk_size = x.be64();
    s.id = r.string(id_len);
    s.name = r.string(name_len);
    r.skip(std::min<size_t>(align_up(r.position() - start, 8) - (r.position() - start), r.remaining()));
    if (uint64_t{s.l1_size} * 8 > kMaxL1Bytes)
      fail(ErrorCategory::format, "{}: qcow2 snapshot '{}' has an L1 table of {} entries (too large)", name, s.name,
           s.l1_size);
    out.push_back(std::move(s));
  }
  if (table_bytes) *table_bytes = r.position();
  if (r.position() > kMaxSnapshotTableBytes) fail(ErrorCategory::format, "{}: qcow2 snapshot table is too large", name);
  return out;
}

std::vector<BitmapDirectoryEntry> parse_bitmap_directory(std::span<const uint8_t> data, uint32_t count,
                                                         const std::string& name) {
  ByteReader r(data, name + ": qcow2 bitmap directory");
  std::vector<BitmapDirectoryEntry> out;
  for (uint32_t i = 0; i < count; ++i) {
    size_t start = r.position();
    BitmapDirectoryEntry e;
    e.table_offset = r.be64();
    e.table_size = r.be32();
    r.skip(4 + 1 + 1);  // flags, type, granularity
    uint16_t name_size = r.be16();
    uint32_t extra = r.be32();
    r.skip(extra);
    e.name = r.string(name_size);
    r.skip(std::min<size_t>(align_up(r.position() - start, 8) - (r.position() - start), r.remaining()));
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace arche::image::qcow2
