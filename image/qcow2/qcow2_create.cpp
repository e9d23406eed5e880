// Creation of new, empty qcow2 images.
#include <cstring>

#include "core/endian.h"
#include "core/error.h"
#include "core/file.h"
#include "core/units.h"
#include "image/qcow2/qcow2_driver.h"
#include "image/qcow2/qcow2_format.h"

namespace arche::image::qcow2 {

namespace {

struct Settings {
  uint32_t cluster_bits = 16;
  uint32_t version = 3;
  uint32_t refcount_order = 4;
  CompressionType compression = CompressionType::zlib;
  bool lazy_refcounts = false;
};

bool parse_bool(const std::string& key, const std::string& value) {
  if (value == "on" || value == "true" || value == "yes") return true;
  if (value == "off" || value == "false" || value == "no") return false;
  fail(ErrorCategory::usage, "qcow2: option {} must be on or off (got '{}')", key, value);
}

Settings parse_settings(const std::map<std::string, std::string>& options) {
  Settings s;
  for (const auto& [key, value] : options) {
    if (key == "cluster_size") {
      uint64_t size = parse_size(value, "cluster_size");
      if (!is_power_of_two(size) || size < 512 || size > 2 * MiB)
        fail(ErrorCategory::usage, "qcow2: cluster_size must be a power of two from 512 to 2M (got {})", value);
      s.cluster_bits = static_cast<uint32_t>(__builtin_ctzll(size));
    } else if (key == "compat") {
      if (value == "0.10" || value == "v2") s.version = 2;
      else if (value == "1.1" || value == "v3") s.version = 3;
      else fail(ErrorCategory::usage, "qcow2: compat must be 0.10 or 1.1 (got '{}')", value);
    } else if (key == "compression_type") {
      if (value == "zlib") s.compression = CompressionType::zlib;
      else if (value == "zstd") s.compression = CompressionType::zstd;
      else fail(ErrorCategory::usage, "qcow2: compression_type must be zlib or zstd (got '{}')", value);
    } else if (key == "lazy_refcounts") {
      s.lazy_refcounts = parse_bool(key, value);
    } else if (key == "refcount_bits") {
      uint64_t bits = parse_size(value, "refcount_bits");
      if (!is_power_of_two(bits) || bits > 64)
        fail(ErrorCategory::usage, "qcow2: refcount_bits must be 1, 2, 4, 8, 16, 32 or 64 (got {})", value);
      s.refcount_order = static_cast<uint32_t>(__builtin_ctzll(bits));
    } else if (key == "preallocation") {
      if (value != "off") fail(ErrorCategory::unsupported, "qcow2: only preallocation=off is supported");
    } else {
      fail(ErrorCategory::usage,
           "qcow2: unknown option '{}' (known: cluster_size, compat, compression_type, lazy_refcounts, "
           "refcount_bits, preallocation)",
           key);
    }
  }
  if (s.version == 2 && (s.compression != CompressionType::zlib || s.lazy_refcounts || s.refcount_order != 4))
    fail(ErrorCategory::usage, "qcow2: compat=0.10 supports neither zstd, lazy_refcounts nor refcount_bits other than 16");
  return s;
}

}  // namespace

void create(const std::string& path, const CreateOptions& options) {
  const Settings s = parse_settings(options.options);
  Header h;
  h.version = s.version;
  h.cluster_bits = s.cluster_bits;
  h.size = align_up(options.size, 512);
  h.refcount_order = s.refcount_order;
  h.header_length = s.version == 2 ? kV2HeaderLength : kV3HeaderLength;
  h.compression_type = s.compression;
  if (s.compression != CompressionType::zlib) h.incompatible_features |= kIncompatCompression;
  if (s.lazy_refcounts) h.compatible_features |= kCompatLazyRefcounts;
  h.backing_file = options.backing_file;
  if (!options.backing_file.empty()) h.backing_format = options.backing_format;

  const uint64_t cs = h.cluster_size();
  const uint64_t l1_entries = l1_entries_for(h.size, h.cluster_bits);
  if (l1_entries * 8 > kMaxL1Bytes)
    fail(ErrorCategory::usage, "qcow2: {} bytes is too large for {}-byte clusters", h.size, cs);
  h.l1_size = static_cast<uint32_t>(l1_entries);
  const uint64_t l1_clusters = div_round_up(l1_entries * 8, cs);

  // Layout as QEMU's: header, refcount table, refcount blocks, L1 table. The
  // refcount structures must cover themselves, hence the fixed point.
  const uint64_t per_block = cs * 8 / h.refcount_bits();
  uint64_t table_clusters = 1, blocks = 1;
  for (;;) {
    uint64_t total = 1 + table_clusters + blocks + l1_clusters;
    uint64_t need_blocks = div_round_up(total, per_block);
    uint64_t need_table = div_round_up(need_blocks * 8, cs);
    if (need_blocks <= blocks && need_table <= table_clusters) break;
    blocks = std::max(blocks, need_blocks);
    table_clusters = std::max(table_clusters, need_table);
  }
  const uint64_t total = 1 + table_clusters + blocks + l1_clusters;
  h.refcount_table_offset = cs;
  h.refcount_table_clusters = static_cast<uint32_t>(table_clusters);
  h.l1_table_offset = (1 + table_clusters + blocks) * cs;

  std::vector<uint8_t> image(total * cs, 0);
  std::vector<uint8_t> header = encode_header(h);
  std::memcpy(image.data(), header.data(), header.size());
  for (uint64_t b = 0; b < blocks; ++b) {
    store_be64(image.data() + cs + b * 8, (1 + table_clusters + b) * cs);
  }
  // Refcount 1 for every cluster of the layout.
  for (uint64_t c = 0; c < total; ++c) {
    std::span<uint8_t> block(image.data() + (1 + table_clusters + c / per_block) * cs, cs);
    refcount_set(block, c % per_block, h.refcount_order, 1);
  }
  File f = File::open(path, OpenMode::create_truncate);
  f.write_all(0, image);
}

}  // namespace arche::image::qcow2
