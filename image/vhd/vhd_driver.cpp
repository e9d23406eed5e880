#include "image/vhd/vhd_driver.h"

#include <sys/stat.h>

#include <boost/filesystem.hpp>

#include <algorithm>
#include <cstring>
#include <ctime>

#include "core/error.h"
#include "core/units.h"
#include "image/vhd/vhd_device.h"
#include "image/vhd/vhd_format.h"

namespace arche::image {

namespace vhd {
CheckResult check_vhd(const std::string& path, RepairMode repair);
}

namespace {

using namespace vhd;

struct VhdCreateParams {
  DiskType type = DiskType::dynamic;
  bool force_size = false;
  uint32_t block_size = vhd::kDefaultBlockSize;  // qualified: vdi has one too
};

bool parse_bool(const std::string& key, const std::string& value) {
  if (value == "on" || value == "true" || value == "yes") return true;
  if (value == "off" || value == "false" || value == "no") return false;
  fail(ErrorCategory::usage, "vpc: option {} must be on or off (got '{}')", key, value);
}

VhdCreateParams parse_params(const CreateOptions& options) {
  VhdCreateParams p;
  for (const auto& [key, value] : options.options) {
    if (key == "subformat") {
      if (value == "dynamic") p.type = DiskType::dynamic;
      else if (value == "fixed") p.type = DiskType::fixed;
      else fail(ErrorCategory::usage, "vpc: subformat must be dynamic or fixed (got '{}')", value);
    } else if (key == "force_size") {
      p.force_size = parse_bool(key, value);
    } else if (key == "block_size") {
      uint64_t b = parse_size(value, "block_size");
      if (b < kSector || b > 256 * MiB || !is_power_of_two(b))
        fail(ErrorCategory::usage, "vpc: block_size must be a power of two from 512 to 256M (got {})", value);
      p.block_size = static_cast<uint32_t>(b);
    } else {
      fail(ErrorCategory::usage, "vpc: unknown option '{}' (known: subformat, force_size, block_size)", key);
    }
  }
  if (!options.backing_file.empty()) {
    if (p.type == DiskType::fixed) fail(ErrorCategory::usage, "vpc: a fixed disk cannot have a parent");
    if (!options.backing_format.empty() && driver_for(options.backing_format).name() != "vpc")
      fail(ErrorCategory::usage, "vpc: the parent of a differencing disk must be a VHD (got {})", options.backing_format);
    p.type = DiskType::differencing;
  }
  return p;
}

// Footer size fields and geometry for a disk of at least `bytes` bytes. Without
// force_size the size is rounded up until a CHS geometry covers it exactly (what
// Virtual PC and qemu do), so every reader sees the same size; with force_size, or
// beyond what CHS can express, the geometry is the maximum, which tells readers to
// take the current size as it is.
void size_footer(Footer& f, uint64_t bytes, bool force_size) {
  uint64_t sectors = div_round_up(bytes, kSector);
  if (sectors > kMaxSectors)
    fail(ErrorCategory::usage, "vpc: {} bytes is larger than the format's 2040 GiB", bytes);
  Geometry max{65535, 16, 255};
  if (force_size || sectors >= kMaxGeometrySectors) {
    f.geometry = max;
  } else {
    Geometry g = geometry_for(sectors);
    for (uint64_t extra = 1; g.total_sectors() < sectors; ++extra) g = geometry_for(sectors + extra);
    if (g.total_sectors() == kMaxGeometrySectors) {
      f.geometry = max;
    } else {
      f.geometry = g;
      sectors = g.total_sectors();
    }
  }
  f.current_size = f.original_size = sectors * kSector;
}

Footer new_footer(DiskType type) {
  Footer f;
  f.disk_type = type;
  f.timestamp = static_cast<uint32_t>(static_cast<uint64_t>(std::time(nullptr)) - kEpochOffset);
  std::memcpy(f.creator_app.data(), "arch", 4);
  f.creator_version = 0x00000001;  // arche 0.1
  f.creator_host_os = kPlatformWi2k;  // "Wi2k": the specification knows only Windows and Macintosh
  f.unique_id = foreign::random_uuid();
  f.data_offset = type == DiskType::fixed ? UINT64_MAX : kFooterSize;
  return f;
}

std::string boost_absolute(const std::string& path) { return boost::filesystem::absolute(path).lexically_normal().string(); }

std::string to_windows(std::string path) {
  std::replace(path.begin(), path.end(), '/', '\\');
  return path;
}

std::string file_url(const std::string& path) {
  std::string out = "file://";
  for (unsigned char c : path) {
    if (std::isalnum(c) || std::strchr("/-._~", c)) out += static_cast<char>(c);
    else out += fmt::format("%{:02X}", c);
  }
  return out;
}

class VhdDriver final : public FormatDriver {
 public:
  std::string name() const override { return "vpc"; }

  int probe(std::span<const uint8_t> head) const override {
    // Dynamic and differencing disks start with the footer copy. Fixed disks have
    // only the footer at the end and, as with qemu, need -f vpc.
    return head.size() >= 8 && std::memcmp(head.data(), "conectix", 8) == 0 ? 100 : 0;
  }

  std::unique_ptr<BlockDevice> open(const std::string& path, const OpenOptions& options,
                                    ChainState& chain) const override {
    return VhdDevice::open(path, options, chain);
  }

  std::vector<CreateOptionInfo> create_options() const override {
    return {{"subformat", "dynamic|fixed", "dynamic", "sparse, or the whole disk allocated (fixed: -f vpc to read it)"},
            {"force_size", "on|off", "off", "keep the exact size instead of rounding it to a CHS geometry, as Hyper-V does"},
            {"block_size", "512 to 256M, a power of two", "2M", "allocation unit of a dynamic disk"}};
  }

  void create(const std::string& path, const CreateOptions& options) const override {
    VhdCreateParams p = parse_params(options);
    Footer f = new_footer(p.type);
    DynamicHeader h;
    std::string parent_path;
    if (p.type == DiskType::differencing) {
      parent_path = resolve_backing_path(path, options.backing_file);
      OpenOptions o;
      o.format = "vpc";
      o.open_backing = false;
      auto parent = open_image(parent_path, o);
      const Footer& pf = dynamic_cast<VhdDevice&>(*parent).footer();
      // The child describes the same disk as its parent.
      f.geometry = pf.geometry;
      f.current_size = f.original_size = pf.current_size;
      std::memcpy(f.creator_app.data(), pf.creator_app.data(), 4);  // keeps qemu's size rule identical
      if (virtual_size(f) != parent->size()) size_footer(f, parent->size(), false);
      h.parent_unique_id = pf.unique_id;
      struct stat st {};
      if (::stat(parent_path.c_str(), &st) == 0 && static_cast<uint64_t>(st.st_mtime) > kEpochOffset)
        h.parent_timestamp = static_cast<uint32_t>(static_cast<uint64_t>(st.st_mtime) - kEpochOffset);
      std::string base = options.backing_file.substr(options.backing_file.find_last_of('/') + 1);
      h.parent_name = base;
    } else {
      size_footer(f, options.size, p.force_size);
    }

    File file = File::open(path, OpenMode::create_truncate);
    if (file.is_block_device()) fail(ErrorCategory::unsupported, "vpc: {} is a block device; create the image in a file", path);
    if (p.type == DiskType::fixed) {
      file.truncate(f.current_size + kFooterSize);
      file.write_all(f.current_size, encode_footer(f));
      return;
    }
    h.block_size = p.block_size;
    h.max_table_entries = static_cast<uint32_t>(div_round_up(f.current_size, h.block_size));
    h.table_offset = kFooterSize + kDynamicHeaderSize;
    uint64_t end = align_up(h.table_offset + uint64_t{h.max_table_entries} * 4, kSector);
    std::vector<std::pair<uint64_t, std::string>> locator_data;
    if (p.type == DiskType::differencing) {
      std::string absolute = boost_absolute(parent_path);
      std::string relative = options.backing_file;
      if (!relative.empty() && relative[0] != '/' && relative.rfind("./", 0) != 0 && relative.rfind("../", 0) != 0)
        relative = "./" + relative;
      std::vector<std::pair<uint32_t, std::string>> entries;
      std::string w2ru, w2ku;
      foreign::utf16_to_bytes(foreign::utf8_to_utf16(to_windows(relative)), false, w2ru);
      foreign::utf16_to_bytes(foreign::utf8_to_utf16(to_windows(absolute)), false, w2ku);
      if (relative[0] != '/') entries.emplace_back(kPlatformW2ru, w2ru);
      entries.emplace_back(kPlatformW2ku, w2ku);
      entries.emplace_back(kPlatformMacX, file_url(absolute));
      for (size_t k = 0; k < entries.size(); ++k) {
        ParentLocator& l = h.locators[k];
        l.platform = entries[k].first;
        l.data_length = static_cast<uint32_t>(entries[k].second.size());
        uint64_t space = align_up(std::max<uint64_t>(l.data_length, 1), kSector);
        l.data_space = static_cast<uint32_t>(space / kSector);
        l.data_offset = end;
        locator_data.emplace_back(end, entries[k].second);
        end += space;
      }
    }
    auto footer = encode_footer(f);
    file.write_all(0, footer);
    file.write_all(kFooterSize, encode_dynamic_header(h));
    std::vector<uint8_t> bat(end - h.table_offset, 0);
    std::fill(bat.begin(), bat.begin() + uint64_t{h.max_table_entries} * 4, 0xff);
    for (const auto& [offset, data] : locator_data)
      std::memcpy(bat.data() + (offset - h.table_offset), data.data(), data.size());
    file.write_all(h.table_offset, bat);
    file.write_all(end, footer);
  }

  Measurement measure(BlockDevice* source, uint64_t size, const CreateOptions& options) const override {
    VhdCreateParams p = parse_params(options);
    Footer f;
    size_footer(f, size, p.force_size);
    if (p.type == DiskType::fixed) return {f.current_size + kFooterSize, f.current_size + kFooterSize};
    const uint64_t blocks = div_round_up(f.current_size, p.block_size);
    const uint64_t metadata = kFooterSize + kDynamicHeaderSize + align_up(blocks * 4, kSector) + kFooterSize;
    const uint64_t per_block = bitmap_bytes(p.block_size) + p.block_size;
    Measurement m;
    m.fully_allocated = metadata + blocks * per_block;
    uint64_t used = blocks;
    if (source) {
      used = 0;
      uint64_t last = UINT64_MAX;
      for (const Extent& e : source->map()) {
        if (e.kind != ExtentKind::data) continue;
        for (uint64_t b = e.offset / p.block_size; b <= (e.offset + e.length - 1) / p.block_size; ++b) {
          if (b != last) ++used;
          last = b;
        }
      }
    }
    m.required = metadata + used * per_block;
    return m;
  }

  CheckResult check(const std::string& path, RepairMode repair) const override { return check_vhd(path, repair); }
};

}  // namespace

const FormatDriver& vhd_driver() {
  static const VhdDriver driver;
  return driver;
}

}  // namespace arche::image
