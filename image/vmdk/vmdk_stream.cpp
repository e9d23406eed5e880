#include "image/vmdk/vmdk_stream.h"

#include <algorithm>
#include <cstring>

#include "core/bytes.h"
#include "core/compress.h"
#include "core/endian.h"
#include "core/error.h"
#include "core/units.h"

namespace arche::image::vmdk {

namespace {

constexpr size_t kWriteBatch = 8 * 1024 * 1024;  // append in large writes, not per grain
constexpr size_t kGrainMarkerBytes = 12;         // lba (u64) + size (u32)

void append_u32_table(std::vector<uint8_t>& out, const std::vector<uint32_t>& table, uint64_t sectors) {
  size_t at = out.size();
  out.resize(at + sectors * kSector, 0);
  for (size_t i = 0; i < table.size(); ++i) store_le32(out.data() + at + i * 4, table[i]);
}

void pad_sector(std::vector<uint8_t>& out) {
  if (out.size() % kSector) out.resize(align_up(out.size(), kSector), 0);
}

}  // namespace

StreamWriter::StreamWriter(const File& file, SparseHeader header, int compression_level)
    : file_(file),
      header_(header),
      level_(compression_level),
      grain_bytes_(header.grain_bytes()),
      disk_bytes_(header.capacity * kSector) {
  b_.cursor = header_.overhead * kSector;
  b_.gd.assign(header_.gd_entries(), 0);
  b_.gt.assign(header_.gtes_per_gt, 0);
}

uint64_t StreamWriter::grain_bytes_at(uint64_t grain) const {
  return std::min(grain_bytes_, disk_bytes_ - grain * grain_bytes_);
}

void StreamWriter::check_order(uint64_t offset, uint64_t length) {
  if (offset < watermark_)
    fail(ErrorCategory::usage,
         "{}: a streamOptimized VMDK is written front to back: write at {} comes after a write up to {}", file_.path(),
         offset, watermark_);
  if (offset > disk_bytes_ || length > disk_bytes_ - offset)
    fail(ErrorCategory::usage, "{}: write beyond the end of the disk", file_.path());
  watermark_ = offset + length;
}

void StreamWriter::append_grain(Builder& b, uint64_t grain, std::span<const uint8_t> packed) const {
  const int64_t gt_index = static_cast<int64_t>(grain / header_.gtes_per_gt);
  if (gt_index != b.gt_index) {
    close_grain_table(b);
    b.gt_index = gt_index;
  }
  const uint64_t sector = b.position() / kSector;
  if (sector > 0xffffffffull)
    fail(ErrorCategory::no_space, "{}: streamOptimized extent grew beyond 2 TiB", file_.path());
  b.gt[grain % header_.gtes_per_gt] = static_cast<uint32_t>(sector);
  b.gt_used = true;
  size_t at = b.out.size();
  b.out.resize(at + kGrainMarkerBytes);
  store_le64(b.out.data() + at, grain * header_.grain_size);
  store_le32(b.out.data() + at + 8, static_cast<uint32_t>(packed.size()));
  b.out.insert(b.out.end(), packed.begin(), packed.end());
  pad_sector(b.out);
}

void StreamWriter::close_grain_table(Builder& b) const {
  if (b.gt_index >= 0 && b.gt_used) {
    std::vector<uint8_t> marker = encode_metadata_marker(MarkerType::grain_table, header_.gt_sectors());
    b.out.insert(b.out.end(), marker.begin(), marker.end());
    b.gd[static_cast<size_t>(b.gt_index)] = static_cast<uint32_t>(b.position() / kSector);
    append_u32_table(b.out, b.gt, header_.gt_sectors());
  }
  b.gt_index = -1;
  b.gt_used = false;
  std::fill(b.gt.begin(), b.gt.end(), 0);
}

void StreamWriter::append_tail(Builder& b) const {
  close_grain_table(b);
  std::vector<uint8_t> marker = encode_metadata_marker(MarkerType::grain_directory, header_.gd_sectors());
  b.out.insert(b.out.end(), marker.begin(), marker.end());
  SparseHeader footer = header_;
  footer.gd_offset = b.position() / kSector;
  append_u32_table(b.out, b.gd, header_.gd_sectors());
  marker = encode_metadata_marker(MarkerType::footer, 1);
  b.out.insert(b.out.end(), marker.begin(), marker.end());
  std::vector<uint8_t> f = encode_sparse_header(footer);
  b.out.insert(b.out.end(), f.begin(), f.end());
  marker = encode_metadata_marker(MarkerType::end_of_stream, 0);
  b.out.insert(b.out.end(), marker.begin(), marker.end());
}

void StreamWriter::emit_pending(Builder& b) {
  if (pending_grain_ < 0) return;
  const uint64_t grain = static_cast<uint64_t>(pending_grain_);
  std::span<const uint8_t> data(pending_.data(), grain_bytes_);
  if (!all_zero(data)) append_grain(b, grain, compress_grain(data, level_));
  pending_grain_ = -1;
}

void StreamWriter::write_out(Builder& b) {
  if (b.out.empty()) return;
  file_.write_all(b.cursor, b.out);
  b.cursor += b.out.size();
  b.out.clear();
}

void StreamWriter::skip(uint64_t offset, uint64_t length) {
  std::lock_guard lock(mutex_);
  check_order(offset, length);
  if (pending_grain_ >= 0 && (offset + length) / grain_bytes_ > static_cast<uint64_t>(pending_grain_))
    emit_pending(b_);
}

void StreamWriter::write(uint64_t offset, std::span<const uint8_t> data) {
  std::lock_guard lock(mutex_);
  check_order(offset, data.size());
  uint64_t pos = offset;
  const uint64_t end = offset + data.size();

  // Bytes for the grain that an earlier write began.
  if (pending_grain_ >= 0) {
    const uint64_t g = static_cast<uint64_t>(pending_grain_);
    if (pos / grain_bytes_ == g) {
      const uint64_t grain_end = g * grain_bytes_ + grain_bytes_at(g);
      const uint64_t n = std::min(end, grain_end) - pos;
      std::memcpy(pending_.data() + (pos - g * grain_bytes_), data.data(), n);
      pos += n;
      if (pos == grain_end) emit_pending(b_);
    } else {
      emit_pending(b_);
    }
  }

  // Whole grains (the disk's last grain counts as whole when written to the end),
  // compressed in parallel.
  const uint64_t first = div_round_up(pos, grain_bytes_);
  uint64_t whole_end = first;
  while (whole_end * grain_bytes_ < end && whole_end * grain_bytes_ + grain_bytes_at(whole_end) <= end) ++whole_end;
  if (pos % grain_bytes_ != 0 && first * grain_bytes_ < end) {
    // A write starting inside a grain no earlier write touched.
    const uint64_t g = pos / grain_bytes_;
    pending_.assign(grain_bytes_, 0);
    pending_grain_ = static_cast<int64_t>(g);
    const uint64_t n = std::min(end, (g + 1) * grain_bytes_) - pos;
    std::memcpy(pending_.data() + (pos % grain_bytes_), data.data() + (pos - offset), n);
    pos += n;
    if (pos >= g * grain_bytes_ + grain_bytes_at(g)) emit_pending(b_);
  }
  if (whole_end > first && pos == first * grain_bytes_) {
    const size_t count = whole_end - first;
    std::vector<std::vector<uint8_t>> packed(count);
    auto pack_one = [&](size_t i) {
      const uint64_t g = first + i;
      std::span<const uint8_t> src = data.subspan(g * grain_bytes_ - offset, grain_bytes_at(g));
      if (all_zero(src)) return;
      packed[i].resize(packed_bound());
      packed[i].resize(pack(src, packed[i]));
    };
    if (count >= 4) {
      if (!pool_) pool_ = std::make_unique<ThreadPool>();
      parallel_for(*pool_, count, pack_one);
    } else {
      for (size_t i = 0; i < count; ++i) pack_one(i);
    }
    for (size_t i = 0; i < count; ++i)
      if (!packed[i].empty()) append_grain(b_, first + i, packed[i]);
    pos = std::min(end, whole_end * grain_bytes_);
  }

  // A tail that ends inside a grain waits for the rest of it.
  if (pos < end) {
    const uint64_t g = pos / grain_bytes_;
    pending_.assign(grain_bytes_, 0);
    pending_grain_ = static_cast<int64_t>(g);
    std::memcpy(pending_.data() + (pos - g * grain_bytes_), data.data() + (pos - offset), end - pos);
  }
  if (b_.out.size() >= kWriteBatch) write_out(b_);
}

size_t StreamWriter::packed_bound() const { return compress::bound(compress::Codec::zlib, grain_bytes_); }

size_t StreamWriter::pack(std::span<const uint8_t> grain, std::span<uint8_t> out) const {
  if (grain.size() > grain_bytes_ || out.size() < packed_bound())
    fail(ErrorCategory::internal, "{}: pack() of {} bytes into {}", file_.path(), grain.size(), out.size());
  std::span<const uint8_t> full = grain;
  if (grain.size() < grain_bytes_) {  // the disk's short last grain, zero-padded
    thread_local std::vector<uint8_t> padded;
    padded.assign(grain_bytes_, 0);
    std::memcpy(padded.data(), grain.data(), grain.size());
    full = padded;
  }
  return compress::compress_into(compress::Codec::zlib, level_, full, out);
}

void StreamWriter::write_packed(std::span<const PackedBlock> blocks) {
  std::lock_guard lock(mutex_);
  for (const PackedBlock& b : blocks) {
    const uint64_t g = b.offset / grain_bytes_;
    // Only the disk's last grain may be short, also shorter than the disk (whose size
    // is rounded up to a sector): the rest of it reads as zeros.
    const bool last = (g + 1) * grain_bytes_ >= disk_bytes_;
    if (b.offset % grain_bytes_ != 0 || g * grain_bytes_ >= disk_bytes_ || b.block.size() > grain_bytes_at(g) ||
        (b.block.size() < grain_bytes_ && !last))
      fail(ErrorCategory::usage, "{}: compressed writes must cover exactly one grain", file_.path());
    check_order(b.offset, b.block.size());
    emit_pending(b_);  // a grain an earlier write began is complete: nothing can reach it now
    if (all_zero(b.block)) continue;
    if (!b.packed.empty()) {
      append_grain(b_, g, b.packed);
    } else {
      std::vector<uint8_t> packed(packed_bound());
      packed.resize(pack(b.block, packed));
      append_grain(b_, g, packed);
    }
  }
  if (b_.out.size() >= kWriteBatch) write_out(b_);
}

void StreamWriter::flush(bool durable) {
  std::lock_guard lock(mutex_);
  write_out(b_);
  Builder provisional = b_;
  if (pending_grain_ >= 0) {
    std::span<const uint8_t> data(pending_.data(), grain_bytes_);
    if (!all_zero(data)) append_grain(provisional, static_cast<uint64_t>(pending_grain_), compress_grain(data, level_));
  }
  append_tail(provisional);
  file_.write_all(provisional.cursor, provisional.out);
  file_.truncate(provisional.position());
  if (durable) file_.sync_data();
}

void StreamWriter::finish() {
  std::lock_guard lock(mutex_);
  emit_pending(b_);
  append_tail(b_);
  write_out(b_);
  file_.truncate(b_.cursor);
}

}  // namespace arche::image::vmdk
