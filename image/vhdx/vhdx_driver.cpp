#include "image/vhdx/vhdx_driver.h"

#include <algorithm>
#include <boost/filesystem.hpp>
#include <cstring>

#include "core/endian.h"
#include "core/error.h"
#include "core/units.h"
#include "image/foreign/sparse_write.h"
#include "image/vhdx/vhdx_device.h"
#include "image/vhdx/vhdx_format.h"
#include "image/vhdx/vhdx_log.h"

namespace arche::image {

namespace {

using namespace vhdx;

struct VhdxCreateParams {
  bool fixed = false;
  uint32_t block_size = 0;  // 0: by size, like qemu
  uint32_t log_size = 1 * MiB;
};

VhdxCreateParams parse_params(const CreateOptions& options) {
  VhdxCreateParams p;
  for (const auto& [key, value] : options.options) {
    if (key == "subformat") {
      if (value == "dynamic") p.fixed = false;
      else if (value == "fixed") p.fixed = true;
      else fail(ErrorCategory::usage, "vhdx: subformat must be dynamic or fixed (got '{}')", value);
    } else if (key == "block_size") {
      uint64_t b = parse_size(value, "block_size");
      if (b < MiB || b > 256 * MiB || !is_power_of_two(b))
        fail(ErrorCategory::usage, "vhdx: block_size must be a power of two from 1M to 256M (got {})", value);
      p.block_size = static_cast<uint32_t>(b);
    } else if (key == "log_size") {
      uint64_t l = parse_size(value, "log_size");
      if (l < MiB || l % MiB || l > 256 * MiB)
        fail(ErrorCategory::usage, "vhdx: log_size must be a multiple of 1M up to 256M (got {})", value);
      p.log_size = static_cast<uint32_t>(l);
    } else {
      fail(ErrorCategory::usage, "vhdx: unknown option '{}' (known: subformat, block_size, log_size)", key);
    }
  }
  if (!options.backing_file.empty()) {
    if (p.fixed) fail(ErrorCategory::usage, "vhdx: a fixed disk cannot have a parent");
    if (!options.backing_format.empty() && driver_for(options.backing_format).name() != "vhdx")
      fail(ErrorCategory::usage, "vhdx: the parent of a differencing disk must be a VHDX (got {})", options.backing_format);
  }
  return p;
}

// qemu's defaults, so images made by either tool look alike.
uint32_t default_block_size(uint64_t size) {
  if (size > 32 * TiB) return 64 * MiB;
  if (size > 100 * GiB) return 32 * MiB;
  if (size > 1 * GiB) return 16 * MiB;
  return 8 * MiB;
}

struct Plan {
  uint64_t log_offset, log_length, metadata_offset, bat_offset, bat_length, payload_offset;
  BatLayout layout;
};

Plan plan(uint64_t size, uint32_t block_size, uint32_t log_size, bool has_parent, uint32_t sector_size = 512) {
  Plan p;
  p.layout = bat_layout(size, block_size, sector_size, has_parent);
  p.log_offset = MiB;
  p.log_length = log_size;
  p.metadata_offset = p.log_offset + p.log_length;
  p.bat_offset = p.metadata_offset + MiB;
  p.bat_length = align_up(std::max<uint64_t>(p.layout.entries * 8, 1), MiB);
  p.payload_offset = p.bat_offset + p.bat_length;
  return p;
}

class VhdxDriver final : public FormatDriver {
 public:
  std::string name() const override { return "vhdx"; }

  int probe(std::span<const uint8_t> head) const override {
    return head.size() >= 8 && std::memcmp(head.data(), "vhdxfile", 8) == 0 ? 100 : 0;
  }

  std::unique_ptr<BlockDevice> open(const std::string& path, const OpenOptions& options,
                                    ChainState& chain) const override {
    return VhdxDevice::open(path, options, chain);
  }

  std::vector<CreateOptionInfo> create_options() const override {
    return {{"subformat", "dynamic|fixed", "dynamic", "sparse, or the whole disk allocated"},
            {"block_size", "1M to 256M, a power of two", "by size, as qemu: 8M to 64M", "allocation unit"},
            {"log_size", "1M to 256M, in whole megabytes", "1M", "size of the metadata log"}};
  }

  void create(const std::string& path, const CreateOptions& options) const override {
    VhdxCreateParams params = parse_params(options);
    Metadata m;
    m.virtual_disk_size = align_up(options.size, 512);
    m.logical_sector_size = 512;
    m.physical_sector_size = 4096;
    m.page83 = foreign::random_guid();
    m.leave_blocks_allocated = params.fixed;
    if (!options.backing_file.empty()) {
      const std::string parent_path = resolve_backing_path(path, options.backing_file);
      OpenOptions o;
      o.format = "vhdx";
      o.open_backing = false;
      auto parent = open_image(parent_path, o);
      auto& pv = dynamic_cast<VhdxDevice&>(*parent);
      m.has_parent = true;
      m.virtual_disk_size = pv.size();
      m.logical_sector_size = pv.metadata().logical_sector_size;
      m.physical_sector_size = pv.metadata().physical_sector_size;
      if (!params.block_size) params.block_size = pv.metadata().block_size;
      ParentLocator loc;
      loc.type = kVhdxParentLocatorType;
      std::string guid = foreign::guid_string(pv.header().data_write_guid);
      std::transform(guid.begin(), guid.end(), guid.begin(), ::toupper);
      loc.entries["parent_linkage"] = "{" + guid + "}";
      std::string relative = options.backing_file;
      std::string absolute = boost::filesystem::absolute(parent_path).lexically_normal().string();
      std::replace(absolute.begin(), absolute.end(), '/', '\\');
      if (relative[0] != '/') {
        std::replace(relative.begin(), relative.end(), '/', '\\');
        if (relative.rfind(".\\", 0) != 0 && relative.rfind("..\\", 0) != 0) relative = ".\\" + relative;
        loc.entries["relative_path"] = relative;
      }
      loc.entries["absolute_win32_path"] = absolute;
      m.parent_locator = loc;
    }
    if (m.virtual_disk_size == 0 || m.virtual_disk_size > kMaxDiskSize)
      fail(ErrorCategory::usage, "vhdx: size must be between 512 bytes and 64 TiB (got {})", options.size);
    m.block_size = params.block_size ? params.block_size : default_block_size(m.virtual_disk_size);
    const Plan p = plan(m.virtual_disk_size, m.block_size, params.log_size, m.has_parent, m.logical_sector_size);

    File file = File::open(path, OpenMode::create_truncate);
    if (file.is_block_device()) fail(ErrorCategory::unsupported, "vhdx: {} is a block device; create the image in a file", path);
    // File type identifier: signature and creator.
    std::vector<uint8_t> ident(64 * KiB, 0);
    std::memcpy(ident.data(), "vhdxfile", 8);
    std::string creator;
    foreign::utf16_to_bytes(foreign::utf8_to_utf16("arche 0.1"), false, creator);
    std::memcpy(ident.data() + 8, creator.data(), creator.size());
    foreign::write_into_zeroed(file, 0, ident);

    Header h;
    h.file_write_guid = foreign::random_guid();
    h.data_write_guid = foreign::random_guid();
    h.log_length = static_cast<uint32_t>(p.log_length);
    h.log_offset = p.log_offset;
    for (int k = 0; k < 2; ++k) {
      h.sequence = static_cast<uint64_t>(k);
      file.write_all(kHeaderOffsets[k], encode_header(h));
    }
    std::vector<RegionEntry> regions = {{kBatRegion, p.bat_offset, static_cast<uint32_t>(p.bat_length), true},
                                        {kMetadataRegion, p.metadata_offset, static_cast<uint32_t>(MiB), true}};
    std::vector<uint8_t> table = encode_region_table(regions);
    for (uint64_t at : kRegionTableOffsets) foreign::write_into_zeroed(file, at, table);
    foreign::write_into_zeroed(file, p.metadata_offset, encode_metadata(m, MiB));

    uint64_t end = p.payload_offset;
    std::vector<uint8_t> bat(p.bat_length, 0);
    if (params.fixed) {
      for (uint64_t b = 0; b < p.layout.payload_blocks; ++b) {
        store_le64(bat.data() + p.layout.payload_index(b) * 8, bat_entry(kFullyPresent, end));
        end += m.block_size;
      }
    }
    foreign::write_into_zeroed(file, p.bat_offset, bat);
    file.truncate(end);
  }

  Measurement measure(BlockDevice* source, uint64_t size, const CreateOptions& options) const override {
    VhdxCreateParams params = parse_params(options);
    size = align_up(size, 512);
    uint32_t bs = params.block_size ? params.block_size : default_block_size(size);
    const Plan p = plan(size, bs, params.log_size, false);
    Measurement m;
    m.fully_allocated = p.payload_offset + p.layout.payload_blocks * bs;
    if (params.fixed) {
      m.required = m.fully_allocated;
      return m;
    }
    uint64_t used = p.layout.payload_blocks;
    if (source) {
      used = 0;
      uint64_t last = UINT64_MAX;
      for (const Extent& e : source->map()) {
        if (e.kind != ExtentKind::data) continue;
        for (uint64_t b = e.offset / bs; b <= (e.offset + e.length - 1) / bs; ++b) {
          if (b != last) ++used;
          last = b;
        }
      }
    }
    m.required = p.payload_offset + used * bs;
    return m;
  }

  CheckResult check(const std::string& path, RepairMode repair) const override {
    OpenOptions o;
    o.format = "vhdx";
    o.open_backing = false;
    ChainState chain;
    CheckResult r;
    if (repair != RepairMode::none) {
      // A writable open replays a pending log: that is the repair qemu-img does too.
      bool pending = false;
      {
        auto ro = VhdxDevice::open(path, o, chain);
        pending = ro->info().dirty;
      }
      if (pending) {
        OpenOptions w = o;
        w.writable = true;
        ChainState c2;
        VhdxDevice::open(path, w, c2)->close();
        r.messages.push_back("Repaired: replayed the VHDX log");
        ++r.corruptions_fixed;
      }
    }
    ChainState c3;
    auto dev = VhdxDevice::open(path, o, c3);
    dev->check_layout(r);
    return r;
  }
};

}  // namespace

const FormatDriver& vhdx_driver() {
  static const VhdxDriver driver;
  return driver;
}

}  // namespace arche::image
