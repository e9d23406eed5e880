#include "image/vdi/vdi_driver.h"

#include <algorithm>

#include "core/endian.h"
#include "core/error.h"
#include "core/units.h"
#include "image/foreign/sparse_write.h"
#include "image/vdi/vdi_device.h"
#include "image/vdi/vdi_format.h"

namespace arche::image {

namespace {

using namespace vdi;

bool parse_static(const CreateOptions& options) {
  bool is_static = false;
  for (const auto& [key, value] : options.options) {
    if (key == "static" || (key == "subformat")) {
      if (value == "on" || value == "true" || value == "yes" || value == "fixed" || value == "static") is_static = true;
      else if (value == "off" || value == "false" || value == "no" || value == "dynamic") is_static = false;
      else fail(ErrorCategory::usage, "vdi: {} must be on or off (got '{}')", key, value);
    } else {
      fail(ErrorCategory::usage, "vdi: unknown option '{}' (known: static)", key);
    }
  }
  if (!options.backing_file.empty()) fail(ErrorCategory::unsupported, "vdi: differencing VDI images are not supported");
  return is_static;
}

Header new_header(uint64_t size, bool is_static) {
  Header h;
  h.text = "<<< arche Virtual Disk Image >>>\n";
  h.type = is_static ? ImageType::fixed : ImageType::dynamic;
  h.disk_size = align_up(size, 512);
  const uint64_t blocks = div_round_up(h.disk_size, h.block_size);
  if (blocks > kMaxBlocks) fail(ErrorCategory::usage, "vdi: {} bytes is more than the format holds", size);
  h.blocks = static_cast<uint32_t>(blocks);
  h.blocks_offset = 512;
  // Data 1 MiB aligned, as VirtualBox does: blocks then sit on host-page boundaries.
  h.data_offset = static_cast<uint32_t>(align_up(h.blocks_offset + blocks * 4, MiB));
  h.uuid_create = foreign::random_guid();
  h.uuid_modify = foreign::random_guid();
  if (is_static) h.blocks_allocated = h.blocks;
  return h;
}

class VdiDriver final : public FormatDriver {
 public:
  std::string name() const override { return "vdi"; }

  int probe(std::span<const uint8_t> head) const override {
    return head.size() >= 72 && load_le32(head.data() + 64) == kSignature ? 100 : 0;
  }

  std::unique_ptr<BlockDevice> open(const std::string& path, const OpenOptions& options, ChainState&) const override {
    return VdiDevice::open(path, options);
  }

  std::vector<CreateOptionInfo> create_options() const override {
    return {{"static", "on|off", "off", "allocate every block at creation (also accepted as subformat=static|dynamic)"}};
  }

  void create(const std::string& path, const CreateOptions& options) const override {
    const bool is_static = parse_static(options);
    Header h = new_header(options.size, is_static);
    File file = File::open(path, OpenMode::create_truncate);
    if (file.is_block_device()) fail(ErrorCategory::unsupported, "vdi: {} is a block device; create the image in a file", path);
    std::vector<uint8_t> head(h.data_offset, 0);
    std::vector<uint8_t> header = encode_header(h);
    std::copy(header.begin(), header.end(), head.begin());
    for (uint32_t i = 0; i < h.blocks; ++i) store_le32(head.data() + h.blocks_offset + uint64_t{i} * 4, is_static ? i : kBlockFree);
    foreign::write_into_zeroed(file, 0, head);
    file.truncate(h.data_offset + (is_static ? uint64_t{h.blocks} * h.block_size : 0));
  }

  Measurement measure(BlockDevice* source, uint64_t size, const CreateOptions& options) const override {
    const bool is_static = parse_static(options);
    Header h = new_header(size, is_static);
    Measurement m;
    m.fully_allocated = h.data_offset + uint64_t{h.blocks} * h.block_size;
    uint64_t used = h.blocks;
    if (source && !is_static) {
      used = 0;
      uint64_t last = UINT64_MAX;
      for (const Extent& e : source->map()) {
        if (e.kind != ExtentKind::data) continue;
        for (uint64_t b = e.offset / h.block_size; b <= (e.offset + e.length - 1) / h.block_size; ++b) {
          if (b != last) ++used;
          last = b;
        }
      }
    }
    m.required = h.data_offset + used * h.block_size;
    return m;
  }

  // Like qemu-img check for VDI: every mapped block inside the image, no host block
  // used twice, and the header's allocation count equal to the map's. Open refuses
  // the first two; the count is what can be repaired.
  CheckResult check(const std::string& path, RepairMode repair) const override {
    File file = File::open(path, repair == RepairMode::none ? OpenMode::read_only : OpenMode::read_write);
    OpenOptions lock_options;
    lock_options.writable = repair != RepairMode::none;
    lock_image_file(file, lock_options);
    std::vector<uint8_t> raw(512);
    file.read_exact(0, raw);
    Header h = parse_header(raw, path);
    CheckResult r;
    const uint64_t map_bytes = uint64_t{h.blocks} * 4;
    if (!range_within(h.blocks_offset, map_bytes, file.size()))
      fail(ErrorCategory::corrupt, "{}: VDI block map lies outside the file", path);
    std::vector<uint8_t> map(map_bytes);
    file.read_exact(h.blocks_offset, map);
    std::vector<int64_t> owner(h.blocks, -1);
    uint32_t count = 0;
    const uint64_t stride = uint64_t{h.block_size} + h.block_extra;
    uint64_t end = h.data_offset;
    for (uint32_t i = 0; i < h.blocks; ++i) {
      uint32_t e = load_le32(map.data() + uint64_t{i} * 4);
      if (e >= kBlockZero) continue;
      if (e >= h.blocks) {
        r.messages.push_back(fmt::format("ERROR block {} maps to host block {}, beyond the image's {}", i, e, h.blocks));
        ++r.corruptions;
        continue;
      }
      if (owner[e] >= 0) {
        r.messages.push_back(fmt::format("ERROR host block {} used by blocks {} and {}", e, owner[e], i));
        ++r.corruptions;
      }
      owner[e] = i;
      ++count;
      end = std::max(end, h.data_offset + (e + 1) * stride);
      if (h.data_offset + (e + 1) * stride > file.size()) {
        r.messages.push_back(fmt::format("ERROR block {} (host block {}) lies beyond the end of the file", i, e));
        ++r.corruptions;
      }
    }
    if (count != h.blocks_allocated) {
      if (repair != RepairMode::none) {
        h.blocks_allocated = count;
        std::vector<uint8_t> fixed = encode_header(h);
        file.write_all(0, std::span(fixed.data(), kHeaderOffset + h.header_size));
        file.sync();
        r.messages.push_back(fmt::format("Repaired: allocated block count set to {}", count));
        ++r.corruptions_fixed;
      } else {
        r.messages.push_back(fmt::format("ERROR allocated blocks mismatch, header says {}, map has {}", h.blocks_allocated, count));
        ++r.corruptions;
      }
    }
    r.total_clusters = h.blocks;
    r.allocated_clusters = count;
    r.image_end_offset = end;
    return r;
  }
};

}  // namespace

const FormatDriver& vdi_driver() {
  static const VdiDriver driver;
  return driver;
}

}  // namespace arche::image
