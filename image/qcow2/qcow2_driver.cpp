#include "image/qcow2/qcow2_driver.h"

#include "core/endian.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "core/units.h"
#include "image/qcow2/qcow2_device.h"
#include "image/qcow2/qcow2_format.h"
#include "image/qcow2/qcow2_info.h"

namespace arche::image {

namespace {

class Qcow2Driver final : public FormatDriver {
 public:
  std::string name() const override { return "qcow2"; }

  int probe(std::span<const uint8_t> head) const override {
    if (head.size() >= 8 && load_be32(head.data()) == qcow2::kMagic) {
      uint32_t version = load_be32(head.data() + 4);
      return version == 2 || version == 3 ? 100 : 50;
    }
    return 0;
  }

  std::unique_ptr<BlockDevice> open(const std::string& path, const OpenOptions& options,
                                    ChainState& chain) const override {
    if (options.info_only)
      if (auto encrypted = qcow2::open_encrypted_for_info(path, options)) return encrypted;
    return qcow2::Qcow2Device::open(path, options, chain);
  }

  void create(const std::string& path, const CreateOptions& options) const override {
    qcow2::create(path, options);
  }

  std::vector<CreateOptionInfo> create_options() const override {
    return {{"cluster_size", "512 to 2M, a power of two", "64K", "allocation unit of the image"},
            {"compat", "0.10|1.1", "1.1", "qcow2 version 2 (0.10) or 3 (1.1)"},
            {"compression_type", "zlib|zstd", "zlib", "how compressed clusters (convert -c) are stored; zstd needs compat=1.1"},
            {"lazy_refcounts", "on|off", "off", "update refcounts lazily (faster writes; repaired after a crash)"},
            {"refcount_bits", "1|2|4|8|16|32|64", "16", "width of a reference count"},
            {"preallocation", "off", "off", "no preallocation (the only mode arche creates)"}};
  }

  // Clusters a qcow2 image needs for `data_clusters` data clusters spread over
  // `l2_tables` L2 tables, with refcount structures covering all of it.
  static uint64_t image_bytes(uint64_t size, uint32_t cluster_bits, uint32_t refcount_bits, uint64_t data_clusters,
                              uint64_t l2_tables) {
    const uint64_t cs = 1ull << cluster_bits;
    uint64_t l1_clusters = div_round_up(qcow2::l1_entries_for(size, cluster_bits) * 8, cs);
    uint64_t fixed = 1 + l1_clusters + l2_tables + data_clusters;
    const uint64_t per_block = cs * 8 / refcount_bits;
    uint64_t blocks = 1, table = 1;
    for (;;) {
      uint64_t need_blocks = div_round_up(fixed + blocks + table, per_block);
      uint64_t need_table = div_round_up(need_blocks * 8, cs);
      if (need_blocks <= blocks && need_table <= table) break;
      blocks = std::max(blocks, need_blocks);
      table = std::max(table, need_table);
    }
    return (fixed + blocks + table) * cs;
  }

  Measurement measure(BlockDevice* source, uint64_t size, const CreateOptions& options) const override {
    uint32_t cluster_bits = 16, refcount_bits = 16;
    if (auto it = options.options.find("cluster_size"); it != options.options.end())
      cluster_bits = static_cast<uint32_t>(__builtin_ctzll(parse_size(it->second, "cluster_size")));
    if (auto it = options.options.find("refcount_bits"); it != options.options.end())
      refcount_bits = static_cast<uint32_t>(parse_size(it->second, "refcount_bits"));
    if (cluster_bits < 9 || cluster_bits > 21 || refcount_bits == 0 || refcount_bits > 64)
      fail(ErrorCategory::usage, "qcow2: invalid cluster_size or refcount_bits for measure");
    size = align_up(size, 512);
    const uint64_t cs = 1ull << cluster_bits;
    const uint64_t per_table = cs * (cs / 8);
    const uint64_t all_clusters = div_round_up(size, cs);
    Measurement m;
    m.fully_allocated =
        image_bytes(size, cluster_bits, refcount_bits, all_clusters, qcow2::l1_entries_for(size, cluster_bits));
    uint64_t data_clusters = all_clusters, l2_tables = qcow2::l1_entries_for(size, cluster_bits);
    if (source) {
      // Only clusters holding data need storing; count each cluster and table once.
      data_clusters = l2_tables = 0;
      uint64_t last_cluster = UINT64_MAX, last_table = UINT64_MAX;
      for (const Extent& e : source->map()) {
        if (e.kind != ExtentKind::data) continue;
        interrupt::check();
        for (uint64_t c = e.offset / cs; c <= (e.offset + e.length - 1) / cs; ++c) {
          if (c != last_cluster) ++data_clusters;
          last_cluster = c;
          if (c * cs / per_table != last_table) ++l2_tables;
          last_table = c * cs / per_table;
        }
      }
    }
    m.required = image_bytes(size, cluster_bits, refcount_bits, data_clusters, l2_tables);
    return m;
  }

  CheckResult check(const std::string& path, RepairMode repair) const override {
    File file = File::open(path, repair == RepairMode::none ? OpenMode::read_only : OpenMode::read_write);
    OpenOptions lock_options;
    lock_options.writable = repair != RepairMode::none;
    lock_image_file(file, lock_options);
    return qcow2::check_file(file, repair);
  }
};

}  // namespace

const FormatDriver& qcow2_driver() {
  static const Qcow2Driver driver;
  return driver;
}

}  // namespace arche::image
