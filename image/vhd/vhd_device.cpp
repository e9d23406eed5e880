#include "image/vhd/vhd_device.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <mutex>

#include "core/endian.h"
#include "core/error.h"
#include "core/log.h"
#include "core/units.h"
#include "image/foreign/sparse_write.h"

namespace arche::image::vhd {

namespace {

const std::vector<uint8_t>& zero_buffer() {
  static const std::vector<uint8_t> zeros(1 * MiB, 0);
  return zeros;
}

bool bit_set(const std::vector<uint8_t>& bitmap, uint64_t sector) {
  // The first sector is the most significant bit of the first byte.
  return bitmap[sector / 8] & (0x80 >> (sector % 8));
}

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && !S_ISDIR(st.st_mode);
}

}  // namespace

VhdDevice::VhdDevice(File file, const OpenOptions& options) : file_(std::move(file)), barriers_(!options.no_barriers) {}

std::unique_ptr<VhdDevice> VhdDevice::open(const std::string& path, const OpenOptions& options, ChainState& chain) {
  File file = File::open(path, options.writable ? OpenMode::read_write : OpenMode::read_only);
  lock_image_file(file, options);
  std::unique_ptr<VhdDevice> dev(new VhdDevice(std::move(file), options));
  const uint64_t file_size = dev->file_.size();
  if (file_size < kFooterSize) fail(ErrorCategory::format, "{}: too small for a VHD image ({} bytes)", path, file_size);

  // The footer at the end is the authoritative one; dynamic disks keep a copy at 0.
  std::array<uint8_t, kFooterSize> end{}, start{};
  dev->file_.read_exact(file_size - kFooterSize, end);
  dev->file_.read_exact(0, start);
  bool end_valid = false;
  std::string end_error;
  try {
    dev->footer_ = parse_footer(end, path + ": footer");
    end_valid = true;
  } catch (const Error& e) {
    end_error = e.what();
  }
  if (!end_valid) {
    Footer copy;
    try {
      copy = parse_footer(start, path + ": footer copy at offset 0");
    } catch (const Error&) {
      fail(ErrorCategory::format, "{}", end_error);
    }
    if (copy.disk_type == DiskType::fixed)
      fail(ErrorCategory::corrupt, "{} (the copy at offset 0 says fixed disk, which has no copy)", end_error);
    dev->footer_ = copy;
    dev->footer_dirty_ = true;
  }
  Footer& f = dev->footer_;
  dev->size_ = virtual_size(f);
  if (dev->size_ / kSector > kMaxSectors && f.disk_type != DiskType::fixed)
    fail(ErrorCategory::unsupported, "{}: VHD size {} exceeds the format's 2040 GiB", path, dev->size_);

  if (f.disk_type == DiskType::fixed) {
    if (dev->size_ > file_size - kFooterSize)
      fail(ErrorCategory::corrupt, "{}: fixed VHD of {} bytes, but the file holds only {} bytes of data (truncated?)",
           path, dev->size_, file_size - kFooterSize);
    return dev;
  }
  dev->dynamic_ = true;
  dev->differencing_ = f.disk_type == DiskType::differencing;
  dev->load_dynamic(end_valid);
  if (dev->differencing_) dev->open_parent(options, chain);
  // Said only once the image opened: a damaged image fails with one message.
  if (!end_valid)
    warn("{}; using the footer copy at offset 0{}", end_error, options.writable ? " and rewriting the footer" : "");
  return dev;
}

void VhdDevice::load_dynamic(bool end_footer_valid) {
  const std::string& path = file_.path();
  const uint64_t file_size = file_.size();
  if (!range_within(footer_.data_offset, kDynamicHeaderSize, file_size))
    fail(ErrorCategory::corrupt, "{}: VHD dynamic header offset 0x{:x} lies outside the file", path, footer_.data_offset);
  std::array<uint8_t, kDynamicHeaderSize> raw{};
  file_.read_exact(footer_.data_offset, raw);
  header_ = parse_dynamic_header(raw, path + ": dynamic header");
  block_size_ = header_.block_size;
  bitmap_size_ = bitmap_bytes(block_size_);

  const uint64_t needed = div_round_up(size_, block_size_);
  if (header_.max_table_entries < needed)
    fail(ErrorCategory::corrupt, "{}: VHD BAT has {} entries, the disk needs {}", path, header_.max_table_entries, needed);
  const uint64_t table_bytes = uint64_t{header_.max_table_entries} * 4;
  if (!range_within(header_.table_offset, table_bytes, file_size))
    fail(ErrorCategory::corrupt, "{}: VHD BAT ({} entries at 0x{:x}) lies outside the file", path,
         header_.max_table_entries, header_.table_offset);
  std::vector<uint8_t> table(table_bytes);
  file_.read_exact(header_.table_offset, table);
  bat_.resize(needed);  // entries past the disk's end are never used
  uint64_t end = align_up(header_.table_offset + table_bytes, kSector);
  for (uint64_t i = 0; i < needed; ++i) {
    bat_[i] = load_be32(table.data() + i * 4);
    if (bat_[i] == kUnallocated) continue;
    const uint64_t host = block_host(i);
    if (!range_within(host, bitmap_size_ + block_size_, file_size))
      fail(ErrorCategory::corrupt, "{}: VHD BAT entry {} points at 0x{:x}, outside the {}-byte file (truncated?)", path,
           i, host, file_size);
    if (host < kFooterSize + kDynamicHeaderSize && footer_.data_offset == kFooterSize)
      fail(ErrorCategory::corrupt, "{}: VHD BAT entry {} points into the headers", path, i);
    end = std::max(end, host + bitmap_size_ + block_size_);
  }
  bitmap_states_ = std::vector<std::atomic<uint8_t>>(needed);
  // New blocks go where the footer is now (or past everything, when it is damaged).
  next_free_ = std::max(end, end_footer_valid ? file_size - kFooterSize : align_up(file_size, kSector));
  next_free_ = align_up(next_free_, kSector);
}

void VhdDevice::open_parent(const OpenOptions& options, ChainState& chain) {
  const std::string& path = file_.path();
  std::vector<std::pair<std::string, std::string>> candidates;  // (recorded, resolved)
  auto consider = [&](const std::string& recorded) {
    if (recorded.empty()) return;
    for (const auto& c : candidates)
      if (c.first == recorded) return;
    candidates.emplace_back(recorded, resolve_backing_path(path, recorded));
  };
  const uint64_t file_size = file_.size();
  for (uint32_t platform : {kPlatformW2ru, kPlatformMacX, kPlatformW2ku, kPlatformWi2r, kPlatformWi2k}) {
    for (const ParentLocator& l : header_.locators) {
      if (l.platform != platform || l.data_length == 0) continue;
      if (l.data_length > 64 * KiB || !range_within(l.data_offset, l.data_length, file_size))
        fail(ErrorCategory::corrupt, "{}: VHD parent locator data ({} bytes at 0x{:x}) lies outside the file", path,
             l.data_length, l.data_offset);
      std::vector<uint8_t> data(l.data_length);
      file_.read_exact(l.data_offset, data);
      consider(locator_path(platform, data));
    }
  }
  consider(header_.parent_name);
  if (candidates.empty()) fail(ErrorCategory::corrupt, "{}: differencing VHD names no parent", path);
  auto found = std::find_if(candidates.begin(), candidates.end(), [](const auto& c) { return file_exists(c.second); });
  if (found == candidates.end()) {
    if (options.open_backing)
      fail(ErrorCategory::not_found, "{}: parent of the differencing VHD not found (looked for {})", path,
           candidates.front().second);
    found = candidates.begin();
  }
  backing_recorded_ = found->first;
  backing_path_ = found->second;
  if (!options.open_backing) return;
  backing_ = open_backing(backing_path_, "vpc", options, chain);
  auto* parent = dynamic_cast<VhdDevice*>(backing_.get());
  if (!parent) fail(ErrorCategory::internal, "{}: parent {} did not open as VHD", path, backing_path_);
  if (parent->footer().unique_id != header_.parent_unique_id)
    fail(ErrorCategory::corrupt,
         "{}: parent {} has unique id {}, but this differencing disk was made for {} (parent replaced or modified?)",
         path, backing_path_, foreign::uuid_string(parent->footer().unique_id),
         foreign::uuid_string(header_.parent_unique_id));
}

VhdDevice::~VhdDevice() {
  try {
    close();
  } catch (const std::exception& e) {
    warn("{}: could not close cleanly: {}", file_.path(), e.what());
  }
}

void VhdDevice::require_writable(const char* op) const {
  if (!writable()) fail(ErrorCategory::usage, "{}: {} on an image opened read-only", filename(), op);
  if (closed_) fail(ErrorCategory::internal, "{}: {} after close", filename(), op);
}

// ---- reads ---------------------------------------------------------------------

VhdDevice::BitmapState VhdDevice::bitmap_state(uint64_t block) {
  auto state = static_cast<BitmapState>(bitmap_states_[block].load(std::memory_order_relaxed));
  if (state != unknown) return state;
  std::vector<uint8_t> bitmap = read_bitmap(block);
  const uint64_t sectors = block_size_ / kSector;
  bool all = true;
  for (uint64_t s = 0; s < sectors && all; s += 8)
    all = sectors - s >= 8 ? bitmap[s / 8] == 0xff : bit_set(bitmap, s);
  for (uint64_t s = align_down(sectors, 8); s < sectors && all; ++s) all = bit_set(bitmap, s);
  state = all ? full : partial;
  bitmap_states_[block].store(state, std::memory_order_relaxed);
  return state;
}

std::vector<uint8_t> VhdDevice::read_bitmap(uint64_t block) const {
  std::vector<uint8_t> bitmap(bitmap_size_);
  file_.read_exact(block_host(block), bitmap);
  return bitmap;
}

void VhdDevice::write_bitmap(uint64_t block, std::span<const uint8_t> bitmap) {
  file_.write_all(block_host(block), bitmap);
}

void VhdDevice::read_absent(uint64_t offset, std::span<uint8_t> out) const {
  if (differencing_) read_from_backing(offset, out);
  else std::memset(out.data(), 0, out.size());
}

void VhdDevice::read_block(uint64_t block, uint64_t in, std::span<uint8_t> out) {
  const uint64_t guest = block * block_size_ + in;
  if (bat_[block] == kUnallocated) {
    read_absent(guest, out);
    return;
  }
  if (bitmap_state(block) == full) {
    file_.read_exact(data_host(block) + in, out);
    return;
  }
  std::vector<uint8_t> bitmap = read_bitmap(block);
  // Runs of sectors with the same bit: present here, or absent (parent / zeros).
  uint64_t pos = 0;
  while (pos < out.size()) {
    const uint64_t sector = (in + pos) / kSector;
    const bool present = bit_set(bitmap, sector);
    uint64_t end = std::min<uint64_t>(out.size(), (sector + 1) * kSector - in);
    while (end < out.size() && bit_set(bitmap, (in + end) / kSector) == present)
      end = std::min<uint64_t>(out.size(), end + kSector);
    std::span<uint8_t> part = out.subspan(pos, end - pos);
    if (present) file_.read_exact(data_host(block) + in + pos, part);
    else read_absent(guest + pos, part);
    pos = end;
  }
}

void VhdDevice::read(uint64_t offset, std::span<uint8_t> out) {
  check_request(offset, out.size(), "read");
  if (!dynamic_) {
    file_.read_exact(offset, out);
    return;
  }
  std::shared_lock lock(lock_);
  size_t pos = 0;
  while (pos < out.size()) {
    const uint64_t at = offset + pos;
    const uint64_t block = at / block_size_, in = at % block_size_;
    const size_t n = static_cast<size_t>(std::min<uint64_t>(block_size_ - in, out.size() - pos));
    read_block(block, in, out.subspan(pos, n));
    pos += n;
  }
}

LayerStatus VhdDevice::layer_status(uint64_t offset, uint64_t max_length) {
  check_request(offset, max_length, "status");
  const uint64_t limit = std::min(max_length, size_ - offset);
  if (!dynamic_) {
    // A fixed disk is a raw file with a footer: holes read as zeros.
    foreign::HostRun run = foreign::host_run(file_, offset, limit);
    if (run.hole) return {ExtentKind::zero, run.length, std::nullopt};
    return {ExtentKind::data, run.length, offset};
  }
  std::shared_lock lock(lock_);
  const uint64_t block = offset / block_size_, in = offset % block_size_;
  if (bat_[block] == kUnallocated) {
    uint64_t length = block_size_ - in, b = block + 1;
    while (length < limit && b < bat_.size() && bat_[b] == kUnallocated) {
      length += block_size_;
      ++b;
    }
    return {ExtentKind::unallocated, std::min(length, limit), std::nullopt};
  }
  const ExtentKind absent = differencing_ ? ExtentKind::unallocated : ExtentKind::zero;
  if (bitmap_state(block) == full) {
    // Blocks never continue each other in the file (a bitmap sits in between).
    // Space of the block that is a hole in the file (never written, or zeroed)
    // reads as zeros.
    const uint64_t host = data_host(block) + in;
    foreign::HostRun run = foreign::host_run(file_, host, std::min(block_size_ - in, limit));
    if (run.hole) return {ExtentKind::zero, run.length, std::nullopt};
    return {ExtentKind::data, run.length, host};
  }
  std::vector<uint8_t> bitmap = read_bitmap(block);
  const uint64_t first = in / kSector;
  const bool present = bit_set(bitmap, first);
  uint64_t end_sector = first + 1;
  while (end_sector < block_size_ / kSector && bit_set(bitmap, end_sector) == present) ++end_sector;
  uint64_t length = std::min(end_sector * kSector - in, limit);
  if (present) return {ExtentKind::data, length, data_host(block) + in};
  return {absent, length, std::nullopt};
}

// ---- writes --------------------------------------------------------------------

void VhdDevice::barrier() {
  if (barriers_) file_.sync_data();
}

void VhdDevice::write_bat_entry(uint64_t block) {
  bat_dirty_begin_ = std::min(bat_dirty_begin_, block);
  bat_dirty_end_ = std::max(bat_dirty_end_, block + 1);
  if (barriers_) write_metadata();
}

// Writes the dirty part of the BAT (whole sectors) and the footer when it moved.
void VhdDevice::write_metadata() {
  if (footer_dirty_) {
    auto raw = encode_footer(footer_);
    file_.write_all(next_free_, raw);
    footer_dirty_ = false;
  }
  if (bat_dirty_begin_ < bat_dirty_end_) {
    const uint64_t per_sector = kSector / 4;
    const uint64_t first = align_down(bat_dirty_begin_, per_sector);
    const uint64_t last = std::min<uint64_t>(align_up(bat_dirty_end_, per_sector), header_.max_table_entries);
    std::vector<uint8_t> raw((last - first) * 4);
    for (uint64_t i = first; i < last; ++i)
      store_be32(raw.data() + (i - first) * 4, i < bat_.size() ? bat_[i] : kUnallocated);
    file_.write_all(header_.table_offset + first * 4, raw);
    bat_dirty_begin_ = UINT64_MAX;
    bat_dirty_end_ = 0;
  }
}

void VhdDevice::allocate_block(uint64_t block, uint64_t in, std::span<const uint8_t> data) {
  const uint64_t host = next_free_;
  if ((host + bitmap_size_ + block_size_) / kSector >= kUnallocated)
    fail(ErrorCategory::no_space, "{}: VHD file would grow beyond the 2 TiB its BAT can address", filename());
  const uint64_t guest_block = block * block_size_;
  std::vector<uint8_t> bitmap(bitmap_size_, 0);
  if (!differencing_) {
    // Like qemu: the whole block counts as written; its unwritten parts read as
    // zeros because the space past the old end of the file does.
    std::fill(bitmap.begin(), bitmap.end(), 0xff);
    file_.write_all(host, bitmap);
    foreign::write_into_zeroed(file_, host + bitmap_size_ + in, data);
  } else {
    // Only the written sectors are marked; partial sectors at the edges are
    // completed from the parent first.
    const uint64_t lo = align_down(in, kSector), hi = align_up(in + data.size(), kSector);
    std::vector<uint8_t> buf(hi - lo);
    if (lo < in) read_from_backing(guest_block + lo, std::span(buf.data(), kSector));
    if (hi > in + data.size()) read_from_backing(guest_block + hi - kSector, std::span(buf.data() + buf.size() - kSector, kSector));
    std::memcpy(buf.data() + (in - lo), data.data(), data.size());
    for (uint64_t s = lo / kSector; s < hi / kSector; ++s) bitmap[s / 8] = static_cast<uint8_t>(bitmap[s / 8] | (0x80 >> (s % 8)));
    file_.write_all(host, bitmap);
    foreign::write_into_zeroed(file_, host + bitmap_size_ + lo, buf);
  }
  next_free_ = host + bitmap_size_ + block_size_;
  footer_dirty_ = true;
  // The file covers the whole block even where its tail was skipped as zeros.
  if (file_.size() < next_free_) file_.truncate(next_free_);
  if (barriers_) {
    write_metadata();  // the footer behind the new block: the file stays a valid VHD
    barrier();         // block and footer on disk before the BAT entry points at them
  }
  bat_[block] = static_cast<uint32_t>(host / kSector);
  bitmap_states_[block].store(differencing_ ? unknown : full, std::memory_order_relaxed);
  write_bat_entry(block);
}

void VhdDevice::write_block_locked(uint64_t block, uint64_t in, std::span<const uint8_t> data) {
  if (bat_[block] == kUnallocated) {
    allocate_block(block, in, data);
    return;
  }
  if (bitmap_state(block) == full) {
    file_.write_all(data_host(block) + in, data);
    return;
  }
  // Some sectors are not in this file yet: complete the edge sectors from what
  // reads see now, write, then mark the sectors present.
  const uint64_t lo = align_down(in, kSector), hi = align_up(in + data.size(), kSector);
  std::vector<uint8_t> buf(hi - lo);
  if (lo < in) read_block(block, lo, std::span(buf.data(), kSector));
  if (hi > in + data.size()) read_block(block, hi - kSector, std::span(buf.data() + buf.size() - kSector, kSector));
  std::memcpy(buf.data() + (in - lo), data.data(), data.size());
  file_.write_all(data_host(block) + lo, buf);
  barrier();  // data before the bits that make it visible
  std::vector<uint8_t> bitmap = read_bitmap(block);
  for (uint64_t s = lo / kSector; s < hi / kSector; ++s) bitmap[s / 8] = static_cast<uint8_t>(bitmap[s / 8] | (0x80 >> (s % 8)));
  write_bitmap(block, bitmap);
  bitmap_states_[block].store(unknown, std::memory_order_relaxed);
}

void VhdDevice::write(uint64_t offset, std::span<const uint8_t> data) {
  require_writable("write");
  check_request(offset, data.size(), "write");
  if (!dynamic_) {
    file_.write_all(offset, data);
    return;
  }
  size_t pos = 0;
  while (pos < data.size()) {
    const uint64_t at = offset + pos;
    const uint64_t block = at / block_size_, in = at % block_size_;
    const size_t n = static_cast<size_t>(std::min<uint64_t>(block_size_ - in, data.size() - pos));
    {
      // Fast path: the block is here and complete; no metadata changes.
      std::shared_lock lock(lock_);
      if (bat_[block] != kUnallocated && bitmap_state(block) == full) {
        file_.write_all(data_host(block) + in, data.subspan(pos, n));
        pos += n;
        continue;
      }
    }
    std::unique_lock lock(lock_);
    write_block_locked(block, in, data.subspan(pos, n));
    pos += n;
  }
}

// Makes [offset, offset+length) of a dynamic or differencing disk read as zeros.
// Allocated space is given back to the file system by punching holes (the block
// stays allocated and reads zeros); in a differencing disk zeros must hide the
// parent, so they are written as data.
void VhdDevice::zero_dynamic(uint64_t offset, uint64_t length, bool whole_blocks_only, bool may_unmap) {
  std::unique_lock lock(lock_);
  uint64_t pos = offset;
  const uint64_t end = offset + length;
  while (pos < end) {
    const uint64_t block = pos / block_size_, in = pos % block_size_;
    const uint64_t n = std::min(block_size_ - in, end - pos);
    const bool whole = in == 0 && (n == block_size_ || pos + n == size_);
    if (whole_blocks_only && !whole) {
      pos += n;
      continue;
    }
    if (differencing_) {
      for (uint64_t done = 0; done < n;) {
        uint64_t m = std::min<uint64_t>(n - done, zero_buffer().size());
        write_block_locked(block, in + done, std::span(zero_buffer().data(), m));
        done += m;
      }
    } else if (bat_[block] != kUnallocated) {
      if (bitmap_state(block) != full) {
        for (uint64_t done = 0; done < n;) {
          uint64_t m = std::min<uint64_t>(n - done, zero_buffer().size());
          write_block_locked(block, in + done, std::span(zero_buffer().data(), m));
          done += m;
        }
      }
      const uint64_t host = data_host(block) + in;
      if (!(may_unmap ? file_.punch_hole(host, n) : file_.zero_range(host, n))) {
        for (uint64_t done = 0; done < n;) {
          uint64_t m = std::min<uint64_t>(n - done, zero_buffer().size());
          file_.write_all(data_host(block) + in + done, std::span(zero_buffer().data(), m));
          done += m;
        }
      }
    }
    pos += n;
  }
}

void VhdDevice::write_zeroes(uint64_t offset, uint64_t length, bool may_unmap) {
  require_writable("write zeroes");
  check_request(offset, length, "write zeroes");
  if (length == 0) return;
  if (dynamic_) {
    zero_dynamic(offset, length, false, may_unmap);
    return;
  }
  if (may_unmap && file_.punch_hole(offset, length)) return;
  if (file_.zero_range(offset, length)) return;
  for (uint64_t done = 0; done < length;) {
    uint64_t m = std::min<uint64_t>(length - done, zero_buffer().size());
    file_.write_all(offset + done, std::span(zero_buffer().data(), m));
    done += m;
  }
}

void VhdDevice::discard(uint64_t offset, uint64_t length) {
  require_writable("discard");
  check_request(offset, length, "discard");
  if (dynamic_) {
    zero_dynamic(offset, length, true, true);
    return;
  }
  const uint64_t start = align_up(offset, 4096), end = align_down(offset + length, 4096);
  if (end > start) write_zeroes(start, end - start, true);
}

void VhdDevice::flush() {
  if (!writable()) return;
  std::unique_lock lock(lock_);
  if (dynamic_) {
    barrier();
    write_metadata();
  }
  file_.sync_data();
}

void VhdDevice::close() {
  if (closed_) return;
  if (writable() && dynamic_) {
    std::unique_lock lock(lock_);
    if (barriers_) file_.sync_data();
    write_metadata();
    if (barriers_) file_.sync_data();
  }
  closed_ = true;
}

// ---- info ----------------------------------------------------------------------

ImageInfo VhdDevice::info() const {
  std::shared_lock lock(lock_);
  ImageInfo i;
  i.filename = filename();
  i.format = "vpc";
  i.virtual_size = size_;
  i.actual_size = file_.allocated_bytes();
  if (dynamic_) i.cluster_size = block_size_;
  std::string app(footer_.creator_app.data(), 4);
  while (!app.empty() && (app.back() == ' ' || app.back() == '\0')) app.pop_back();
  Json j{{"subformat", to_string(footer_.disk_type)},
         {"uuid", foreign::uuid_string(footer_.unique_id)},
         {"creator", app},
         {"creator-version", fmt::format("{}.{}", footer_.creator_version >> 16, footer_.creator_version & 0xffff)},
         {"geometry", Json{{"cylinders", footer_.geometry.cylinders},
                           {"heads", footer_.geometry.heads},
                           {"sectors", footer_.geometry.sectors_per_track}}},
         {"size-from", size_from_geometry(footer_) ? "geometry" : "current-size"},
         {"current-size", footer_.current_size}};
  if (dynamic_) {
    j["block-size"] = block_size_;
    uint64_t allocated = 0;
    for (uint32_t e : bat_) allocated += e != kUnallocated;
    j["allocated-blocks"] = allocated;
  }
  if (differencing_) {
    j["parent-uuid"] = foreign::uuid_string(header_.parent_unique_id);
    i.backing_file = backing_recorded_;
    i.backing_format = "vpc";
    i.full_backing_file = backing_path_;
  }
  i.format_specific = std::move(j);
  return i;
}

}  // namespace arche::image::vhd
