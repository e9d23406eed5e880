#include "image/vmdk/vmdk_device.h"

#include <sys/stat.h>

#include <algorithm>
#include <boost/filesystem.hpp>
#include <cstring>
#include <random>

#include "core/bytes.h"
#include "core/endian.h"
#include "core/error.h"
#include "core/log.h"
#include "core/units.h"

namespace arche::image::vmdk {

namespace {

constexpr size_t kMaxCachedTables = 16384;  // 32 MiB of 512-entry tables: 512 GiB of disk
constexpr int kCompressionLevel = 6;        // zlib's default, what VMware and QEMU use

std::pair<uint64_t, uint64_t> file_id(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw_errno(errno, path);
  return {st.st_dev, st.st_ino};
}

std::vector<uint8_t>& zero_buffer(uint64_t size) {
  thread_local std::vector<uint8_t> zeros;
  if (zeros.size() < size) zeros.assign(size, 0);
  return zeros;
}

uint32_t random_cid() {
  std::random_device rd;
  for (;;) {
    uint32_t v = rd();
    if (v < 0xfffffffe) return v;
  }
}

std::vector<uint32_t> read_u32_table(const File& f, uint64_t offset, uint64_t entries) {
  std::vector<uint8_t> raw(entries * 4);
  f.read_exact(offset, raw);
  std::vector<uint32_t> out(entries);
  for (uint64_t i = 0; i < entries; ++i) out[i] = load_le32(raw.data() + i * 4);
  return out;
}

std::vector<uint8_t> encode_u32_table(const std::vector<uint32_t>& table) {
  std::vector<uint8_t> raw(table.size() * 4);
  for (size_t i = 0; i < table.size(); ++i) store_le32(raw.data() + i * 4, table[i]);
  return raw;
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

// ---- lookups ---------------------------------------------------------------------

size_t VmdkDevice::extent_index(uint64_t offset) const {
  auto it = std::upper_bound(extents_.begin(), extents_.end(), offset,
                             [](uint64_t v, const Extent& e) { return v < e.start; });
  return static_cast<size_t>(it - extents_.begin()) - 1;
}

VmdkDevice::GtRef VmdkDevice::grain_table(const Extent& e, uint64_t gd_index) {
  Sparse& s = *e.sparse;
  std::lock_guard lock(s.cache_mutex);
  if (auto it = s.gts.find(gd_index); it != s.gts.end()) return it->second;
  const File& f = file_of(e);
  const uint64_t offset = uint64_t{s.gd[gd_index]} * kSector;
  const uint64_t bytes = s.header.gt_bytes();
  if (offset < kSector || !range_within(offset, bytes, f.size()))
    fail(ErrorCategory::corrupt, "{}: grain table {} at 0x{:x} lies outside the file ({} bytes); check with: arche image check {}",
         file_paths_[static_cast<size_t>(e.file)], gd_index, offset, f.size(), path_);
  auto gt = std::make_shared<GrainTable>();
  gt->entries = read_u32_table(f, offset, s.header.gtes_per_gt);
  if (s.gts.size() >= kMaxCachedTables) std::erase_if(s.gts, [](const auto& kv) { return !kv.second->dirty; });
  s.gts.emplace(gd_index, gt);
  return gt;
}

VmdkDevice::Kind VmdkDevice::classify(const Extent& e, uint32_t gte, uint64_t guest) const {
  if (gte == 0) return Kind::unallocated;
  // GTE 1 is the zeroed grain of version 2 extents. Sector 1 always holds header
  // or descriptor, never guest data, so it reads as zeros whatever the flags say.
  if (gte == kGteZero) return Kind::zero;
  const SparseHeader& h = e.sparse->header;
  if (gte < h.overhead)
    fail(ErrorCategory::corrupt, "{}: grain for guest offset {} points into the metadata (sector {}); check with: arche image check {}",
         path_, guest, gte, path_);
  return h.compressed() ? Kind::compressed : Kind::data;
}

VmdkDevice::Run VmdkDevice::lookup(uint64_t offset, uint64_t max_length) {
  const Extent& e = extents_[extent_index(offset)];
  const uint64_t rel = offset - e.start;
  uint64_t limit = std::min(max_length, e.length - rel);
  if (e.line.access == Access::noaccess) return {Kind::data, limit, 0, &e};
  if (e.line.type == ExtentType::zero) return {Kind::zero, limit, 0, &e};
  if (!e.sparse) return {Kind::data, limit, e.file_offset + rel, &e};

  const Sparse& s = *e.sparse;
  const uint64_t coverage = s.header.gt_coverage();
  const uint64_t gd_index = rel / coverage;
  limit = std::min(limit, (gd_index + 1) * coverage - rel);
  if (s.gd[gd_index] == 0) return {Kind::unallocated, limit, 0, &e};
  GtRef gt = grain_table(e, gd_index);
  const uint64_t grain = s.grain_bytes;
  const uint64_t index = (rel % coverage) / grain;
  const uint32_t gte = gt->entries[index];
  const Kind kind = classify(e, gte, offset);
  const uint64_t in_grain = rel % grain;
  uint64_t length = grain - in_grain;
  if (kind != Kind::compressed) {
    for (uint64_t i = index + 1; length < limit && i < gt->entries.size(); ++i) {
      const uint32_t next = gt->entries[i];
      if (classify(e, next, offset + length) != kind) break;
      if (kind == Kind::data && uint64_t{next} * kSector != uint64_t{gte} * kSector + (i - index) * grain) break;
      length += grain;
    }
  }
  uint64_t host = 0;
  if (kind == Kind::data) host = uint64_t{gte} * kSector + in_grain;
  if (kind == Kind::compressed) host = uint64_t{gte} * kSector;
  return {kind, std::min(length, limit), host, &e};
}

// ---- reads -----------------------------------------------------------------------

void VmdkDevice::read_compressed_grain(const Extent& e, uint64_t host, uint64_t grain_rel, std::span<uint8_t> grain) {
  {
    std::lock_guard lock(decompressed_mutex_);
    if (decompressed_extent_ == &e && decompressed_host_ == host && decompressed_.size() == grain.size()) {
      std::memcpy(grain.data(), decompressed_.data(), grain.size());
      return;
    }
  }
  const Sparse& s = *e.sparse;
  const File& f = file_of(e);
  const std::string& where = file_paths_[static_cast<size_t>(e.file)];
  const uint64_t max_packed = 2 * s.grain_bytes + 1024;  // deflate never grows a grain beyond this
  thread_local std::vector<uint8_t> packed;
  uint64_t data_at = host, data_len = max_packed;
  if (s.header.has_markers()) {
    uint8_t marker[12];
    if (f.read_some(host, marker) != sizeof(marker))
      fail(ErrorCategory::corrupt, "{}: grain marker at 0x{:x} lies outside the file (truncated?)", where, host);
    const uint64_t lba = load_le64(marker);
    const uint32_t size = load_le32(marker + 8);
    if (size == 0 || size > max_packed)
      fail(ErrorCategory::corrupt, "{}: grain marker at 0x{:x} gives an invalid compressed size of {} bytes", where,
           host, size);
    if (lba != grain_rel / kSector)
      fail(ErrorCategory::corrupt, "{}: grain marker at 0x{:x} is for sector {}, but the grain table uses it for sector {}",
           where, host, lba, grain_rel / kSector);
    data_at = host + sizeof(marker);
    data_len = size;
  }
  packed.resize(data_len);
  const size_t got = f.read_some(data_at, packed);
  if (s.header.has_markers() && got < data_len)
    fail(ErrorCategory::corrupt, "{}: compressed grain at 0x{:x} is cut short (file truncated?)", where, host);
  size_t produced;
  try {
    produced = decompress_grain(std::span(packed.data(), got), grain);
  } catch (const Error& err) {
    fail(ErrorCategory::corrupt, "{}: grain at 0x{:x}: {}", where, host, err.what());
  }
  const uint64_t needed = std::min<uint64_t>(grain.size(), e.length - grain_rel);
  if (produced < needed)
    fail(ErrorCategory::corrupt, "{}: compressed grain at 0x{:x} holds {} bytes, {} expected", where, host, produced,
         needed);
  std::memset(grain.data() + produced, 0, grain.size() - produced);
  std::lock_guard lock(decompressed_mutex_);
  decompressed_.assign(grain.begin(), grain.end());
  decompressed_extent_ = &e;
  decompressed_host_ = host;
}

void VmdkDevice::read_grain(const Run& r, uint64_t offset, std::span<uint8_t> out) {
  const Extent& e = *r.extent;
  const File& f = file_of(e);
  const size_t got = f.read_some(r.host, out);
  if (got == out.size()) return;
  // A sparse file may end inside its last grain (the rest reads as zeros, as QEMU
  // writes such files); a grain missing altogether, or a flat extent cut short, is
  // damage.
  bool tolerated = false;
  if (e.sparse && got > 0) {
    const uint64_t grain = e.sparse->grain_bytes;
    const uint64_t base = r.host - (offset - e.start) % grain;  // host start of the run's first grain
    const uint64_t file_end = r.host + got;
    tolerated = (file_end - base) % grain != 0 && r.host + out.size() <= base + align_up(file_end - base, grain);
  }
  if (!tolerated)
    fail(ErrorCategory::corrupt, "{}: data for guest offset {} at 0x{:x} lies outside the file {} (truncated?)", path_,
         offset + got, r.host + got, file_paths_[static_cast<size_t>(e.file)]);
  std::memset(out.data() + got, 0, out.size() - got);
}

void VmdkDevice::read(uint64_t offset, std::span<uint8_t> out) {
  check_request(offset, out.size(), "read");
  if (stream_) fail(ErrorCategory::usage, "{}: a streamOptimized image cannot be read while it is being written", path_);
  std::shared_lock lock(lock_);
  size_t pos = 0;
  while (pos < out.size()) {
    const uint64_t at = offset + pos;
    Run r = lookup(at, out.size() - pos);
    std::span<uint8_t> part = out.subspan(pos, r.length);
    if (r.extent->line.access == Access::noaccess)
      fail(ErrorCategory::permission, "{}: guest offset {} lies in a NOACCESS extent", path_, at);
    switch (r.kind) {
      case Kind::unallocated: read_from_backing(at, part); break;
      case Kind::zero: std::memset(part.data(), 0, part.size()); break;
      case Kind::data: read_grain(r, at, part); break;
      case Kind::compressed: {
        const Extent& e = *r.extent;
        thread_local std::vector<uint8_t> grain;
        grain.resize(e.sparse->grain_bytes);
        const uint64_t grain_rel = align_down(at - e.start, e.sparse->grain_bytes);
        read_compressed_grain(e, r.host, grain_rel, grain);
        std::memcpy(part.data(), grain.data() + (at - e.start - grain_rel), part.size());
        break;
      }
    }
    pos += r.length;
  }
}

LayerStatus VmdkDevice::layer_status(uint64_t offset, uint64_t max_length) {
  check_request(offset, max_length, "status");
  if (stream_) fail(ErrorCategory::usage, "{}: a streamOptimized image cannot be read while it is being written", path_);
  std::shared_lock lock(lock_);
  Run r = lookup(offset, max_length);
  const bool in_main_file = r.extent->file == 0;
  switch (r.kind) {
    case Kind::unallocated: return {ExtentKind::unallocated, r.length, std::nullopt};
    case Kind::zero: return {ExtentKind::zero, r.length, std::nullopt};
    case Kind::data:
      if (r.extent->line.access == Access::noaccess) return {ExtentKind::data, r.length, std::nullopt};
      return {ExtentKind::data, r.length, in_main_file ? std::optional<uint64_t>(r.host) : std::nullopt};
    case Kind::compressed: return {ExtentKind::data, r.length, std::nullopt, true};
  }
  return {ExtentKind::unallocated, r.length, std::nullopt};
}

// ---- writes ----------------------------------------------------------------------

void VmdkDevice::require_writable(const char* op) const {
  if (!writable_) fail(ErrorCategory::usage, "{}: {} on an image opened read-only", path_, op);
  if (closed_) fail(ErrorCategory::internal, "{}: {} after close", path_, op);
}

void VmdkDevice::barrier() {
  if (!barriers_) return;
  for (const auto& f : files_)
    if (f->writable()) f->sync_data();
}

void VmdkDevice::write_headers(bool unclean) {
  for (Extent& e : extents_) {
    if (!e.sparse || e.sparse->header.compressed()) continue;
    e.sparse->header.unclean_shutdown = unclean ? 1 : 0;
    file_of(e).write_all(0, encode_sparse_header(e.sparse->header));
  }
}

// The first change after opening gives the disk a new content ID (children record
// their parent's CID and so notice the change) and marks sparse headers unclean
// until close, as VMware does.
void VmdkDevice::mark_modified() {
  if (modified_) return;
  const uint32_t cid = random_cid();
  std::string text = replace_cid(descriptor_text_, cid);
  if (embedded_descriptor_) {
    if (text.size() > descriptor_room_)
      fail(ErrorCategory::format, "{}: the descriptor no longer fits its {} bytes", path_, descriptor_room_);
    std::vector<uint8_t> raw(std::max(text.size(), descriptor_text_.size()), 0);
    std::memcpy(raw.data(), text.data(), text.size());
    files_[0]->write_all(descriptor_offset_, raw);
  } else {
    files_[0]->write_all(0, std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
    files_[0]->truncate(text.size());
  }
  descriptor_text_ = std::move(text);
  descriptor_.cid = cid;
  write_headers(true);
  barrier();
  modified_ = true;
}

uint64_t VmdkDevice::allocate(Extent& e, uint64_t bytes) {
  Sparse& s = *e.sparse;
  const uint64_t host = s.file_end;
  const uint64_t end = host + align_up(bytes, s.grain_bytes);
  if (end / kSector > 0xffffffffull)
    fail(ErrorCategory::no_space, "{}: sparse extent {} is full (grain offsets are limited to 2 TiB)", path_,
         file_paths_[static_cast<size_t>(e.file)]);
  s.file_end = end;
  return host;
}

VmdkDevice::GtRef VmdkDevice::grain_table_for_write(Extent& e, uint64_t gd_index) {
  Sparse& s = *e.sparse;
  if (s.gd[gd_index] != 0) return grain_table(e, gd_index);
  // No table yet (images made without preallocated tables): a new one at the end
  // of the file, with its redundant copy beside it.
  const uint64_t table = s.header.gt_sectors() * kSector;
  const uint64_t host = allocate(e, s.rgd.empty() ? table : 2 * table);
  s.gd[gd_index] = static_cast<uint32_t>(host / kSector);
  if (!s.rgd.empty()) s.rgd[gd_index] = static_cast<uint32_t>((host + table) / kSector);
  s.gd_dirty = true;
  auto gt = std::make_shared<GrainTable>();
  gt->entries.assign(s.header.gtes_per_gt, 0);
  gt->dirty = true;
  std::lock_guard lock(s.cache_mutex);
  s.gts[gd_index] = gt;
  return gt;
}

void VmdkDevice::write_extent_locked(Extent& e, uint64_t rel, std::span<const uint8_t> data) {
  if (e.line.access != Access::rw)
    fail(ErrorCategory::permission, "{}: guest offset {} lies in a {} extent", path_, e.start + rel,
         to_string(e.line.access));
  if (e.line.type == ExtentType::zero)
    fail(ErrorCategory::unsupported, "{}: guest offset {} lies in a ZERO extent, which cannot hold data", path_,
         e.start + rel);
  const File& f = file_of(e);
  if (!e.sparse) {
    f.write_all(e.file_offset + rel, data);
    return;
  }
  Sparse& s = *e.sparse;
  const uint64_t grain = s.grain_bytes;
  const uint64_t coverage = s.header.gt_coverage();
  const uint64_t end = rel + data.size();
  uint64_t pos = rel;
  while (pos < end) {
    const uint64_t gd_index = pos / coverage;
    const uint64_t segment_end = std::min(end, (gd_index + 1) * coverage);
    GtRef gt = grain_table_for_write(e, gd_index);
    while (pos < segment_end) {
      const uint64_t index = (pos % coverage) / grain;
      const uint64_t grain_start = align_down(pos, grain);
      const uint64_t grain_end = std::min(grain_start + grain, e.length);
      const Kind kind = classify(e, gt->entries[index], e.start + pos);
      if (kind == Kind::data) {
        const uint64_t n = std::min(segment_end, grain_end) - pos;
        f.write_all(uint64_t{gt->entries[index]} * kSector + (pos - grain_start), data.subspan(pos - rel, n));
        pos += n;
        continue;
      }
      if (pos == grain_start && grain_end <= segment_end) {
        // A run of whole grains without storage: one allocation, one write.
        uint64_t count = 1;
        while (grain_start + (count + 1) * grain <= segment_end ||
               (grain_start + count * grain < segment_end && segment_end == e.length)) {
          if (classify(e, gt->entries[index + count], e.start + grain_start + count * grain) == Kind::data) break;
          ++count;
        }
        const uint64_t run_end = std::min(grain_start + count * grain, e.length);
        const uint64_t host = allocate(e, count * grain);
        if (run_end - grain_start == count * grain) {
          f.write_all(host, data.subspan(pos - rel, run_end - pos));
        } else {  // the extent's short last grain: stored whole, zero-padded
          std::vector<uint8_t> buf(count * grain, 0);
          std::memcpy(buf.data(), data.data() + (pos - rel), run_end - pos);
          f.write_all(host, buf);
        }
        for (uint64_t k = 0; k < count; ++k)
          gt->entries[index + k] = static_cast<uint32_t>((host + k * grain) / kSector);
        gt->dirty = true;
        pos = run_end;
        continue;
      }
      // Part of a grain without storage: complete it from the parent (or zeros).
      thread_local std::vector<uint8_t> buf;
      buf.assign(grain, 0);
      if (kind == Kind::unallocated && backing_)
        read_from_backing(e.start + grain_start, std::span(buf.data(), grain_end - grain_start));
      const uint64_t n = std::min(segment_end, grain_end) - pos;
      std::memcpy(buf.data() + (pos - grain_start), data.data() + (pos - rel), n);
      const uint64_t host = allocate(e, grain);
      f.write_all(host, buf);
      gt->entries[index] = static_cast<uint32_t>(host / kSector);
      gt->dirty = true;
      pos += n;
    }
  }
}

bool VmdkDevice::allocated_in_place(uint64_t offset, uint64_t length) {
  if (!modified_) return false;
  for (uint64_t pos = offset; pos < offset + length;) {
    Run r = lookup(pos, offset + length - pos);
    if (r.kind != Kind::data || r.extent->line.access != Access::rw || r.extent->line.type == ExtentType::zero)
      return false;
    pos += r.length;
  }
  return true;
}

// The common case of a conversion: whole grains, none of them stored yet, in one
// sparse extent. Their room is reserved under the lock, the data written without
// it (so several writers copy in parallel), and the grain tables updated under the
// lock again. Readers see the grains only once the entries point at written data.
bool VmdkDevice::write_fresh_grains(std::unique_lock<std::shared_mutex>& lock, uint64_t offset,
                                    std::span<const uint8_t> data) {
  Extent& e = extents_[extent_index(offset)];
  if (!e.sparse || e.line.access != Access::rw || e.line.type != ExtentType::sparse) return false;
  Sparse& s = *e.sparse;
  const uint64_t grain = s.grain_bytes, coverage = s.header.gt_coverage();
  const uint64_t rel = offset - e.start;
  if (rel % grain || data.size() % grain || rel + data.size() > e.length) return false;
  const uint64_t count = data.size() / grain;
  for (uint64_t k = 0; k < count; ++k) {
    const uint64_t at = rel + k * grain;
    if (s.gd[at / coverage] == 0) continue;  // no table yet: nothing stored
    GtRef gt = grain_table(e, at / coverage);
    const Kind kind = classify(e, gt->entries[(at % coverage) / grain], e.start + at);
    if (kind != Kind::unallocated && kind != Kind::zero) return false;
  }
  for (uint64_t at = rel; at < rel + data.size(); at = align_down(at, coverage) + coverage)
    grain_table_for_write(e, at / coverage);  // tables exist before the data is written
  const uint64_t host = allocate(e, data.size());
  lock.unlock();
  file_of(e).write_all(host, data);
  lock.lock();
  for (uint64_t k = 0; k < count; ++k) {
    const uint64_t at = rel + k * grain;
    // Looked up again: a clean table may have left the cache meanwhile.
    GtRef gt = grain_table(e, at / coverage);
    gt->entries[(at % coverage) / grain] = static_cast<uint32_t>((host + k * grain) / kSector);
    gt->dirty = true;
  }
  return true;
}

void VmdkDevice::write(uint64_t offset, std::span<const uint8_t> data) {
  require_writable("write");
  check_request(offset, data.size(), "write");
  if (data.empty()) return;
  if (stream_) {
    stream_->write(offset, data);
    return;
  }
  {
    std::shared_lock lock(lock_);
    if (allocated_in_place(offset, data.size())) {
      for (uint64_t pos = 0; pos < data.size();) {
        Run r = lookup(offset + pos, data.size() - pos);
        file_of(*r.extent).write_all(r.host, data.subspan(pos, r.length));
        pos += r.length;
      }
      return;
    }
  }
  std::unique_lock lock(lock_);
  mark_modified();
  if (write_fresh_grains(lock, offset, data)) return;
  for (uint64_t pos = offset; pos < offset + data.size();) {
    Extent& e = extents_[extent_index(pos)];
    const uint64_t n = std::min(offset + data.size(), e.start + e.length) - pos;
    write_extent_locked(e, pos - e.start, data.subspan(pos - offset, n));
    pos += n;
  }
  size_t cached = 0;
  for (const Extent& e : extents_)
    if (e.sparse) cached += e.sparse->gts.size();
  if (cached > kMaxCachedTables) flush_metadata(false);
}

size_t VmdkDevice::packed_bound() const { return stream_ ? stream_->packed_bound() : 0; }

size_t VmdkDevice::pack(std::span<const uint8_t> block, std::span<uint8_t> out) const {
  if (!stream_) fail(ErrorCategory::unsupported, "{}: only streamOptimized VMDKs store compressed grains", path_);
  return stream_->pack(block, out);
}

void VmdkDevice::write_packed(std::span<const PackedBlock> blocks) {
  require_writable("compressed write");
  if (!stream_) fail(ErrorCategory::unsupported, "{}: only streamOptimized VMDKs store compressed grains", path_);
  for (const PackedBlock& b : blocks) check_request(b.offset, b.block.size(), "compressed write");
  stream_->write_packed(blocks);
}

// Makes [offset, offset+length) read as zeros. Whole grains get metadata-only
// treatment where the format allows (nothing for grains that already read as
// zeros; a zeroed-grain entry over a parent), allocated ones are zeroed in place
// (hole punched when `unmap`): VMDK has no way to give a grain back, and zeroing
// in place never leaves two entries pointing at one grain.
void VmdkDevice::zero_range_locked(uint64_t offset, uint64_t length, bool unmap, bool whole_grains_only) {
  for (uint64_t pos = offset; pos < offset + length;) {
    Extent& e = extents_[extent_index(pos)];
    const uint64_t piece_end = std::min(offset + length, e.start + e.length);
    const uint64_t rel = pos - e.start, rel_end = piece_end - e.start;
    pos = piece_end;
    if (e.line.type == ExtentType::zero) continue;
    if (e.line.access != Access::rw)
      fail(ErrorCategory::permission, "{}: guest offset {} lies in a {} extent", path_, e.start + rel,
           to_string(e.line.access));
    const File& f = file_of(e);
    if (!e.sparse) {
      uint64_t from = e.file_offset + rel, to = e.file_offset + rel_end;
      if (whole_grains_only) {
        from = align_up(from, 4096);
        to = std::max(from, align_down(to, 4096));
      }
      if (from == to) continue;
      if (unmap && f.punch_hole(from, to - from)) continue;
      if (f.zero_range(from, to - from)) continue;
      for (uint64_t p = from; p < to;) {
        uint64_t n = std::min<uint64_t>(to - p, 1 * MiB);
        f.write_all(p, std::span(zero_buffer(1 * MiB).data(), n));
        p += n;
      }
      continue;
    }
    Sparse& s = *e.sparse;
    const uint64_t grain = s.grain_bytes;
    for (uint64_t p = rel; p < rel_end;) {
      const uint64_t grain_start = align_down(p, grain);
      const uint64_t grain_end = std::min(grain_start + grain, e.length);
      const uint64_t n = std::min(rel_end, grain_end) - p;
      const bool whole = p == grain_start && p + n == grain_end;
      const uint64_t gd_index = p / s.header.gt_coverage();
      const uint64_t index = (p % s.header.gt_coverage()) / grain;
      Kind kind = Kind::unallocated;
      GtRef gt;
      if (s.gd[gd_index] != 0) {
        gt = grain_table(e, gd_index);
        kind = classify(e, gt->entries[index], e.start + p);
      }
      const bool reads_zero = kind == Kind::zero || (kind == Kind::unallocated && !backing_);
      if (reads_zero || (!whole && whole_grains_only)) {
        p += n;
        continue;
      }
      if (!whole) {
        write_extent_locked(e, p, std::span(zero_buffer(grain).data(), n));
      } else if (kind == Kind::data) {
        const uint64_t host = uint64_t{gt->entries[index]} * kSector;
        if (!(unmap && f.punch_hole(host, grain)) && !f.zero_range(host, grain))
          f.write_all(host, std::span(zero_buffer(grain).data(), grain));
      } else if (s.header.has_zero_grain()) {  // unallocated over a parent
        gt = grain_table_for_write(e, gd_index);
        gt->entries[index] = kGteZero;
        gt->dirty = true;
      } else {
        write_extent_locked(e, p, std::span(zero_buffer(grain).data(), n));
      }
      p += n;
    }
  }
}

void VmdkDevice::write_zeroes(uint64_t offset, uint64_t length, bool may_unmap) {
  require_writable("write zeroes");
  check_request(offset, length, "write zeroes");
  if (length == 0) return;
  if (stream_) {
    stream_->skip(offset, length);
    return;
  }
  std::unique_lock lock(lock_);
  mark_modified();
  zero_range_locked(offset, length, may_unmap, false);
}

void VmdkDevice::discard(uint64_t offset, uint64_t length) {
  require_writable("discard");
  check_request(offset, length, "discard");
  if (length == 0) return;
  if (stream_) {
    stream_->skip(offset, length);
    return;
  }
  std::unique_lock lock(lock_);
  mark_modified();
  zero_range_locked(offset, length, true, true);
}

// Data reaches the file before the grain tables that point at it, and new grain
// tables before the directory entries that point at them; each table is written
// to both its primary and its redundant place.
void VmdkDevice::flush_metadata(bool durable) {
  bool tables_dirty = false, directory_dirty = false;
  for (const Extent& e : extents_) {
    if (!e.sparse) continue;
    directory_dirty |= e.sparse->gd_dirty;
    for (const auto& [i, gt] : e.sparse->gts) tables_dirty |= gt->dirty;
  }
  if (tables_dirty || directory_dirty) {
    barrier();
    for (Extent& e : extents_) {
      if (!e.sparse) continue;
      Sparse& s = *e.sparse;
      std::lock_guard lock(s.cache_mutex);
      std::vector<uint64_t> order;
      for (const auto& [i, gt] : s.gts)
        if (gt->dirty) order.push_back(i);
      std::sort(order.begin(), order.end());
      for (uint64_t i : order) {
        const GtRef& gt = s.gts[i];
        std::vector<uint8_t> raw = encode_u32_table(gt->entries);
        file_of(e).write_all(uint64_t{s.gd[i]} * kSector, raw);
        if (!s.rgd.empty() && s.rgd[i]) file_of(e).write_all(uint64_t{s.rgd[i]} * kSector, raw);
        gt->dirty = false;
      }
      if (s.gts.size() > kMaxCachedTables) s.gts.clear();
    }
    if (directory_dirty) {
      barrier();
      for (Extent& e : extents_) {
        if (!e.sparse || !e.sparse->gd_dirty) continue;
        Sparse& s = *e.sparse;
        file_of(e).write_all(s.header.gd_offset * kSector, encode_u32_table(s.gd));
        if (!s.rgd.empty()) file_of(e).write_all(s.header.rgd_offset * kSector, encode_u32_table(s.rgd));
        s.gd_dirty = false;
      }
    }
  }
  if (durable)
    for (const auto& f : files_)
      if (f->writable()) f->sync_data();
}

void VmdkDevice::flush() {
  if (!writable_ || closed_) return;
  if (stream_) {
    stream_->flush(barriers_);
    return;
  }
  std::unique_lock lock(lock_);
  flush_metadata(barriers_);
}

void VmdkDevice::close() {
  if (closed_) return;
  closed_ = true;
  if (!writable_) return;
  if (stream_) {
    stream_->finish();
    if (barriers_) files_[0]->sync_data();
    return;
  }
  std::unique_lock lock(lock_);
  flush_metadata(barriers_);
  if (modified_) {
    write_headers(false);
    if (barriers_) barrier();
  }
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
