#include "image/vdi/vdi_device.h"

#include <algorithm>
#include <cstring>
#include <mutex>

#include "core/endian.h"
#include "core/error.h"
#include "core/log.h"
#include "core/units.h"
#include "image/foreign/sparse_write.h"

namespace arche::image::vdi {

namespace {

const std::vector<uint8_t>& zero_buffer() {
  static const std::vector<uint8_t> zeros(1 * MiB, 0);
  return zeros;
}

}  // namespace

VdiDevice::VdiDevice(File file, const OpenOptions& options) : file_(std::move(file)), barriers_(!options.no_barriers) {}

std::unique_ptr<VdiDevice> VdiDevice::open(const std::string& path, const OpenOptions& options) {
  File file = File::open(path, options.writable ? OpenMode::read_write : OpenMode::read_only);
  lock_image_file(file, options);
  std::unique_ptr<VdiDevice> dev(new VdiDevice(std::move(file), options));
  std::vector<uint8_t> raw(512);
  const uint64_t file_size = dev->file_.size();
  if (file_size < raw.size()) fail(ErrorCategory::format, "{}: too small for a VDI image ({} bytes)", path, file_size);
  dev->file_.read_exact(0, raw);
  Header& h = dev->header_ = parse_header(raw, path);
  // Like qemu: VBoxManage convertfromraw can leave odd sizes; round up to a sector.
  dev->size_ = align_up(h.disk_size, 512);
  const uint64_t map_bytes = uint64_t{h.blocks} * 4;
  if (!range_within(h.blocks_offset, map_bytes, file_size))
    fail(ErrorCategory::corrupt, "{}: VDI block map ({} entries at {}) lies outside the file (truncated?)", path, h.blocks,
         h.blocks_offset);
  std::vector<uint8_t> map_raw(map_bytes);
  dev->file_.read_exact(h.blocks_offset, map_raw);
  dev->map_.resize(h.blocks);
  std::vector<bool> used(h.blocks, false);
  uint32_t count = 0, next = 0;
  const uint64_t stride = uint64_t{h.block_size} + h.block_extra;
  for (uint32_t i = 0; i < h.blocks; ++i) {
    const uint32_t e = dev->map_[i] = load_le32(map_raw.data() + uint64_t{i} * 4);
    if (e >= kBlockZero) continue;
    if (e >= h.blocks)
      fail(ErrorCategory::corrupt, "{}: VDI block {} maps to host block {}, beyond the {} the image can hold", path, i, e,
           h.blocks);
    if (used[e]) fail(ErrorCategory::corrupt, "{}: VDI host block {} is used twice (block {})", path, e, i);
    used[e] = true;
    ++count;
    next = std::max(next, e + 1);
    if (!range_within(h.data_offset + e * stride, stride, file_size))
      fail(ErrorCategory::corrupt, "{}: VDI block {} at host block {} lies outside the {}-byte file (truncated?)", path, i,
           e, file_size);
  }
  if (count != h.blocks_allocated)
    warn("{}: VDI header counts {} allocated blocks, the block map {}{}", path, h.blocks_allocated, count,
         options.writable ? " (corrected on the next write)" : "");
  dev->next_index_ = std::max(next, count);
  if (count != h.blocks_allocated) {
    h.blocks_allocated = count;
    dev->header_dirty_ = true;
  }
  return dev;
}

VdiDevice::~VdiDevice() {
  try {
    close();
  } catch (const std::exception& e) {
    warn("{}: could not close cleanly: {}", file_.path(), e.what());
  }
}

void VdiDevice::require_writable(const char* op) const {
  if (!writable()) fail(ErrorCategory::usage, "{}: {} on an image opened read-only", filename(), op);
  if (closed_) fail(ErrorCategory::internal, "{}: {} after close", filename(), op);
}

void VdiDevice::read(uint64_t offset, std::span<uint8_t> out) {
  check_request(offset, out.size(), "read");
  std::shared_lock lock(lock_);
  const uint64_t bs = header_.block_size;
  for (size_t pos = 0; pos < out.size();) {
    const uint64_t at = offset + pos, block = at / bs, in = at % bs;
    const size_t n = static_cast<size_t>(std::min<uint64_t>(bs - in, out.size() - pos));
    if (allocated(block)) file_.read_exact(host(block) + in, out.subspan(pos, n));
    else std::memset(out.data() + pos, 0, n);
    pos += n;
  }
}

LayerStatus VdiDevice::layer_status(uint64_t offset, uint64_t max_length) {
  check_request(offset, max_length, "status");
  std::shared_lock lock(lock_);
  const uint64_t limit = std::min(max_length, size_ - offset);
  const uint64_t bs = header_.block_size;
  const uint64_t block = offset / bs, in = offset % bs;
  if (allocated(block)) {
    // A block whose space is a hole in the file (never written, or zeroed) reads as zeros.
    foreign::HostRun run = foreign::host_run(file_, host(block) + in, std::min(bs - in, limit));
    if (run.hole) return {ExtentKind::zero, run.length, std::nullopt};
    return {ExtentKind::data, run.length, host(block) + in};
  }
  const uint32_t marker = map_[block];
  uint64_t length = bs - in;
  for (uint64_t b = block + 1; length < limit && b < map_.size() && map_[b] == marker; ++b) length += bs;
  return {marker == kBlockZero ? ExtentKind::zero : ExtentKind::unallocated, std::min(length, limit), std::nullopt};
}

void VdiDevice::barrier() {
  if (barriers_) file_.sync_data();
}

// VirtualBox gives the image a new modification UUID when it is changed.
void VdiDevice::begin_change() {
  if (modified_) return;
  header_.uuid_modify = foreign::random_guid();
  header_dirty_ = true;
  modified_ = true;
  if (barriers_) write_metadata();
}

void VdiDevice::mark_dirty(uint64_t block) {
  map_dirty_begin_ = std::min(map_dirty_begin_, block);
  map_dirty_end_ = std::max(map_dirty_end_, block + 1);
}

void VdiDevice::write_metadata() {
  if (map_dirty_begin_ < map_dirty_end_) {
    const uint64_t per_sector = 512 / 4;
    const uint64_t first = align_down(map_dirty_begin_, per_sector);
    const uint64_t last = std::min<uint64_t>(align_up(map_dirty_end_, per_sector), map_.size());
    std::vector<uint8_t> raw((last - first) * 4);
    for (uint64_t i = first; i < last; ++i) store_le32(raw.data() + (i - first) * 4, map_[i]);
    file_.write_all(header_.blocks_offset + first * 4, raw);
    map_dirty_begin_ = UINT64_MAX;
    map_dirty_end_ = 0;
  }
  if (header_dirty_) {
    std::vector<uint8_t> raw = encode_header(header_);
    // Only the header's own bytes: the rest of the first sector may be the block map.
    file_.write_all(0, std::span(raw.data(), kHeaderOffset + header_.header_size));
    header_dirty_ = false;
  }
  const uint64_t end = header_.data_offset + uint64_t{next_index_} * (uint64_t{header_.block_size} + header_.block_extra);
  if (file_.size() < end) file_.truncate(end);
}

void VdiDevice::write_block_locked(uint64_t block, uint64_t in, std::span<const uint8_t> data) {
  if (allocated(block)) {
    file_.write_all(host(block) + in, data);
    return;
  }
  if (next_index_ >= header_.blocks)
    fail(ErrorCategory::corrupt, "{}: VDI image has no room for another block (all {} used)", filename(), header_.blocks);
  const uint32_t index = next_index_++;
  map_[block] = index;  // host() needs it; not written before the data
  foreign::write_into_zeroed(file_, host(block) + in, data);
  ++header_.blocks_allocated;
  header_dirty_ = true;
  mark_dirty(block);
  // The file covers the whole block even where its tail was skipped as zeros.
  const uint64_t end = header_.data_offset + uint64_t{next_index_} * (uint64_t{header_.block_size} + header_.block_extra);
  if (file_.size() < end) file_.truncate(end);
  if (barriers_) {
    barrier();  // the block before the map entry that points at it
    write_metadata();
  }
}

void VdiDevice::write(uint64_t offset, std::span<const uint8_t> data) {
  require_writable("write");
  check_request(offset, data.size(), "write");
  const uint64_t bs = header_.block_size;
  for (size_t pos = 0; pos < data.size();) {
    const uint64_t at = offset + pos, block = at / bs, in = at % bs;
    const size_t n = static_cast<size_t>(std::min<uint64_t>(bs - in, data.size() - pos));
    if (modified_) {
      std::shared_lock lock(lock_);
      if (allocated(block)) {
        file_.write_all(host(block) + in, data.subspan(pos, n));
        pos += n;
        continue;
      }
    }
    std::unique_lock lock(lock_);
    begin_change();
    write_block_locked(block, in, data.subspan(pos, n));
    pos += n;
  }
}

void VdiDevice::write_zeroes(uint64_t offset, uint64_t length, bool may_unmap) {
  require_writable("write zeroes");
  check_request(offset, length, "write zeroes");
  if (length == 0) return;
  std::unique_lock lock(lock_);
  begin_change();
  const uint64_t bs = header_.block_size;
  for (uint64_t pos = offset; pos < offset + length;) {
    const uint64_t block = pos / bs, in = pos % bs;
    const uint64_t n = std::min(bs - in, offset + length - pos);
    if (allocated(block)) {
      const uint64_t at = host(block) + in;
      if (!(may_unmap ? file_.punch_hole(at, n) : file_.zero_range(at, n)))
        for (uint64_t done = 0; done < n;) {
          uint64_t m = std::min<uint64_t>(n - done, zero_buffer().size());
          file_.write_all(at + done, std::span(zero_buffer().data(), m));
          done += m;
        }
    }
    pos += n;
  }
}

void VdiDevice::discard(uint64_t offset, uint64_t length) {
  require_writable("discard");
  check_request(offset, length, "discard");
  const uint64_t start = align_up(offset, 4096), end = std::min(align_down(offset + length, 4096), size_);
  if (end > start) write_zeroes(start, end - start, true);
}

void VdiDevice::flush() {
  if (!writable()) return;
  std::unique_lock lock(lock_);
  barrier();
  write_metadata();
  file_.sync_data();
}

void VdiDevice::close() {
  if (closed_) return;
  if (writable()) {
    std::unique_lock lock(lock_);
    barrier();
    write_metadata();
    if (barriers_) file_.sync_data();
  }
  closed_ = true;
}

ImageInfo VdiDevice::info() const {
  std::shared_lock lock(lock_);
  ImageInfo i;
  i.filename = filename();
  i.format = "vdi";
  i.virtual_size = size_;
  i.actual_size = file_.allocated_bytes();
  i.cluster_size = header_.block_size;
  i.format_specific = Json{{"subformat", header_.type == ImageType::fixed ? "static" : "dynamic"},
                           {"block-size", header_.block_size},
                           {"blocks", header_.blocks},
                           {"allocated-blocks", header_.blocks_allocated},
                           {"uuid", foreign::guid_string(header_.uuid_create)},
                           {"modify-uuid", foreign::guid_string(header_.uuid_modify)},
                           {"creator-text", header_.text.substr(0, header_.text.find('\n'))}};
  if (!header_.comment.empty()) i.format_specific["comment"] = header_.comment;
  return i;
}

}  // namespace arche::image::vdi
