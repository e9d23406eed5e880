#include "image/vhdx/vhdx_device.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <mutex>

#include "core/endian.h"
#include "core/error.h"
#include "core/log.h"
#include "core/units.h"
#include "image/foreign/sparse_write.h"

namespace arche::image::vhdx {

namespace {

constexpr uint64_t kMaxMetadataRegion = 64 * MiB;

const std::vector<uint8_t>& zero_buffer() {
  static const std::vector<uint8_t> zeros(1 * MiB, 0);
  return zeros;
}

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && !S_ISDIR(st.st_mode);
}

std::string windows_to_posix(std::string path) {
  std::replace(path.begin(), path.end(), '\\', '/');
  while (path.rfind("./", 0) == 0) path.erase(0, 2);
  return path;
}

bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen) { return a < b + blen && b < a + alen; }

}  // namespace

VhdxDevice::VhdxDevice(File file, const OpenOptions& options)
    : file_(std::move(file)), barriers_(!options.no_barriers) {}

std::unique_ptr<VhdxDevice> VhdxDevice::open(const std::string& path, const OpenOptions& options, ChainState& chain) {
  File file = File::open(path, options.writable ? OpenMode::read_write : OpenMode::read_only);
  lock_image_file(file, options);
  std::unique_ptr<VhdxDevice> dev(new VhdxDevice(std::move(file), options));
  dev->load(options);
  if (dev->meta_.has_parent) dev->open_parent(options, chain);
  return dev;
}

void VhdxDevice::read_file(uint64_t offset, std::span<uint8_t> out) const {
  if (!log_overlay_) {
    file_.read_exact(offset, out);
    return;
  }
  size_t got = file_.read_some(offset, out);
  if (got < out.size() && offset + out.size() > log_overlay_->last_file_offset)
    fail(ErrorCategory::corrupt, "{}: read of {} bytes at 0x{:x} beyond the end of the file", filename(), out.size(), offset);
  std::memset(out.data() + got, 0, out.size() - got);
  overlay(*log_overlay_, offset, out);
}

void VhdxDevice::load(const OpenOptions& options) {
  const std::string& path = file_.path();
  uint64_t file_size = file_.size();
  if (file_size < 320 * KiB) fail(ErrorCategory::format, "{}: too small for a VHDX image ({} bytes)", path, file_size);
  std::array<uint8_t, 8> signature{};
  file_.read_exact(0, signature);
  if (std::memcmp(signature.data(), "vhdxfile", 8) != 0)
    fail(ErrorCategory::format, "{}: not a VHDX image (file type identifier \"vhdxfile\" missing)", path);

  // Headers: the valid one with the higher sequence number is current.
  bool valid[2] = {false, false};
  std::string errors;
  for (int k = 0; k < 2; ++k) {
    std::vector<uint8_t> raw(kHeaderSize);
    file_.read_exact(kHeaderOffsets[k], raw);
    try {
      headers_[k] = parse_header(raw, fmt::format("header {}", k + 1));
      valid[k] = true;
    } catch (const Error& e) {
      errors += std::string(errors.empty() ? "" : "; ") + e.what();
    }
  }
  if (!valid[0] && !valid[1]) fail(ErrorCategory::corrupt, "{}: no valid VHDX header ({})", path, errors);
  current_ = !valid[0] ? 1 : !valid[1] ? 0 : headers_[1].sequence > headers_[0].sequence ? 1 : 0;
  if (!valid[1 - current_]) headers_[1 - current_] = headers_[current_];  // so the next update has a base

  // A log with an active sequence holds metadata writes that may not have reached
  // their place: replay before trusting anything else.
  if (std::optional<LogReplay> replay = read_log(file_, headers_[current_], path)) {
    if (file_size < replay->flushed_file_offset)
      fail(ErrorCategory::corrupt, "{}: the VHDX log expects a file of at least {} bytes, it has {} (truncated?)", path,
           replay->flushed_file_offset, file_size);
    if (writable()) {
      warn("{}: replaying {} VHDX log entries (sequence {}-{}) left by an interrupted writer", path, replay->entries,
           replay->first_sequence, replay->last_sequence);
      replay_into_file(file_, *replay);
      file_.sync();
      Header h = headers_[current_];
      h.log_guid = {};
      h.file_write_guid = foreign::random_guid();  // the replay changed the file
      write_header_update(h);
      write_header_update(h);
      file_guid_changed_ = true;
      file_size = file_.size();
    } else {
      note("{}: VHDX log not yet replayed; applying it in memory for this read-only open", path);
      log_overlay_ = std::move(replay);
      file_size = std::max(file_size, log_overlay_->last_file_offset);
    }
  }
  (void)options;

  // Region table: the first copy that validates.
  std::vector<RegionEntry> regions;
  errors.clear();
  bool have_regions = false;
  for (int k = 0; k < 2 && !have_regions; ++k) {
    std::vector<uint8_t> raw(kRegionTableSize);
    read_file(kRegionTableOffsets[k], raw);
    try {
      regions = parse_region_table(raw, fmt::format("region table {}", k + 1));
      have_regions = true;
    } catch (const Error& e) {
      errors += std::string(errors.empty() ? "" : "; ") + e.what();
    }
  }
  if (!have_regions) fail(ErrorCategory::corrupt, "{}: no valid VHDX region table ({})", path, errors);
  bool have_bat = false, have_metadata = false;
  for (const RegionEntry& e : regions) {
    if (e.id == kBatRegion) {
      bat_region_ = e;
      have_bat = true;
    } else if (e.id == kMetadataRegion) {
      metadata_region_ = e;
      have_metadata = true;
    } else if (e.required) {
      fail(ErrorCategory::unsupported, "{}: required VHDX region {} is unknown to arche", path, foreign::guid_string(e.id));
    }
    if (!range_within(e.offset, e.length, file_size))
      fail(ErrorCategory::corrupt, "{}: VHDX region {} (0x{:x}, {} bytes) lies outside the file", path,
           foreign::guid_string(e.id), e.offset, e.length);
  }
  if (!have_bat || !have_metadata) fail(ErrorCategory::corrupt, "{}: VHDX region table lacks the BAT or metadata", path);
  if (overlaps(bat_region_.offset, bat_region_.length, metadata_region_.offset, metadata_region_.length))
    fail(ErrorCategory::corrupt, "{}: VHDX BAT and metadata regions overlap", path);
  if (metadata_region_.length > kMaxMetadataRegion)
    fail(ErrorCategory::unsupported, "{}: VHDX metadata region of {} bytes", path, metadata_region_.length);

  std::vector<uint8_t> metadata(metadata_region_.length);
  read_file(metadata_region_.offset, metadata);
  meta_ = parse_metadata(metadata, path);
  layout_ = bat_layout(meta_.virtual_disk_size, meta_.block_size, meta_.logical_sector_size, meta_.has_parent);
  if (layout_.entries * 8 > bat_region_.length)
    fail(ErrorCategory::corrupt, "{}: VHDX BAT region holds {} entries, the disk needs {}", path, bat_region_.length / 8,
         layout_.entries);

  std::vector<uint8_t> raw(layout_.entries * 8);
  read_file(bat_region_.offset, raw);
  bat_.resize(layout_.entries);
  uint64_t end = std::max({bat_region_.offset + bat_region_.length, metadata_region_.offset + metadata_region_.length,
                           headers_[current_].log_offset + headers_[current_].log_length});
  const Header& h = headers_[current_];
  for (uint64_t i = 0; i < layout_.entries; ++i) {
    const uint64_t e = bat_[i] = load_le64(raw.data() + i * 8);
    const bool is_bitmap = (i + 1) % (layout_.chunk_ratio + 1) == 0;
    const uint8_t state = bat_state(e);
    const uint64_t host = bat_offset(e);
    uint64_t length = 0;
    if (is_bitmap) {
      if (state == kSbPresent && meta_.has_parent) length = MiB;
      else if (state != kSbNotPresent)
        fail(ErrorCategory::corrupt, "{}: VHDX sector bitmap entry {} has state {}", path, i, state);
    } else if (state == kFullyPresent || (state == kPartiallyPresent && meta_.has_parent)) {
      length = layout_.block_size;
    } else if (state != kNotPresent && state != kUndefined && state != kZero && state != kUnmapped &&
               state != kUnmappedV095) {
      fail(ErrorCategory::corrupt, "{}: VHDX BAT entry {} has invalid state {}", path, i, state);
    }
    if (!length) continue;
    if (host < MiB || !range_within(host, length, file_size))
      fail(ErrorCategory::corrupt, "{}: VHDX BAT entry {} points at 0x{:x}, outside the {}-byte file (truncated?)", path,
           i, host, file_size);
    if (overlaps(host, length, bat_region_.offset, bat_region_.length) ||
        overlaps(host, length, metadata_region_.offset, metadata_region_.length) ||
        (h.log_length && overlaps(host, length, h.log_offset, h.log_length)))
      fail(ErrorCategory::corrupt, "{}: VHDX BAT entry {} (0x{:x}) overlaps the file's metadata", path, i, host);
    end = std::max(end, host + length);
  }
  next_free_ = align_up(std::max(end, file_size), MiB);
  needed_end_ = end;
}

void VhdxDevice::open_parent(const OpenOptions& options, ChainState& chain) {
  const std::string& path = file_.path();
  const ParentLocator& loc = *meta_.parent_locator;
  if (loc.type != kVhdxParentLocatorType)
    fail(ErrorCategory::unsupported, "{}: parent locator type {} is not the VHDX one", path, foreign::guid_string(loc.type));
  std::vector<std::pair<std::string, std::string>> candidates;
  for (const char* key : {"relative_path", "absolute_win32_path"}) {
    auto it = loc.entries.find(key);
    if (it == loc.entries.end() || it->second.empty()) continue;
    std::string p = windows_to_posix(it->second);
    candidates.emplace_back(it->second, resolve_backing_path(path, p));
  }
  if (candidates.empty()) fail(ErrorCategory::corrupt, "{}: differencing VHDX names no parent path", path);
  auto found = std::find_if(candidates.begin(), candidates.end(), [](const auto& c) { return file_exists(c.second); });
  if (found == candidates.end()) {
    if (options.open_backing)
      fail(ErrorCategory::not_found, "{}: parent of the differencing VHDX not found (looked for {})", path,
           candidates.front().second);
    found = candidates.begin();
  }
  backing_recorded_ = found->first;
  backing_path_ = found->second;
  if (!options.open_backing) return;
  backing_ = open_backing(backing_path_, "vhdx", options, chain);
  auto* parent = dynamic_cast<VhdxDevice*>(backing_.get());
  if (!parent) fail(ErrorCategory::internal, "{}: parent did not open as VHDX", path);
  const Id128& data_guid = parent->header().data_write_guid;
  bool linked = false;
  for (const char* key : {"parent_linkage", "parent_linkage2"}) {
    auto it = loc.entries.find(key);
    Id128 g{};
    if (it != loc.entries.end() && foreign::parse_guid(it->second, g) && g == data_guid) linked = true;
  }
  if (!linked)
    fail(ErrorCategory::corrupt, "{}: parent {} has DataWriteGuid {}, but this differencing disk links to {} (parent modified?)",
         path, backing_path_, foreign::guid_string(data_guid),
         loc.entries.count("parent_linkage") ? loc.entries.at("parent_linkage") : "(none)");
  if (parent->size() != size())
    warn("{}: parent {} has {} bytes, the differencing disk {}", path, backing_path_, parent->size(), size());
}

VhdxDevice::~VhdxDevice() {
  try {
    close();
  } catch (const std::exception& e) {
    warn("{}: could not close cleanly: {}", file_.path(), e.what());
  }
}

void VhdxDevice::require_writable(const char* op) const {
  if (!writable()) fail(ErrorCategory::usage, "{}: {} on an image opened read-only", filename(), op);
  if (closed_) fail(ErrorCategory::internal, "{}: {} after close", filename(), op);
}

// ---- reads ---------------------------------------------------------------------

std::vector<uint8_t> VhdxDevice::sector_bitmap(uint64_t block) const {
  const uint64_t chunk = block / layout_.chunk_ratio;
  const uint64_t sb = bat_[layout_.bitmap_index(chunk)];
  if (bat_state(sb) != kSbPresent)
    fail(ErrorCategory::corrupt, "{}: VHDX block {} is partially present but its sector bitmap is not", filename(), block);
  const uint64_t bytes = layout_.block_size / meta_.logical_sector_size / 8;
  std::vector<uint8_t> bits(bytes);
  read_file(bat_offset(sb) + (block % layout_.chunk_ratio) * bytes, bits);
  return bits;
}

void VhdxDevice::read_absent(uint64_t guest, std::span<uint8_t> out) const {
  if (meta_.has_parent) read_from_backing(guest, out);
  else std::memset(out.data(), 0, out.size());
}

void VhdxDevice::read_block(uint64_t block, uint64_t in, std::span<uint8_t> out) const {
  const uint64_t entry = payload_entry(block);
  const uint64_t guest = block * layout_.block_size + in;
  switch (bat_state(entry)) {
    case kFullyPresent: read_file(bat_offset(entry) + in, out); return;
    case kNotPresent: read_absent(guest, out); return;
    case kPartiallyPresent: break;
    default: std::memset(out.data(), 0, out.size()); return;  // zero, unmapped, undefined
  }
  const std::vector<uint8_t> bits = sector_bitmap(block);
  const uint64_t ss = meta_.logical_sector_size;
  auto present = [&](uint64_t sector) { return (bits[sector / 8] >> (sector % 8)) & 1; };
  uint64_t pos = 0;
  while (pos < out.size()) {
    const uint64_t sector = (in + pos) / ss;
    const bool here = present(sector);
    uint64_t end = std::min<uint64_t>(out.size(), (sector + 1) * ss - in);
    while (end < out.size() && present((in + end) / ss) == here) end = std::min<uint64_t>(out.size(), end + ss);
    std::span<uint8_t> part = out.subspan(pos, end - pos);
    if (here) read_file(bat_offset(entry) + in + pos, part);
    else read_absent(guest + pos, part);
    pos = end;
  }
}

void VhdxDevice::read(uint64_t offset, std::span<uint8_t> out) {
  check_request(offset, out.size(), "read");
  std::shared_lock lock(lock_);
  size_t pos = 0;
  while (pos < out.size()) {
    const uint64_t at = offset + pos;
    const uint64_t block = at / layout_.block_size, in = at % layout_.block_size;
    const size_t n = static_cast<size_t>(std::min<uint64_t>(layout_.block_size - in, out.size() - pos));
    read_block(block, in, out.subspan(pos, n));
    pos += n;
  }
}

LayerStatus VhdxDevice::layer_status(uint64_t offset, uint64_t max_length) {
  check_request(offset, max_length, "status");
  std::shared_lock lock(lock_);
  const uint64_t limit = std::min(max_length, size() - offset);
  const uint64_t bs = layout_.block_size;
  const uint64_t block = offset / bs, in = offset % bs;
  const uint64_t entry = payload_entry(block);
  const uint8_t state = bat_state(entry);
  auto kind_of = [&](uint8_t s) {
    if (s == kNotPresent) return ExtentKind::unallocated;
    if (s == kFullyPresent || s == kPartiallyPresent) return ExtentKind::data;
    return ExtentKind::zero;
  };
  if (state == kFullyPresent) {
    const uint64_t host = bat_offset(entry) + in;
    if (!log_overlay_) {
      foreign::HostRun run = foreign::host_run(file_, host, std::min(bs - in, limit));
      if (run.hole) return {ExtentKind::zero, run.length, std::nullopt};
      return {ExtentKind::data, run.length, host};
    }
    return {ExtentKind::data, std::min(bs - in, limit), host};
  }
  if (state == kPartiallyPresent) {
    const std::vector<uint8_t> bits = sector_bitmap(block);
    const uint64_t ss = meta_.logical_sector_size;
    auto present = [&](uint64_t sector) { return (bits[sector / 8] >> (sector % 8)) & 1; };
    const uint64_t first = in / ss;
    const bool here = present(first);
    uint64_t end = first + 1;
    while (end < bs / ss && present(end) == here) ++end;
    const uint64_t length = std::min(end * ss - in, limit);
    if (here) return {ExtentKind::data, length, bat_offset(entry) + in};
    return {ExtentKind::unallocated, length, std::nullopt};
  }
  ExtentKind kind = kind_of(state);
  uint64_t length = bs - in;
  for (uint64_t b = block + 1; length < limit && b < layout_.payload_blocks; ++b) {
    uint8_t s = bat_state(payload_entry(b));
    if (s == kFullyPresent || s == kPartiallyPresent || kind_of(s) != kind) break;
    length += bs;
  }
  return {kind, std::min(length, limit), std::nullopt};
}

// ---- writes --------------------------------------------------------------------

void VhdxDevice::barrier() {
  if (barriers_) file_.sync_data();
}

void VhdxDevice::write_header_update(Header h) {
  const int target = 1 - current_;
  h.sequence = headers_[current_].sequence + 1;
  file_.write_all(kHeaderOffsets[target], encode_header(h));
  barrier();
  headers_[target] = h;
  current_ = target;
}

// Before the first change to the file (and again before the first change to what
// the disk reads) the headers get fresh write GUIDs; both slots are updated, one
// after the other, so a crash leaves at least one valid header.
void VhdxDevice::begin_change(bool visible) {
  if (file_guid_changed_ && (!visible || data_guid_changed_)) return;
  Header h = headers_[current_];
  h.file_write_guid = foreign::random_guid();
  if (visible) h.data_write_guid = foreign::random_guid();
  h.log_guid = {};
  write_header_update(h);
  write_header_update(h);
  file_guid_changed_ = true;
  if (visible) data_guid_changed_ = true;
}

void VhdxDevice::set_entry(uint64_t index, uint64_t entry) {
  bat_[index] = entry;
  bat_dirty_begin_ = std::min(bat_dirty_begin_, index);
  bat_dirty_end_ = std::max(bat_dirty_end_, index + 1);
  if (barriers_) write_metadata();
}

void VhdxDevice::write_metadata() {
  if (bat_dirty_begin_ < bat_dirty_end_) {
    const uint64_t per_page = 4096 / 8;
    const uint64_t first = align_down(bat_dirty_begin_, per_page);
    const uint64_t last = std::min<uint64_t>(align_up(bat_dirty_end_, per_page), bat_region_.length / 8);
    std::vector<uint8_t> raw((last - first) * 8, 0);
    for (uint64_t i = first; i < last && i < bat_.size(); ++i) store_le64(raw.data() + (i - first) * 8, bat_[i]);
    if (last > bat_.size()) {
      // Entries past the disk's end stay as they are on disk.
      std::vector<uint8_t> tail((last - std::max<uint64_t>(first, bat_.size())) * 8);
      file_.read_exact(bat_region_.offset + std::max<uint64_t>(first, bat_.size()) * 8, tail);
      std::memcpy(raw.data() + (std::max<uint64_t>(first, bat_.size()) - first) * 8, tail.data(), tail.size());
    }
    file_.write_all(bat_region_.offset + first * 8, raw);
    bat_dirty_begin_ = UINT64_MAX;
    bat_dirty_end_ = 0;
  }
  if (file_.size() < needed_end_) file_.truncate(needed_end_);
}

// Space at the end of the file for a new payload or sector bitmap block; the file
// is extended over it, so it reads as zeros.
uint64_t VhdxDevice::allocate_space(uint64_t length) {
  const uint64_t host = next_free_;
  next_free_ += length;
  needed_end_ = std::max(needed_end_, next_free_);
  return host;
}

// A differencing disk keeps what was written to part of a block it does not hold
// as a PARTIALLY_PRESENT block: the written sectors (edge sectors completed from
// what reads see) plus their bits in the chunk's sector bitmap block.
void VhdxDevice::write_sectors_locked(uint64_t block, uint64_t in, std::span<const uint8_t> data) {
  const uint64_t index = layout_.payload_index(block);
  const uint64_t ss = meta_.logical_sector_size;
  const uint64_t lo = align_down(in, ss), hi = align_up(in + data.size(), ss);
  std::vector<uint8_t> buf(hi - lo);
  if (lo < in) read_block(block, lo, std::span(buf.data(), ss));
  if (hi > in + data.size()) read_block(block, hi - ss, std::span(buf.data() + buf.size() - ss, ss));
  std::memcpy(buf.data() + (in - lo), data.data(), data.size());

  const bool new_block = bat_state(bat_[index]) != kPartiallyPresent;
  const uint64_t host = new_block ? allocate_space(layout_.block_size) : bat_offset(bat_[index]);
  const uint64_t sb_index = layout_.bitmap_index(block / layout_.chunk_ratio);
  const bool new_bitmap = bat_state(bat_[sb_index]) != kSbPresent;
  const uint64_t sb_host = new_bitmap ? allocate_space(MiB) : bat_offset(bat_[sb_index]);
  if (new_block) foreign::write_into_zeroed(file_, host + lo, buf);
  else file_.write_all(host + lo, buf);
  if (file_.size() < needed_end_) file_.truncate(needed_end_);
  barrier();  // the sectors before the bits that make them visible

  const uint64_t first_bit = (block % layout_.chunk_ratio) * (layout_.block_size / ss) + lo / ss;
  const uint64_t last_bit = first_bit + (hi - lo) / ss;  // exclusive
  const uint64_t byte_lo = first_bit / 8, byte_hi = div_round_up(last_bit, 8);
  std::vector<uint8_t> bits(byte_hi - byte_lo);
  read_file(sb_host + byte_lo, bits);
  for (uint64_t b = first_bit; b < last_bit; ++b) bits[b / 8 - byte_lo] = static_cast<uint8_t>(bits[b / 8 - byte_lo] | (1u << (b % 8)));
  file_.write_all(sb_host + byte_lo, bits);
  barrier();  // the bitmap before the entries that point at it
  if (new_bitmap) set_entry(sb_index, bat_entry(kSbPresent, sb_host));
  if (new_block) set_entry(index, bat_entry(kPartiallyPresent, host));
}

void VhdxDevice::write_block_locked(uint64_t block, uint64_t in, std::span<const uint8_t> data) {
  const uint64_t index = layout_.payload_index(block);
  const uint64_t entry = bat_[index];
  const uint64_t bs = layout_.block_size;
  const uint8_t state = bat_state(entry);
  if (state == kFullyPresent) {
    file_.write_all(bat_offset(entry) + in, data);
    return;
  }
  const bool whole = in == 0 && data.size() == bs;
  if (meta_.has_parent && !whole && (state == kNotPresent || state == kPartiallyPresent)) {
    write_sectors_locked(block, in, data);
    return;
  }
  if (state == kPartiallyPresent) {
    // Complete the block from what reads see now, then it is fully present.
    std::vector<uint8_t> buf(bs);
    read_block(block, 0, buf);
    std::memcpy(buf.data() + in, data.data(), data.size());
    file_.write_all(bat_offset(entry), buf);
    barrier();
    set_entry(index, bat_entry(kFullyPresent, bat_offset(entry)));
    return;
  }
  // A new payload block at the end of the file; its space reads as zeros.
  const uint64_t host = allocate_space(bs);
  foreign::write_into_zeroed(file_, host + in, data);
  // The file covers the whole block even where its tail was skipped as zeros.
  if (file_.size() < needed_end_) file_.truncate(needed_end_);
  barrier();  // the block before the entry that points at it
  set_entry(index, bat_entry(kFullyPresent, host));
}

void VhdxDevice::write(uint64_t offset, std::span<const uint8_t> data) {
  require_writable("write");
  check_request(offset, data.size(), "write");
  size_t pos = 0;
  while (pos < data.size()) {
    const uint64_t at = offset + pos;
    const uint64_t block = at / layout_.block_size, in = at % layout_.block_size;
    const size_t n = static_cast<size_t>(std::min<uint64_t>(layout_.block_size - in, data.size() - pos));
    if (data_guid_changed_) {
      std::shared_lock lock(lock_);
      const uint64_t entry = payload_entry(block);
      if (bat_state(entry) == kFullyPresent) {
        file_.write_all(bat_offset(entry) + in, data.subspan(pos, n));
        pos += n;
        continue;
      }
    }
    std::unique_lock lock(lock_);
    begin_change(true);
    write_block_locked(block, in, data.subspan(pos, n));
    pos += n;
  }
}

void VhdxDevice::zero_range_locked(uint64_t offset, uint64_t length, bool may_unmap, bool whole_blocks_only) {
  const uint64_t bs = layout_.block_size;
  const uint64_t end = offset + length;
  for (uint64_t pos = offset; pos < end;) {
    const uint64_t block = pos / bs, in = pos % bs;
    const uint64_t n = std::min(bs - in, end - pos);
    const bool whole = in == 0 && (n == bs || pos + n == size());
    const uint64_t index = layout_.payload_index(block);
    const uint8_t state = bat_state(bat_[index]);
    if (whole && !fixed()) {
      // The block reads as zeros by its state; its space goes back to the host.
      if (state != kZero) {
        const uint64_t old = bat_[index];
        set_entry(index, bat_entry(kZero, 0));
        if (state == kFullyPresent || state == kPartiallyPresent) {
          barrier();
          file_.punch_hole(bat_offset(old), bs);
        }
      }
    } else if (!whole_blocks_only) {
      if (state == kFullyPresent) {
        const uint64_t host = bat_offset(bat_[index]) + in;
        if (!(may_unmap ? file_.punch_hole(host, n) : file_.zero_range(host, n)))
          for (uint64_t done = 0; done < n;) {
            uint64_t m = std::min<uint64_t>(n - done, zero_buffer().size());
            file_.write_all(host + done, std::span(zero_buffer().data(), m));
            done += m;
          }
      } else if (state == kPartiallyPresent || (state == kNotPresent && meta_.has_parent)) {
        for (uint64_t done = 0; done < n;) {
          uint64_t m = std::min<uint64_t>(n - done, zero_buffer().size());
          write_block_locked(block, in + done, std::span(zero_buffer().data(), m));
          done += m;
        }
      }
    } else if (fixed() && whole && state == kFullyPresent) {
      file_.punch_hole(bat_offset(bat_[index]), n);
    }
    pos += n;
  }
}

void VhdxDevice::write_zeroes(uint64_t offset, uint64_t length, bool may_unmap) {
  require_writable("write zeroes");
  check_request(offset, length, "write zeroes");
  if (length == 0) return;
  std::unique_lock lock(lock_);
  begin_change(true);
  zero_range_locked(offset, length, may_unmap, false);
}

void VhdxDevice::discard(uint64_t offset, uint64_t length) {
  require_writable("discard");
  check_request(offset, length, "discard");
  if (length == 0) return;
  std::unique_lock lock(lock_);
  begin_change(true);
  if (fixed()) {
    const uint64_t start = align_up(offset, 4096), end = align_down(offset + length, 4096);
    if (end > start) zero_range_locked(start, end - start, true, false);
    return;
  }
  zero_range_locked(offset, length, true, true);
}

void VhdxDevice::flush() {
  if (!writable()) return;
  std::unique_lock lock(lock_);
  barrier();
  write_metadata();
  file_.sync_data();
}

void VhdxDevice::close() {
  if (closed_) return;
  if (writable()) {
    std::unique_lock lock(lock_);
    barrier();
    write_metadata();
    if (barriers_) file_.sync_data();
  }
  closed_ = true;
}

void VhdxDevice::check_layout(CheckResult& r) const {
  std::shared_lock lock(lock_);
  std::vector<std::pair<uint64_t, uint64_t>> used;  // (host, index)
  for (uint64_t i = 0; i < bat_.size(); ++i) {
    const bool is_bitmap = (i + 1) % (layout_.chunk_ratio + 1) == 0;
    const uint8_t s = bat_state(bat_[i]);
    if (is_bitmap ? s == kSbPresent : (s == kFullyPresent || s == kPartiallyPresent)) used.emplace_back(bat_offset(bat_[i]), i);
  }
  std::sort(used.begin(), used.end());
  uint64_t last_end = 0;
  for (size_t k = 0; k < used.size(); ++k) {
    const bool is_bitmap = (used[k].second + 1) % (layout_.chunk_ratio + 1) == 0;
    const uint64_t length = is_bitmap ? MiB : layout_.block_size;
    if (k && used[k].first < last_end) {
      r.messages.push_back(fmt::format("ERROR BAT entry {} at 0x{:x} overlaps BAT entry {}", used[k].second, used[k].first,
                                       used[k - 1].second));
      ++r.corruptions;
    }
    if (k && used[k].first != last_end) ++r.fragmented_clusters;
    last_end = std::max(last_end, used[k].first + length);
  }
  r.total_clusters = layout_.payload_blocks;
  for (uint64_t b = 0; b < layout_.payload_blocks; ++b) {
    uint8_t s = bat_state(payload_entry(b));
    r.allocated_clusters += s == kFullyPresent || s == kPartiallyPresent;
  }
  r.image_end_offset = std::max(file_.size(), needed_end_);
  if (log_overlay_) {
    r.messages.push_back("ERROR the log holds entries that were never replayed (repair with: arche image check -r all)");
    ++r.corruptions;
  }
}

// ---- info ----------------------------------------------------------------------

ImageInfo VhdxDevice::info() const {
  std::shared_lock lock(lock_);
  ImageInfo i;
  i.filename = filename();
  i.format = "vhdx";
  i.virtual_size = size();
  i.actual_size = file_.allocated_bytes();
  i.cluster_size = layout_.block_size;
  const Header& h = headers_[current_];
  uint64_t present = 0;
  for (uint64_t b = 0; b < layout_.payload_blocks; ++b) {
    uint8_t s = bat_state(payload_entry(b));
    present += s == kFullyPresent || s == kPartiallyPresent;
  }
  Json j{{"subformat", meta_.has_parent ? "differencing" : meta_.leave_blocks_allocated ? "fixed" : "dynamic"},
         {"block-size", layout_.block_size},
         {"logical-sector-size", meta_.logical_sector_size},
         {"physical-sector-size", meta_.physical_sector_size},
         {"log-size", h.log_length},
         {"log-replay-pending", log_overlay_.has_value()},
         {"file-write-guid", foreign::guid_string(h.file_write_guid)},
         {"data-write-guid", foreign::guid_string(h.data_write_guid)},
         {"page83-guid", foreign::guid_string(meta_.page83)},
         {"header-sequence", h.sequence},
         {"present-blocks", present}};
  if (meta_.has_parent) {
    i.backing_file = backing_recorded_;
    i.backing_format = "vhdx";
    i.full_backing_file = backing_path_;
    auto it = meta_.parent_locator->entries.find("parent_linkage");
    if (it != meta_.parent_locator->entries.end()) j["parent-linkage"] = it->second;
  }
  i.dirty = log_overlay_.has_value();
  i.format_specific = std::move(j);
  return i;
}

}  // namespace arche::image::vhdx
