// VmdkDevice's I/O: grain lookups, reads (plain and compressed grains), writes with
// grain allocation, zeroing and discard, and the ordered write-back of grain tables
// and headers. Opening and `info` are in vmdk_open.cpp.
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

constexpr size_t kMaxCachedTables = 16384;  // 32 MiB of 512-entry tables: 512 GiB of disk

std::vector<uint8_t>& zero_buffer(uint64_t size) {
  thread_local std::vector<uint8_t> zeros;
  if (zeros.size() < size) zeros.assign(size, 0);
  return zeros;
}

std::vector<uint8_t> encode_u32_table(const std::vector<uint32_t>& table) {
  std::vector<uint8_t> raw(table.size() * 4);
  for (size_t i = 0; i < table.size(); ++i) store_le32(raw.data() + i * 4, table[i]);
  return raw;
}

}  // namespace

std::vector<uint32_t> VmdkDevice::read_u32_table(const File& f, uint64_t offset, uint64_t entries) {
  std::vector<uint8_t> raw(entries * 4);
  f.read_exact(offset, raw);
  std::vector<uint32_t> out(entries);
  for (uint64_t i = 0; i < entries; ++i) out[i] = load_le32(raw.data() + i * 4);
  return out;
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
  const uint32_t cid = random_content_id();
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

}  // namespace arche::image::vmdk
