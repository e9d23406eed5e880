// Opening a VMDK (the half of VmdkDevice that reads what the file says): a
// monolithic sparse file or a descriptor with its extents, the footer of a stream,
// the parent of a snapshot chain; and what `image info` shows. Reads, writes and
// write-back are in vmdk_device.cpp.
#include "image/vmdk/vmdk_device.h"

#include <sys/stat.h>

#include <algorithm>
#include <boost/filesystem.hpp>
#include <cstring>

#include "core/bytes.h"
#include "core/endian.h"
#include "core/error.h"
#include "core/log.h"
#include "core/units.h"

namespace arche::image::vmdk {

namespace {

constexpr int kCompressionLevel = 6;  // zlib's default, what VMware and QEMU use

std::pair<uint64_t, uint64_t> file_id(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw_errno(errno, path);
  return {st.st_dev, st.st_ino};
}

}  // namespace

// ---- open ------------------------------------------------------------------------

std::unique_ptr<VmdkDevice> VmdkDevice::open(const std::string& path, const OpenOptions& options, ChainState& chain) {
  std::unique_ptr<VmdkDevice> dev(new VmdkDevice());
  dev->path_ = path;
  dev->writable_ = options.writable;
  dev->barriers_ = !options.no_barriers;
  auto file = std::make_unique<File>(File::open(path, options.writable ? OpenMode::read_write : OpenMode::read_only));
  lock_image_file(*file, options);
  const uint64_t file_size = file->size();
  if (file_size < 4) fail(ErrorCategory::format, "{}: not a VMDK image (file of {} bytes)", path, file_size);
  std::vector<uint8_t> head(std::min<uint64_t>(file_size, 512));
  file->read_exact(0, head);
  const uint32_t magic = load_le32(head.data());
  dev->files_.push_back(std::move(file));
  dev->file_paths_.push_back(path);

  if (magic == kSparseMagic) {
    if (file_size < 512) fail(ErrorCategory::format, "{}: VMDK sparse header is truncated ({} bytes)", path, file_size);
    dev->open_monolithic(*dev->files_[0], parse_sparse_header(head, path), options);
  } else if (magic == kCowdMagic) {
    fail(ErrorCategory::unsupported, "{}: VMFSSPARSE (COWD, ESX 2/3 delta) extents are not supported", path);
  } else if (head.size() >= 8 && load_le64(head.data()) == kSeSparseMagic) {
    fail(ErrorCategory::unsupported, "{}: SESPARSE extents (ESXi 6.5+ snapshots) are not supported", path);
  } else {
    if (file_size > kMaxDescriptorBytes)
      fail(ErrorCategory::format, "{}: not a VMDK image (no sparse header, and too large for a descriptor)", path);
    std::vector<uint8_t> text(file_size);
    dev->files_[0]->read_exact(0, text);
    if (!looks_like_descriptor(text))
      fail(ErrorCategory::format, "{}: not a VMDK image (neither a sparse extent nor a descriptor)", path);
    dev->open_descriptor_file(options, text);
  }

  uint64_t total = 0;
  for (const Extent& e : dev->extents_) {
    total += e.length;
    if (e.sparse) dev->granularity_ = std::max(dev->granularity_, e.sparse->grain_bytes);
  }
  dev->size_ = total;

  if (options.writable) {
    for (const Extent& e : dev->extents_) {
      if (!e.sparse) continue;
      const SparseHeader& h = e.sparse->header;
      if (h.compressed()) {
        bool fresh_stream = dev->extents_.size() == 1 && dev->embedded_descriptor_ && h.has_markers() &&
                            e.sparse->rgd.empty() &&
                            std::all_of(e.sparse->gd.begin(), e.sparse->gd.end(), [](uint32_t v) { return v == 0; });
        if (!fresh_stream)
          fail(ErrorCategory::unsupported,
               "{}: a streamOptimized VMDK cannot be modified: it is written front to back in one pass (arche image "
               "convert -O vmdk -o subformat=streamOptimized); to change the disk, convert it to monolithicSparse or "
               "qcow2 first",
               path);
        SparseHeader stream_header = h;
        stream_header.gd_offset = kGdAtEnd;
        dev->stream_ = std::make_unique<StreamWriter>(*dev->files_[0], stream_header, kCompressionLevel);
      } else if (h.version == 3) {
        fail(ErrorCategory::unsupported,
             "{}: version 3 sparse extents (changed block tracking) can only be opened read-only", path);
      }
    }
  }
  dev->open_parent(options, chain);
  return dev;
}

void VmdkDevice::open_monolithic(const File& file, const SparseHeader& header, const OpenOptions&) {
  if (header.capacity == 0)
    fail(ErrorCategory::unsupported, "{}: sparse extent of capacity 0 (a descriptor inside a sparse file) is not supported",
         path_);
  const uint64_t file_size = file.size();
  const uint64_t desc_offset = header.descriptor_offset * kSector, desc_bytes = header.descriptor_size * kSector;
  std::string split_hint = fmt::format(
      "{}: this sparse extent has no descriptor: it is probably one extent of a split VMDK (twoGbMaxExtentSparse); open "
      "the descriptor file that names it",
      path_);
  if (header.descriptor_offset == 0 || header.descriptor_size == 0) fail(ErrorCategory::format, "{}", split_hint);
  if (desc_offset < kSector || !range_within(desc_offset, desc_bytes, file_size))
    fail(ErrorCategory::corrupt, "{}: embedded descriptor at 0x{:x} ({} bytes) lies outside the file ({} bytes)", path_,
         desc_offset, desc_bytes, file_size);
  std::vector<uint8_t> raw(desc_bytes);
  file.read_exact(desc_offset, raw);
  std::string text(reinterpret_cast<const char*>(raw.data()), raw.size());
  if (size_t nul = text.find('\0'); nul != std::string::npos) text.resize(nul);
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) fail(ErrorCategory::format, "{}", split_hint);
  descriptor_ = parse_descriptor(text, path_);
  descriptor_text_ = std::move(text);
  embedded_descriptor_ = true;
  descriptor_offset_ = desc_offset;
  descriptor_room_ = desc_bytes;

  Extent e;
  e.line.access = Access::rw;
  e.line.sectors = header.capacity;
  e.line.type = ExtentType::sparse;
  e.line.filename = boost::filesystem::path(path_).filename().string();
  // The embedded extent line names this file; its access mode still counts.
  if (descriptor_.extents.size() == 1 && descriptor_.extents[0].type == ExtentType::sparse)
    e.line.access = descriptor_.extents[0].access;
  e.length = header.capacity * kSector;
  e.file = 0;
  add_sparse_extent(e, file, header, path_);
  extents_.push_back(std::move(e));
}

SparseHeader VmdkDevice::read_footer(const File& file, const std::string& what) const {
  const uint64_t file_size = file.size();
  if (file_size < 4 * kSector)
    fail(ErrorCategory::corrupt, "{}: streamOptimized extent is too short to hold its footer (truncated?)", what);
  std::vector<uint8_t> tail(3 * kSector);
  file.read_exact(file_size - tail.size(), tail);
  Marker footer_marker = parse_marker(tail);
  Marker eos = parse_marker(std::span(tail).subspan(2 * kSector));
  if (footer_marker.size != 0 || footer_marker.type != static_cast<uint32_t>(MarkerType::footer) ||
      load_le32(tail.data() + kSector) != kSparseMagic || eos.value != 0 || eos.size != 0 ||
      eos.type != static_cast<uint32_t>(MarkerType::end_of_stream))
    fail(ErrorCategory::corrupt,
         "{}: streamOptimized extent has no valid footer and end-of-stream marker at its end (truncated or incomplete "
         "stream)",
         what);
  SparseHeader footer = parse_sparse_header(std::span(tail).subspan(kSector, kSector), what + " footer");
  if (footer.gd_offset == kGdAtEnd)
    fail(ErrorCategory::corrupt, "{}: streamOptimized footer does not say where the grain directory is", what);
  return footer;
}

void VmdkDevice::add_sparse_extent(Extent& e, const File& file, SparseHeader header, const std::string& what) {
  if (header.gd_offset == kGdAtEnd) {
    SparseHeader footer = read_footer(file, what);
    if (footer.capacity != header.capacity || footer.grain_size != header.grain_size ||
        footer.gtes_per_gt != header.gtes_per_gt)
      fail(ErrorCategory::corrupt, "{}: streamOptimized footer disagrees with the header about the disk's geometry",
           what);
    header = footer;
  }
  const uint64_t file_size = file.size();
  if (header.overhead * kSector > file_size)
    fail(ErrorCategory::corrupt, "{}: file is truncated: {} bytes, but its header says grains start at {}", what,
         file_size, header.overhead * kSector);
  auto s = std::make_unique<Sparse>();
  s->header = header;
  s->grain_bytes = header.grain_bytes();
  const uint64_t entries = header.gd_entries();
  auto read_directory = [&](uint64_t sector, const char* name) {
    const uint64_t offset = sector * kSector;
    if (sector == 0 || !range_within(offset, entries * 4, file_size))
      fail(ErrorCategory::corrupt, "{}: {} at 0x{:x} ({} entries) lies outside the file ({} bytes): truncated or damaged",
           what, name, offset, entries, file_size);
    return read_u32_table(file, offset, entries);
  };
  s->gd = read_directory(header.gd_offset, "grain directory");
  if (header.has_redundant_gd() && header.rgd_offset != 0)
    s->rgd = read_directory(header.rgd_offset, "redundant grain directory");
  s->file_end = align_up(file_size, s->grain_bytes);
  e.sparse = std::move(s);
}

void VmdkDevice::open_descriptor_file(const OpenOptions& options, std::span<const uint8_t> text_bytes) {
  descriptor_text_.assign(reinterpret_cast<const char*>(text_bytes.data()), text_bytes.size());
  descriptor_ = parse_descriptor(descriptor_text_, path_);
  const auto self = file_id(path_);
  std::vector<std::pair<uint64_t, uint64_t>> ids{self};

  // Opens (or reuses) the file an extent names; returns its index in files_.
  auto open_extent_file = [&](const ExtentLine& line, bool exclusive) -> int {
    const std::string resolved = resolve_backing_path(path_, line.filename);
    auto id = file_id(resolved);
    if (id == self)
      fail(ErrorCategory::format, "{}: descriptor loop: extent \"{}\" is the descriptor file itself", path_,
           line.filename);
    for (size_t i = 1; i < ids.size(); ++i) {
      if (ids[i] != id) continue;
      if (exclusive)
        fail(ErrorCategory::format, "{}: sparse extent \"{}\" is named twice in the descriptor", path_, line.filename);
      return static_cast<int>(i);
    }
    const bool rw = options.writable && line.access == Access::rw;
    auto f = std::make_unique<File>(File::open(resolved, rw ? OpenMode::read_write : OpenMode::read_only));
    OpenOptions lock = options;
    lock.writable = rw;
    lock_image_file(*f, lock);
    files_.push_back(std::move(f));
    file_paths_.push_back(resolved);
    ids.push_back(id);
    return static_cast<int>(files_.size() - 1);
  };

  uint64_t start = 0;
  for (const ExtentLine& line : descriptor_.extents) {
    Extent e;
    e.line = line;
    e.start = start;
    e.length = line.sectors * kSector;
    start += e.length;
    const std::string what = fmt::format("{} (extent \"{}\")", path_, line.filename);
    if (line.access == Access::noaccess || line.type == ExtentType::zero) {
      extents_.push_back(std::move(e));
      continue;
    }
    switch (line.type) {
      case ExtentType::flat:
      case ExtentType::vmfs:
      case ExtentType::vmfs_raw: {
        e.file = open_extent_file(line, false);
        e.file_offset = line.offset * kSector;
        const File& f = file_of(e);
        if (!f.is_block_device() && !range_within(e.file_offset, e.length, f.size()))
          fail(ErrorCategory::corrupt, "{}: the extent file holds {} bytes, but the descriptor needs {} from offset {}",
               what, f.size(), e.length, e.file_offset);
        break;
      }
      case ExtentType::sparse: {
        e.file = open_extent_file(line, true);
        const File& f = file_of(e);
        std::vector<uint8_t> head(std::min<uint64_t>(f.size(), 512));
        f.read_exact(0, head);
        if (looks_like_descriptor(head))
          fail(ErrorCategory::format, "{}: the extent is itself a descriptor (nested descriptors are not supported)", what);
        if (head.size() < 512) fail(ErrorCategory::format, "{}: sparse extent is truncated ({} bytes)", what, f.size());
        if (load_le32(head.data()) == kCowdMagic)
          fail(ErrorCategory::unsupported, "{}: COWD sparse extents are not supported", what);
        SparseHeader h = parse_sparse_header(head, what);
        if (h.capacity < line.sectors)
          fail(ErrorCategory::corrupt, "{}: the descriptor says {} sectors, the extent's header only {}", what,
               line.sectors, h.capacity);
        add_sparse_extent(e, f, h, what);
        break;
      }
      default:
        fail(ErrorCategory::unsupported, "{}: {} extents are not supported", what, to_string(line.type));
    }
    extents_.push_back(std::move(e));
  }
}

void VmdkDevice::open_parent(const OpenOptions& options, ChainState& chain) {
  if (!descriptor_.parent_hint) return;
  parent_path_ = resolve_backing_path(path_, *descriptor_.parent_hint);
  if (!options.open_backing) return;
  backing_ = open_backing(parent_path_, "vmdk", options, chain);
  auto* parent = dynamic_cast<VmdkDevice*>(backing_.get());
  if (parent && descriptor_.parent_cid != 0xffffffff && parent->cid() != descriptor_.parent_cid)
    fail(ErrorCategory::corrupt,
         "{}: its parent {} was changed after this child disk was made (parentCID {:08x}, the parent's CID is {:08x}); "
         "reading through it would mix old and new data",
         path_, parent_path_, descriptor_.parent_cid, parent->cid());
}

VmdkDevice::~VmdkDevice() {
  try {
    close();
  } catch (const std::exception& e) {
    warn("{}: could not close cleanly: {}", path_, e.what());
  }
}

std::string VmdkDevice::subformat() const {
  if (embedded_descriptor_ && extents_.size() == 1 && extents_[0].sparse)
    return extents_[0].sparse->header.compressed() ? "streamOptimized" : "monolithicSparse";
  return descriptor_.create_type;
}

// ---- info ------------------------------------------------------------------------

ImageInfo VmdkDevice::info() const {
  std::shared_lock lock(lock_);
  ImageInfo i;
  i.filename = path_;
  i.format = "vmdk";
  i.virtual_size = size_;
  for (const auto& f : files_) i.actual_size += f->allocated_bytes();
  Json extents = Json::array();
  for (const Extent& e : extents_) {
    Json x{{"filename", e.file >= 0 ? file_paths_[static_cast<size_t>(e.file)] : ""},
           {"format", to_string(e.line.type)},
           {"access", to_string(e.line.access)},
           {"virtual-size", e.length}};
    if (e.sparse) {
      const SparseHeader& h = e.sparse->header;
      if (!i.cluster_size) i.cluster_size = e.sparse->grain_bytes;
      x["cluster-size"] = e.sparse->grain_bytes;
      x["compressed"] = h.compressed();
      x["version"] = h.version;
      x["zeroed-grain"] = h.has_zero_grain();
      x["redundant-grain-directory"] = !e.sparse->rgd.empty();
      i.dirty |= h.unclean_shutdown != 0;
    }
    if (e.line.type == ExtentType::flat) x["offset"] = e.file_offset;
    extents.push_back(std::move(x));
  }
  if (descriptor_.parent_hint) {
    i.backing_file = *descriptor_.parent_hint;
    i.backing_format = "vmdk";
    i.full_backing_file = parent_path_;
  }
  i.format_specific = Json{{"create-type", descriptor_.create_type},
                           {"subformat", subformat()},
                           {"cid", descriptor_.cid},
                           {"parent-cid", descriptor_.parent_cid},
                           {"extents", extents}};
  if (auto hw = descriptor_.ddb_value("ddb.virtualHWVersion")) i.format_specific["hardware-version"] = *hw;
  if (auto adapter = descriptor_.ddb_value("ddb.adapterType")) i.format_specific["adapter-type"] = *adapter;
  return i;
}
}  // namespace arche::image::vmdk
