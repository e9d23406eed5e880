// Creation of new, empty VMDK images: monolithicSparse (header, embedded descriptor,
// redundant and primary grain directories with preallocated grain tables, as
// VMware and QEMU lay them out) and streamOptimized (header, descriptor and an
// empty stream: grain directory, footer, end-of-stream marker).
#include "image/vmdk/vmdk_create.h"

#include <boost/filesystem.hpp>
#include <cstring>

#include "core/endian.h"
#include "core/error.h"
#include "core/file.h"
#include "core/units.h"
#include "image/vmdk/vmdk_device.h"
#include "image/vmdk/vmdk_stream.h"

namespace arche::image::vmdk {

namespace {

bool parse_bool(const std::string& key, const std::string& value) {
  if (value == "on" || value == "true" || value == "yes") return true;
  if (value == "off" || value == "false" || value == "no") return false;
  fail(ErrorCategory::usage, "vmdk: option {} must be on or off (got '{}')", key, value);
}

}  // namespace

CreateSettings parse_create_settings(const std::map<std::string, std::string>& options) {
  CreateSettings s;
  bool compat6 = false, hw_given = false;
  for (const auto& [key, value] : options) {
    if (key == "subformat") {
      if (value != "monolithicSparse" && value != "streamOptimized")
        fail(ErrorCategory::usage,
             "vmdk: subformat must be monolithicSparse or streamOptimized (got '{}'; monolithicFlat and the split "
             "subformats can be read, not created)",
             value);
      s.subformat = value;
    } else if (key == "adapter_type") {
      if (value != "ide" && value != "buslogic" && value != "lsilogic" && value != "legacyESX")
        fail(ErrorCategory::usage, "vmdk: adapter_type must be ide, buslogic, lsilogic or legacyESX (got '{}')", value);
      s.adapter_type = value;
    } else if (key == "hwversion") {
      if (value.empty() || value.size() > 3 || value.find_first_not_of("0123456789") != std::string::npos)
        fail(ErrorCategory::usage, "vmdk: hwversion must be a number such as 4, 6 or 14 (got '{}')", value);
      s.hwversion = value;
      hw_given = true;
    } else if (key == "compat6") {
      compat6 = parse_bool(key, value);
    } else if (key == "zeroed_grain") {
      s.zeroed_grain = parse_bool(key, value);
    } else if (key == "toolsversion") {
      if (value.empty() || value.find_first_not_of("0123456789") != std::string::npos)
        fail(ErrorCategory::usage, "vmdk: toolsversion must be a number (got '{}')", value);
      s.toolsversion = value;
    } else {
      fail(ErrorCategory::usage,
           "vmdk: unknown option '{}' (known: subformat, adapter_type, hwversion, compat6, zeroed_grain, toolsversion)",
           key);
    }
  }
  if (compat6) {
    if (hw_given) fail(ErrorCategory::usage, "vmdk: compat6 and hwversion cannot be given together");
    s.hwversion = "6";
  }
  if (s.subformat == "streamOptimized" && s.zeroed_grain)
    fail(ErrorCategory::usage, "vmdk: streamOptimized images have no zeroed grains");
  return s;
}

SparseHeader sparse_layout(uint64_t size, const CreateSettings& s) {
  SparseHeader h;
  h.capacity = size / kSector;
  h.grain_size = kDefaultGrainSectors;
  h.gtes_per_gt = kDefaultGtesPerGt;
  h.descriptor_offset = 1;
  h.descriptor_size = kEmbeddedDescriptorSectors;
  if (s.subformat == "streamOptimized") {
    h.version = 3;
    h.flags = kFlagNewlineTest | kFlagCompressed | kFlagMarkers;
    h.compress_algorithm = kCompressDeflate;
    h.gd_offset = kGdAtEnd;
    h.overhead = align_up(h.descriptor_offset + h.descriptor_size, h.grain_size);
    return h;
  }
  h.version = s.zeroed_grain ? 2 : 1;
  h.flags = kFlagNewlineTest | kFlagRedundantGd | (s.zeroed_grain ? kFlagZeroGrain : 0);
  const uint64_t tables = h.gd_entries();
  h.rgd_offset = h.descriptor_offset + h.descriptor_size;
  h.gd_offset = h.rgd_offset + h.gd_sectors() + tables * h.gt_sectors();
  h.overhead = align_up(h.gd_offset + h.gd_sectors() + tables * h.gt_sectors(), h.grain_size);
  return h;
}

void create(const std::string& path, const CreateOptions& options) {
  const CreateSettings s = parse_create_settings(options.options);
  const uint64_t size = align_up(options.size, kSector);
  if (size == 0) fail(ErrorCategory::usage, "vmdk: an image needs a size of at least 512 bytes");
  if (size / kSector > kMaxSparseSectors - kDefaultGrainSectors)
    fail(ErrorCategory::usage, "vmdk: {} is larger than a sparse VMDK can hold (2 TiB)", format_size(size));

  Descriptor d;
  d.cid = random_content_id();
  d.create_type = s.subformat;
  if (!options.backing_file.empty()) {
    if (s.subformat != "monolithicSparse")
      fail(ErrorCategory::usage, "vmdk: only monolithicSparse images can have a parent (backing file)");
    if (!options.backing_format.empty() && options.backing_format != "vmdk")
      fail(ErrorCategory::usage, "vmdk: the parent of a VMDK must be a VMDK (got {})", options.backing_format);
    OpenOptions o;
    o.format = "vmdk";
    o.open_backing = false;
    ChainState chain;
    auto parent = VmdkDevice::open(resolve_backing_path(path, options.backing_file), o, chain);
    d.parent_cid = parent->cid();
    d.parent_hint = options.backing_file;
  }
  ExtentLine extent;
  extent.sectors = size / kSector;
  extent.type = ExtentType::sparse;
  extent.filename = boost::filesystem::path(options.final_path.empty() ? path : options.final_path).filename().string();
  d.extents.push_back(extent);
  const uint64_t heads = s.adapter_type == "ide" ? 16 : 255;
  d.ddb = {{"ddb.virtualHWVersion", s.hwversion},
           {"ddb.geometry.cylinders", std::to_string(size / (63 * heads * kSector))},
           {"ddb.geometry.heads", std::to_string(heads)},
           {"ddb.geometry.sectors", "63"},
           {"ddb.adapterType", s.adapter_type},
           {"ddb.toolsVersion", s.toolsversion}};
  const std::string text = encode_descriptor(d);

  SparseHeader h = sparse_layout(size, s);
  if (text.size() > h.descriptor_size * kSector)
    fail(ErrorCategory::usage, "vmdk: the descriptor ({} bytes) does not fit its {} bytes (parent path too long?)",
         text.size(), h.descriptor_size * kSector);

  File f = File::open(path, OpenMode::create_truncate);
  // Header, descriptor and directories in one write; grain tables stay holes
  // (zeros) until grains are allocated in them.
  const uint64_t front = s.subformat == "streamOptimized" ? h.overhead * kSector : (h.gd_offset + h.gd_sectors()) * kSector;
  std::vector<uint8_t> image(front, 0);
  std::vector<uint8_t> header = encode_sparse_header(h);
  std::memcpy(image.data(), header.data(), header.size());
  std::memcpy(image.data() + h.descriptor_offset * kSector, text.data(), text.size());
  if (s.subformat == "streamOptimized") {
    f.write_all(0, image);
    StreamWriter stream(f, h, 6);
    stream.finish();
    return;
  }
  const uint64_t tables = h.gd_entries();
  for (uint64_t i = 0; i < tables; ++i) {
    store_le32(image.data() + h.rgd_offset * kSector + i * 4,
               static_cast<uint32_t>(h.rgd_offset + h.gd_sectors() + i * h.gt_sectors()));
    store_le32(image.data() + h.gd_offset * kSector + i * 4,
               static_cast<uint32_t>(h.gd_offset + h.gd_sectors() + i * h.gt_sectors()));
  }
  f.truncate(h.overhead * kSector);
  f.write_all(0, image);
}

Measurement measure(BlockDevice* source, uint64_t size, const CreateOptions& options) {
  const CreateSettings s = parse_create_settings(options.options);
  size = align_up(size, kSector);
  const SparseHeader h = sparse_layout(std::max<uint64_t>(size, kSector), s);
  const uint64_t grain = h.grain_bytes();
  const uint64_t all_grains = div_round_up(size, grain);
  uint64_t data_grains = all_grains;
  if (source) {
    data_grains = 0;
    uint64_t last = UINT64_MAX;
    for (const Extent& e : source->map()) {
      if (e.kind != ExtentKind::data) continue;
      for (uint64_t g = e.offset / grain; g <= (e.offset + e.length - 1) / grain; ++g) {
        if (g != last) ++data_grains;
        last = g;
      }
    }
  }
  Measurement m;
  if (s.subformat == "streamOptimized") {
    // Compression is data dependent: the bound assumes grains that do not shrink.
    const uint64_t tail = (h.gt_sectors() + 1) * kSector * h.gd_entries() + (h.gd_sectors() + 4) * kSector;
    m.required = h.overhead * kSector + data_grains * (grain + kSector) + tail;
    m.fully_allocated = h.overhead * kSector + all_grains * (grain + kSector) + tail;
    return m;
  }
  m.required = h.overhead * kSector + data_grains * grain;
  m.fully_allocated = h.overhead * kSector + all_grains * grain;
  return m;
}

}  // namespace arche::image::vmdk
