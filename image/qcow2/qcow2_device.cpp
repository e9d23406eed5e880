#include "image/qcow2/qcow2_device.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "core/log.h"
#include "core/units.h"
#include "image/qcow2/qcow2_driver.h"
#include "image/qcow2/qcow2_info.h"

namespace arche::image::qcow2 {

namespace {

constexpr uint64_t kDefaultCacheBytes = 32 * MiB;
constexpr size_t kMaxPendingFrees = 65536;  // write back before the list grows further

size_t l2_cache_tables(const Header& h, uint64_t cache_bytes) {
  uint64_t budget = cache_bytes ? cache_bytes : kDefaultCacheBytes;
  uint64_t whole_disk = l1_entries_for(h.size, h.cluster_bits);
  return static_cast<size_t>(std::max<uint64_t>(std::min(whole_disk, budget / h.cluster_size()), 16));
}

std::vector<uint8_t>& zero_cluster_buffer(uint64_t size) {
  thread_local std::vector<uint8_t> zeros;
  if (zeros.size() < size) zeros.assign(size, 0);
  return zeros;
}

}  // namespace

Qcow2Device::Qcow2Device(File file, Header header, const OpenOptions& options)
    : file_(std::move(file)),
      header_(std::move(header)),
      cluster_size_(header_.cluster_size()),
      cluster_bits_(header_.cluster_bits),
      l2_bits_(header_.cluster_bits - 3),
      barriers_(!options.no_barriers),
      lazy_refcounts_(header_.compatible_features & kCompatLazyRefcounts),
      l2_cache_(file_, header_.cluster_size(), l2_cache_tables(header_, options.cache_bytes), "qcow2 L2 table") {}

std::unique_ptr<Qcow2Device> Qcow2Device::open(const std::string& path, const OpenOptions& options,
                                               ChainState& chain) {
  File file = File::open(path, options.writable ? OpenMode::read_write : OpenMode::read_only);
  lock_image_file(file, options);
  Header header = read_header(file);
  refuse_encrypted(header, path);

  if (options.writable && (header.incompatible_features & kIncompatCorrupt))
    fail(ErrorCategory::corrupt, "{}: image is marked corrupt; repair it with: arche image check -r all {}", path, path);
  if (options.writable && (header.incompatible_features & kIncompatDirty)) {
    // Lazy refcounts were in use and the image was not closed: rebuild refcounts.
    warn("{}: image was not closed cleanly; repairing its refcounts", path);
    check_file(file, RepairMode::all);
    header = read_header(file);
  }

  std::unique_ptr<Qcow2Device> dev(new Qcow2Device(std::move(file), std::move(header), options));
  Header& h = dev->header_;

  std::vector<uint8_t> l1_raw(uint64_t{h.l1_size} * 8);
  dev->file_.read_exact(h.l1_table_offset, l1_raw);
  dev->l1_.resize(h.l1_size);
  for (size_t i = 0; i < h.l1_size; ++i) dev->l1_[i] = load_be64(l1_raw.data() + i * 8);

  dev->snapshots_ = read_snapshots(dev->file_, h, nullptr);

  if (options.writable) {
    Qcow2Device* self = dev.get();
    dev->refcounts_ = std::make_unique<Refcounts>(
        dev->file_, h, l2_cache_tables(h, options.cache_bytes), [self] { self->write_header(); },
        [self] { self->barrier(); });
    dev->refcounts_->load();
    if (h.autoclear_features) {
      // arche does not maintain what these bits vouch for (persistent bitmaps).
      if (h.autoclear_features & kAutoclearBitmaps)
        warn("{}: persistent dirty bitmaps become inconsistent when arche writes to the image", path);
      h.autoclear_features = 0;
      dev->write_header();
    }
  }

  if (!h.backing_file.empty()) {
    dev->backing_path_ = resolve_backing_path(path, h.backing_file);
    if (options.open_backing)
      dev->backing_ = open_backing(dev->backing_path_, h.backing_format.value_or(""), options, chain);
  }
  return dev;
}

Qcow2Device::~Qcow2Device() {
  try {
    close();
  } catch (const std::exception& e) {
    warn("{}: could not close cleanly: {}", file_.path(), e.what());
  }
}

uint64_t Qcow2Device::size() const {
  std::shared_lock lock(lock_);
  return header_.size;
}

void Qcow2Device::require_writable(const char* op) const {
  if (!writable()) fail(ErrorCategory::usage, "{}: {} on an image opened read-only", filename(), op);
  if (closed_) fail(ErrorCategory::internal, "{}: {} after close", filename(), op);
}

// ---- lookups -------------------------------------------------------------------

Qcow2Device::ClusterType Qcow2Device::classify(uint64_t entry, uint64_t guest_offset) const {
  if (entry & kOflagCompressed) return ClusterType::compressed;
  const uint64_t host = entry & kOffsetMask;
  auto bad = [&](const char* why) -> ClusterType {
    fail(ErrorCategory::corrupt, "{}: qcow2 L2 entry 0x{:016x} for guest offset {} {}; check with: arche image check {}",
         filename(), entry, guest_offset, why, filename());
  };
  if (entry & kL2StandardReservedMask) return bad("has reserved bits set");
  if (host != 0 && host < cluster_size_) return bad("points into the image header");
  if (entry & kOflagZero) {
    if (header_.version < 3) return bad("has the zero flag in a version 2 image");
    return host ? ClusterType::zero_alloc : ClusterType::zero_plain;
  }
  if (host == 0) {
    if (entry & kOflagCopied) return bad("is marked copied but has no offset");
    return ClusterType::unallocated;
  }
  return ClusterType::normal;
}

TableRef Qcow2Device::l2_table(uint64_t slot) {
  uint64_t l1e = l1_[slot];
  if (l1e & kL1ReservedMask)
    fail(ErrorCategory::corrupt, "{}: qcow2 L1 entry {} (0x{:016x}) has reserved bits set", filename(), slot, l1e);
  uint64_t offset = l1e & kOffsetMask;
  if (offset == 0) return nullptr;
  if (offset < cluster_size_)
    fail(ErrorCategory::corrupt, "{}: qcow2 L1 entry {} points into the image header", filename(), slot);
  return l2_cache_.get(offset);
}

Qcow2Device::Run Qcow2Device::lookup(uint64_t offset, uint64_t max_length) {
  const uint64_t slot = l1_index(offset);
  const uint64_t table_end = (slot + 1) * l2_span();
  const uint64_t limit = std::min(max_length, table_end - offset);
  if (slot >= l1_.size()) return {ClusterType::unallocated, limit, 0, 0};
  TableRef t = l2_table(slot);
  if (!t) return {ClusterType::unallocated, limit, 0, 0};

  const uint64_t index = l2_index(offset);
  const uint64_t entry = t->be64(index);
  const ClusterType type = classify(entry, offset);
  const uint64_t in_cluster = offset & (cluster_size_ - 1);
  uint64_t length = cluster_size_ - in_cluster;
  if (type != ClusterType::compressed) {
    const uint64_t host = entry & kOffsetMask;
    for (uint64_t i = index + 1; length < limit && i < l2_entries(); ++i) {
      uint64_t e = t->be64(i);
      if (classify(e, offset + length) != type) break;
      if (type == ClusterType::normal && (e & kOffsetMask) != host + (i - index) * cluster_size_) break;
      length += cluster_size_;
    }
  }
  uint64_t host = type == ClusterType::normal ? (entry & kOffsetMask) + in_cluster : 0;
  return {type, std::min(length, limit), host, entry};
}

bool Qcow2Device::writable_in_place(uint64_t offset, uint64_t length) {
  for (uint64_t pos = align_down(offset, cluster_size_); pos < offset + length; pos += cluster_size_) {
    uint64_t slot = l1_index(pos);
    if (slot >= l1_.size() || !(l1_[slot] & kOflagCopied)) return false;
    TableRef t = l2_table(slot);
    if (!t) return false;
    uint64_t e = t->be64(l2_index(pos));
    if (classify(e, pos) != ClusterType::normal || !(e & kOflagCopied)) return false;
  }
  return true;
}

bool Qcow2Device::reads_as_zero(uint64_t entry, uint64_t guest_offset) const {
  switch (classify(entry, guest_offset)) {
    case ClusterType::zero_plain:
    case ClusterType::zero_alloc: return true;
    case ClusterType::unallocated: return header_.backing_file.empty();
    default: return false;
  }
}

// ---- reads ---------------------------------------------------------------------

void Qcow2Device::read_compressed(uint64_t entry, std::span<uint8_t> cluster) {
  {
    std::lock_guard lock(decompressed_mutex_);
    if (decompressed_entry_ == entry && decompressed_.size() == cluster.size()) {
      std::memcpy(cluster.data(), decompressed_.data(), cluster.size());
      return;
    }
  }
  CompressedRef ref = decode_compressed(entry, cluster_bits_);
  std::vector<uint8_t> in(ref.length);
  size_t got = file_.read_some(ref.offset, in);
  if (got == 0)
    fail(ErrorCategory::corrupt, "{}: qcow2 compressed cluster at 0x{:x} lies outside the file", filename(), ref.offset);
  in.resize(got);  // the last compressed cluster may end before its final sector does
  // What QEMU reads: the first cluster's worth of the stream.
  compress::decompress_into(codec_of(header_.compression_type), in, cluster, compress::Expect::prefix,
                            fmt::format("{}: qcow2 compressed cluster at 0x{:x}", filename(), ref.offset));
  std::lock_guard lock(decompressed_mutex_);
  decompressed_.assign(cluster.begin(), cluster.end());
  decompressed_entry_ = entry;
}

void Qcow2Device::read(uint64_t offset, std::span<uint8_t> out) {
  check_request(offset, out.size(), "read");
  std::shared_lock lock(lock_);
  size_t pos = 0;
  while (pos < out.size()) {
    const uint64_t at = offset + pos;
    Run r = lookup(at, out.size() - pos);
    std::span<uint8_t> part = out.subspan(pos, r.length);
    switch (r.type) {
      case ClusterType::unallocated: read_from_backing(at, part); break;
      case ClusterType::zero_plain:
      case ClusterType::zero_alloc: std::memset(part.data(), 0, part.size()); break;
      case ClusterType::normal: {
        size_t got = file_.read_some(r.host, part);
        if (got < part.size()) {
          // Like QEMU, a file may end inside its last cluster; beyond that it is damaged.
          uint64_t file_end = r.host + got;
          if (file_end <= align_down(r.host + part.size() - 1, cluster_size_))
            fail(ErrorCategory::corrupt, "{}: qcow2 data cluster at 0x{:x} lies outside the file", filename(),
                 align_down(file_end, cluster_size_));
          std::memset(part.data() + got, 0, part.size() - got);
        }
        break;
      }
      case ClusterType::compressed: {
        thread_local std::vector<uint8_t> cluster;
        cluster.resize(cluster_size_);
        read_compressed(r.entry, cluster);
        std::memcpy(part.data(), cluster.data() + (at & (cluster_size_ - 1)), part.size());
        break;
      }
    }
    pos += r.length;
  }
}

LayerStatus Qcow2Device::layer_status(uint64_t offset, uint64_t max_length) {
  check_request(offset, max_length, "status");
  std::shared_lock lock(lock_);
  Run r = lookup(offset, max_length);
  switch (r.type) {
    case ClusterType::unallocated: return {ExtentKind::unallocated, r.length, std::nullopt};
    case ClusterType::zero_plain:
    case ClusterType::zero_alloc: return {ExtentKind::zero, r.length, std::nullopt};
    case ClusterType::normal: return {ExtentKind::data, r.length, r.host};
    case ClusterType::compressed: return {ExtentKind::data, r.length, std::nullopt, true};
  }
  return {ExtentKind::unallocated, r.length, std::nullopt};
}

// ---- writes --------------------------------------------------------------------

void Qcow2Device::mark_dirty_for_lazy_refcounts() {
  if (lazy_refcounts_ && !(header_.incompatible_features & kIncompatDirty)) {
    header_.incompatible_features |= kIncompatDirty;
    write_header();
  }
}

void Qcow2Device::set_l2_entry(TableRef& l2, uint64_t index, uint64_t entry) {
  l2->set_be64(index, entry);
  l2_cache_.mark_dirty(l2);
}

void Qcow2Device::release_entry(uint64_t entry) {
  switch (classify(entry, 0)) {
    case ClusterType::normal:
    case ClusterType::zero_alloc: refcounts_->free_later((entry & kOffsetMask) >> cluster_bits_, 1); break;
    case ClusterType::compressed: {
      CompressedRef ref = decode_compressed(entry, cluster_bits_);
      for (uint64_t c = ref.offset >> cluster_bits_; c <= (ref.offset + ref.length - 1) >> cluster_bits_; ++c)
        refcounts_->free_later(c, 1);
      std::lock_guard lock(decompressed_mutex_);
      decompressed_entry_ = 0;
      break;
    }
    default: break;
  }
}

// The L2 table for slot, owned by this L1 alone: allocated when missing, copied
// when shared with an internal snapshot.
TableRef Qcow2Device::l2_table_for_write(uint64_t slot) {
  const uint64_t l1e = l1_[slot];
  TableRef old = l2_table(slot);
  if (old && (l1e & kOflagCopied)) return old;
  const uint64_t fresh = refcounts_->allocate(1);
  TableRef t = l2_cache_.create(fresh);
  if (old) {
    // The entries stay shared with the snapshot: none is exclusively owned now.
    t->bytes = old->bytes;
    for (uint64_t i = 0; i < l2_entries(); ++i) t->set_be64(i, t->be64(i) & ~kOflagCopied);
    refcounts_->free_later(old->offset >> cluster_bits_, 1);
  }
  l1_[slot] = fresh | kOflagCopied;
  l1_dirty_begin_ = std::min(l1_dirty_begin_, slot);
  l1_dirty_end_ = std::max(l1_dirty_end_, slot + 1);
  return t;
}

void Qcow2Device::read_cluster_before_write(uint64_t guest_cluster, uint64_t entry, std::span<uint8_t> out) {
  switch (classify(entry, guest_cluster)) {
    case ClusterType::unallocated: {
      uint64_t inside = std::min<uint64_t>(out.size(), header_.size - std::min(header_.size, guest_cluster));
      read_from_backing(guest_cluster, out.first(inside));
      std::memset(out.data() + inside, 0, out.size() - inside);
      break;
    }
    case ClusterType::zero_plain:
    case ClusterType::zero_alloc: std::memset(out.data(), 0, out.size()); break;
    case ClusterType::normal: {
      size_t got = file_.read_some(entry & kOffsetMask, out);
      std::memset(out.data() + got, 0, out.size() - got);
      break;
    }
    case ClusterType::compressed: read_compressed(entry, out); break;
  }
}

// Writes `data` (guest bytes starting at `offset`) into `count` consecutive guest
// clusters starting at L2 index first_index, which get new host clusters (or, for a
// preallocated zero cluster, keep theirs). Partly written clusters are completed
// from their old content first; then the L2 entries switch over.
void Qcow2Device::write_new_clusters(TableRef& l2, uint64_t first_index, uint64_t count, uint64_t offset,
                                     std::span<const uint8_t> data) {
  const uint64_t first_guest = align_down(offset, cluster_size_);
  const uint64_t data_end = offset + data.size();
  const uint64_t first_entry = l2->be64(first_index);
  const bool reuse = count == 1 && classify(first_entry, first_guest) == ClusterType::zero_alloc &&
                     (first_entry & kOflagCopied);
  const uint64_t host = reuse ? (first_entry & kOffsetMask) : refcounts_->allocate(count);

  uint64_t k = 0;
  while (k < count) {
    const uint64_t guest = first_guest + k * cluster_size_;
    if (offset <= guest && data_end >= guest + cluster_size_) {
      // A stretch of fully overwritten clusters goes straight from the caller's buffer.
      uint64_t n = 1;
      while (k + n < count && data_end >= guest + (n + 1) * cluster_size_) ++n;
      file_.write_all(host + k * cluster_size_, data.subspan(guest - offset, n * cluster_size_));
      k += n;
      continue;
    }
    thread_local std::vector<uint8_t> buf;
    buf.resize(cluster_size_);
    read_cluster_before_write(guest, l2->be64(first_index + k), buf);
    uint64_t from = std::max(offset, guest), to = std::min(data_end, guest + cluster_size_);
    std::memcpy(buf.data() + (from - guest), data.data() + (from - offset), to - from);
    file_.write_all(host + k * cluster_size_, buf);
    ++k;
  }
  for (k = 0; k < count; ++k) {
    uint64_t old = l2->be64(first_index + k);
    set_l2_entry(l2, first_index + k, (host + k * cluster_size_) | kOflagCopied);
    if (!reuse) release_entry(old);
  }
}

void Qcow2Device::write_locked(uint64_t offset, std::span<const uint8_t> data) {
  const uint64_t end = offset + data.size();
  uint64_t pos = offset;
  while (pos < end) {
    const uint64_t slot = l1_index(pos);
    const uint64_t segment_end = std::min(end, (slot + 1) * l2_span());
    TableRef l2 = l2_table_for_write(slot);
    while (pos < segment_end) {
      const uint64_t index = l2_index(pos);
      const uint64_t entry = l2->be64(index);
      const ClusterType type = classify(entry, pos);
      const uint64_t cluster_end = std::min(segment_end, align_down(pos, cluster_size_) + cluster_size_);
      if (type == ClusterType::normal && (entry & kOflagCopied)) {
        file_.write_all((entry & kOffsetMask) + (pos & (cluster_size_ - 1)), data.subspan(pos - offset, cluster_end - pos));
        pos = cluster_end;
        continue;
      }
      if (type == ClusterType::zero_alloc && (entry & kOflagCopied)) {
        write_new_clusters(l2, index, 1, pos, data.subspan(pos - offset, cluster_end - pos));
        pos = cluster_end;
        continue;
      }
      // A run of clusters that all need new host clusters, allocated in one piece.
      uint64_t count = 1;
      while (align_down(pos, cluster_size_) + count * cluster_size_ < segment_end) {
        uint64_t e = l2->be64(index + count);
        ClusterType t = classify(e, pos + count * cluster_size_);
        if ((t == ClusterType::normal || t == ClusterType::zero_alloc) && (e & kOflagCopied)) break;
        ++count;
      }
      const uint64_t run_end = std::min(segment_end, align_down(pos, cluster_size_) + count * cluster_size_);
      write_new_clusters(l2, index, count, pos, data.subspan(pos - offset, run_end - pos));
      pos = run_end;
    }
  }
}

// Convert's reflink path. Only for a range this layer holds nothing of (a fresh
// image being converted into): new host clusters are claimed, made to share the
// source's extents, then pointed at — the same order as a write (data before the
// L2 entries), and nothing is read, freed or copied on write.
bool Qcow2Device::clone_from(uint64_t offset, const File& source, uint64_t source_offset, uint64_t length) {
  require_writable("write");
  check_request(offset, length, "write");
  if (length == 0 || offset % cluster_size_ || length % cluster_size_) return false;
  std::unique_lock lock(lock_);
  for (uint64_t pos = offset; pos < offset + length; pos += cluster_size_) {
    TableRef l2 = l2_table(l1_index(pos));
    if (l2 && classify(l2->be64(l2_index(pos)), pos) != ClusterType::unallocated) return false;
  }
  mark_dirty_for_lazy_refcounts();
  for (uint64_t pos = offset; pos < offset + length;) {
    const uint64_t slot = l1_index(pos);
    const uint64_t segment_end = std::min(offset + length, (slot + 1) * l2_span());
    const uint64_t count = (segment_end - pos) >> cluster_bits_;
    TableRef l2 = l2_table_for_write(slot);
    const uint64_t host = refcounts_->allocate(count);
    if (!file_.clone_range(host, source, source_offset + (pos - offset), count * cluster_size_)) {
      // No table points at the clusters: they can be given back at once. What
      // earlier segments cloned stays (the caller writes the range over it).
      for (uint64_t k = 0; k < count; ++k) refcounts_->adjust((host >> cluster_bits_) + k, -1);
      return false;
    }
    for (uint64_t k = 0; k < count; ++k)
      set_l2_entry(l2, l2_index(pos) + k, (host + k * cluster_size_) | kOflagCopied);
    pos = segment_end;
  }
  writeback_if_full();
  return true;
}

void Qcow2Device::write(uint64_t offset, std::span<const uint8_t> data) {
  require_writable("write");
  check_request(offset, data.size(), "write");
  if (data.empty()) return;
  {
    // Fast path: every cluster is allocated and ours alone; no metadata changes.
    std::shared_lock lock(lock_);
    if (writable_in_place(offset, data.size())) {
      for (size_t pos = 0; pos < data.size();) {
        Run r = lookup(offset + pos, data.size() - pos);
        file_.write_all(r.host, data.subspan(pos, r.length));
        pos += r.length;
      }
      return;
    }
  }
  std::unique_lock lock(lock_);
  mark_dirty_for_lazy_refcounts();
  write_locked(offset, data);
  writeback_if_full();
}

// Makes whole clusters in [offset, offset+length) read as zeros (write_zeroes) or
// drops them (discard). Both express zeros in metadata where the format can.
void Qcow2Device::zero_clusters_locked(uint64_t offset, uint64_t length, bool may_unmap, bool discard) {
  const bool has_backing = !header_.backing_file.empty();
  const bool v3 = header_.version >= 3;
  for (uint64_t pos = offset; pos < offset + length;) {
    const uint64_t slot = l1_index(pos);
    const uint64_t segment_end = std::min(offset + length, (slot + 1) * l2_span());
    if (!has_backing && l2_table(slot) == nullptr) {  // nothing there, and nothing below
      pos = segment_end;
      continue;
    }
    if (has_backing && !v3) {
      // Version 2 cannot say "zero" over a backing file: store zeros.
      for (; pos < segment_end; pos += cluster_size_)
        write_locked(pos, std::span(zero_cluster_buffer(cluster_size_).data(),
                                    std::min<uint64_t>(cluster_size_, header_.size - pos)));
      continue;
    }
    TableRef l2 = l2_table_for_write(slot);
    for (; pos < segment_end; pos += cluster_size_) {
      const uint64_t index = l2_index(pos);
      const uint64_t old = l2->be64(index);
      const ClusterType type = classify(old, pos);
      uint64_t fresh;
      bool keep_host = false;
      if (!has_backing && (discard || may_unmap || type == ClusterType::unallocated)) {
        fresh = 0;
      } else if (v3 && !discard && !may_unmap && (type == ClusterType::normal || type == ClusterType::zero_alloc) &&
                 (old & kOflagCopied)) {
        fresh = (old & kOffsetMask) | kOflagCopied | kOflagZero;  // stays allocated, reads zero
        keep_host = true;
      } else if (!v3) {
        fresh = 0;  // only reached without a backing file
      } else {
        fresh = kOflagZero;
      }
      if (fresh == old) continue;
      set_l2_entry(l2, index, fresh);
      if (!keep_host) release_entry(old);
    }
  }
}

void Qcow2Device::write_zeroes(uint64_t offset, uint64_t length, bool may_unmap) {
  require_writable("write zeroes");
  check_request(offset, length, "write zeroes");
  if (length == 0) return;
  std::unique_lock lock(lock_);
  mark_dirty_for_lazy_refcounts();
  const uint64_t end = offset + length;
  // A range reaching the end of the disk covers its last, partial cluster whole.
  const uint64_t full_begin = align_up(offset, cluster_size_);
  const uint64_t full_end = end == header_.size ? align_up(end, cluster_size_) : align_down(end, cluster_size_);
  auto zero_partial = [&](uint64_t from, uint64_t to) {
    if (from >= to) return;
    uint64_t slot = l1_index(from);
    TableRef t = slot < l1_.size() ? l2_table(slot) : nullptr;
    uint64_t entry = t ? t->be64(l2_index(from)) : 0;
    if (reads_as_zero(entry, from)) return;
    write_locked(from, std::span(zero_cluster_buffer(cluster_size_).data(), to - from));
  };
  if (full_begin >= full_end) {
    // Within one cluster, or spanning a boundary without a whole cluster.
    zero_partial(offset, std::min(end, full_begin));
    if (full_begin < end) zero_partial(std::max(full_begin, offset), end);
  } else {
    zero_partial(offset, full_begin);
    zero_clusters_locked(full_begin, full_end - full_begin, may_unmap, false);
    zero_partial(full_end, end);
  }
  writeback_if_full();
}

void Qcow2Device::discard(uint64_t offset, uint64_t length) {
  require_writable("discard");
  check_request(offset, length, "discard");
  const uint64_t end = offset + length;
  const uint64_t full_begin = align_up(offset, cluster_size_);
  std::unique_lock lock(lock_);
  const uint64_t full_end = end == header_.size ? align_up(end, cluster_size_) : align_down(end, cluster_size_);
  if (full_begin >= full_end) return;  // partial clusters are left as they are
  mark_dirty_for_lazy_refcounts();
  zero_clusters_locked(full_begin, full_end - full_begin, true, true);
  writeback_if_full();
}

size_t Qcow2Device::pack(std::span<const uint8_t> block, std::span<uint8_t> out) const {
  if (block.size() > cluster_size_) fail(ErrorCategory::usage, "{}: compressed writes cover one cluster", filename());
  std::span<const uint8_t> cluster = block;
  if (block.size() < cluster_size_) {  // the disk's last cluster: compressed whole, zero-padded
    thread_local std::vector<uint8_t> padded;
    padded.assign(cluster_size_, 0);
    std::memcpy(padded.data(), block.data(), block.size());
    cluster = padded;
  }
  // Compression that saves less than a sector does not pay: the descriptor counts sectors.
  return compress::compress_into(codec_of(header_.compression_type), compression_level(header_.compression_type),
                                 cluster, out.first(std::min<size_t>(out.size(), packed_bound())));
}

// Where `length` compressed bytes go: packed back to back after the previous
// compressed cluster, continuing into the following host clusters when they are
// free, otherwise from a new cluster.
uint64_t Qcow2Device::place_compressed(uint64_t length) {
  if (compressed_cursor_) {
    uint64_t cluster_index = compressed_cursor_ >> cluster_bits_;
    uint64_t room = cluster_size_ - (compressed_cursor_ & (cluster_size_ - 1));
    if (length <= room || refcounts_->try_allocate_at(cluster_index + 1, div_round_up(length - room, cluster_size_))) {
      refcounts_->adjust(cluster_index, 1);
      uint64_t at = compressed_cursor_;
      compressed_cursor_ = (at + length) % cluster_size_ ? at + length : 0;
      return at;
    }
  }
  uint64_t at = refcounts_->allocate(div_round_up(length, cluster_size_));
  compressed_cursor_ = (at + length) % cluster_size_ ? at + length : 0;
  return at;
}

void Qcow2Device::write_packed(std::span<const PackedBlock> blocks) {
  require_writable("compressed write");
  for (const PackedBlock& b : blocks) {
    check_request(b.offset, b.block.size(), "compressed write");
    // Only the disk's last cluster may be short (the source may end before the
    // virtual size, which is rounded up to a sector).
    const bool last = b.offset + cluster_size_ >= size();
    if (b.offset % cluster_size_ != 0 || b.block.size() > cluster_size_ || (b.block.size() < cluster_size_ && !last) ||
        b.packed.size() > packed_bound())
      fail(ErrorCategory::usage, "{}: compressed writes must cover exactly one cluster", filename());
  }
  std::unique_lock lock(lock_);
  mark_dirty_for_lazy_refcounts();
  // Clusters placed back to back go to the file in one write.
  thread_local std::vector<uint8_t> run;
  uint64_t run_at = 0, run_slot = ~0ull;
  run.clear();
  auto write_run = [&] {
    if (!run.empty()) file_.write_all(run_at, run);
    run.clear();
  };
  for (const PackedBlock& b : blocks) {
    // The pending run goes to the file before anything that may write tables back
    // (an incompressible cluster's write, another L2 table): a table on disk never
    // points at compressed bytes still in memory.
    const uint64_t slot = l1_index(b.offset);
    if (b.packed.empty() || slot != run_slot) write_run();
    run_slot = slot;
    if (b.packed.empty()) {  // incompressible: stored plainly
      write_locked(b.offset, b.block);
      continue;
    }
    TableRef l2 = l2_table_for_write(slot);
    const uint64_t at = place_compressed(b.packed.size());
    if (at != run_at + run.size()) {
      write_run();
      run_at = at;
    }
    run.insert(run.end(), b.packed.begin(), b.packed.end());
    const uint64_t index = l2_index(b.offset);
    uint64_t old = l2->be64(index);
    set_l2_entry(l2, index, encode_compressed(at, b.packed.size(), cluster_bits_));
    release_entry(old);
  }
  write_run();
  writeback_if_full();
}

// ---- metadata write-back -------------------------------------------------------

void Qcow2Device::barrier() {
  if (barriers_) file_.sync_data();
}

void Qcow2Device::write_header() {
  std::vector<uint8_t> bytes = encode_header(header_);
  file_.write_all(0, bytes);
  barrier();
}

void Qcow2Device::write_l1_dirty() {
  if (l1_dirty_begin_ >= l1_dirty_end_) return;
  uint64_t first = align_down(l1_dirty_begin_ * 8, 512) / 8;
  uint64_t last = std::min<uint64_t>(align_up(l1_dirty_end_ * 8, 512) / 8, l1_.size());
  std::vector<uint8_t> raw((last - first) * 8);
  for (uint64_t i = first; i < last; ++i) store_be64(raw.data() + (i - first) * 8, l1_[i]);
  file_.write_all(header_.l1_table_offset + first * 8, raw);
  l1_dirty_begin_ = UINT64_MAX;
  l1_dirty_end_ = 0;
}

void Qcow2Device::flush_metadata(bool durable) {
  if (refcounts_) {
    if (l2_cache_.has_dirty() || l1_dirty_begin_ < l1_dirty_end_) {
      refcounts_->write_dirty();  // refcounts before the tables that reference the clusters
      barrier();                  // ... and data before the L2 entries that point at it
      l2_cache_.write_dirty();
      write_l1_dirty();
    }
    if (refcounts_->has_pending_frees()) {
      barrier();  // the tables that dropped the clusters are on disk: now free them
      for (uint64_t c : refcounts_->apply_pending_frees()) l2_cache_.forget(c << cluster_bits_);
      compressed_cursor_ = 0;  // its cluster may just have been freed
    }
    refcounts_->write_dirty();
  }
  if (durable) file_.sync_data();
}

void Qcow2Device::writeback_if_full() {
  if (l2_cache_.size() > l2_cache_.capacity() || refcounts_->pending_free_count() > kMaxPendingFrees) {
    flush_metadata(false);
    refcounts_->trim_cache();
  }
  l2_cache_.trim();
}

void Qcow2Device::flush() {
  if (!writable()) return;
  std::unique_lock lock(lock_);
  flush_metadata(true);
}

void Qcow2Device::close() {
  if (closed_) return;
  if (writable()) {
    std::unique_lock lock(lock_);
    flush_metadata(barriers_);
    if (header_.incompatible_features & kIncompatDirty) {
      header_.incompatible_features &= ~kIncompatDirty;
      write_header();
    }
  }
  closed_ = true;
}

// ---- resize, backing, empty ----------------------------------------------------

void Qcow2Device::grow_l1(uint64_t entries) {
  flush_metadata(false);  // every L2 table on disk before a new L1 points at it
  const uint64_t clusters = div_round_up(entries * 8, cluster_size_);
  const uint64_t offset = refcounts_->allocate(clusters);
  std::vector<uint8_t> raw(clusters * cluster_size_, 0);
  for (size_t i = 0; i < l1_.size(); ++i) store_be64(raw.data() + i * 8, l1_[i]);
  file_.write_all(offset, raw);
  refcounts_->write_dirty();
  barrier();
  const uint64_t old_offset = header_.l1_table_offset;
  const uint64_t old_clusters = div_round_up(uint64_t{header_.l1_size} * 8, cluster_size_);
  header_.l1_table_offset = offset;
  header_.l1_size = static_cast<uint32_t>(entries);
  write_header();
  l1_.resize(entries, 0);
  l1_dirty_begin_ = UINT64_MAX;
  l1_dirty_end_ = 0;
  if (old_offset && old_clusters) refcounts_->free_later(old_offset >> cluster_bits_, old_clusters);
}

void Qcow2Device::resize(uint64_t new_size) {
  require_writable("resize");
  std::unique_lock lock(lock_);
  if (header_.nb_snapshots > 0)
    fail(ErrorCategory::unsupported, "{}: cannot resize a qcow2 image that has internal snapshots", filename());
  const uint64_t old_size = header_.size;
  if (new_size == old_size) return;
  if (l1_entries_for(new_size, cluster_bits_) * 8 > kMaxL1Bytes)
    fail(ErrorCategory::usage, "{}: {} bytes is too large for {}-byte clusters", filename(), new_size, cluster_size_);
  mark_dirty_for_lazy_refcounts();
  if (new_size > old_size) {
    uint64_t needed = l1_entries_for(new_size, cluster_bits_);
    if (needed > l1_.size()) grow_l1(needed);
    header_.size = new_size;
    // Bytes past the old end in its last cluster may hold data from before a shrink.
    uint64_t tail_end = std::min(new_size, align_up(old_size, cluster_size_));
    if (tail_end > old_size) {
      uint64_t slot = l1_index(old_size);
      TableRef t = l2_table(slot);
      uint64_t entry = t ? t->be64(l2_index(old_size)) : 0;
      if (!reads_as_zero(entry, old_size))
        write_locked(old_size, std::span(zero_cluster_buffer(cluster_size_).data(), tail_end - old_size));
    }
  } else {
    // Drop every cluster that lies wholly beyond the new end.
    const uint64_t first = align_up(new_size, cluster_size_);
    const uint64_t per_table = l2_span();
    for (uint64_t pos = first; pos < align_up(old_size, cluster_size_);) {
      uint64_t slot = l1_index(pos);
      uint64_t segment_end = std::min(align_up(old_size, cluster_size_), (slot + 1) * per_table);
      TableRef t = l2_table(slot);
      if (!t) {
        pos = segment_end;
        continue;
      }
      if (pos % per_table == 0) {  // the whole table goes: release it and all it holds
        for (uint64_t i = 0; i < l2_entries(); ++i) release_entry(t->be64(i));
        refcounts_->free_later(t->offset >> cluster_bits_, 1);
        l1_[slot] = 0;
        l1_dirty_begin_ = std::min(l1_dirty_begin_, slot);
        l1_dirty_end_ = std::max(l1_dirty_end_, slot + 1);
        pos = segment_end;
        continue;
      }
      TableRef l2 = l2_table_for_write(slot);
      for (; pos < segment_end; pos += cluster_size_) {
        uint64_t index = l2_index(pos);
        uint64_t old = l2->be64(index);
        if (old == 0) continue;
        set_l2_entry(l2, index, 0);
        release_entry(old);
      }
    }
  }
  flush_metadata(false);
  header_.size = new_size;
  write_header();
}

void Qcow2Device::set_backing(const std::string& backing_file, const std::string& backing_format,
                              std::unique_ptr<BlockDevice> device) {
  require_writable("rebase");
  std::unique_lock lock(lock_);
  Header updated = header_;
  updated.backing_file = backing_file;
  updated.backing_format = backing_file.empty() ? std::nullopt : std::optional<std::string>(backing_format);
  encode_header(updated);  // throws before anything is written if it does not fit
  header_ = std::move(updated);
  flush_metadata(false);
  write_header();
  backing_path_ = backing_file.empty() ? "" : resolve_backing_path(filename(), backing_file);
  backing_ = std::move(device);
}

void Qcow2Device::make_empty() {
  require_writable("empty");
  std::unique_lock lock(lock_);
  mark_dirty_for_lazy_refcounts();
  for (uint64_t i = 0; i < l1_.size(); ++i) {
    TableRef t = l2_table(i);
    if (!t) continue;
    for (uint64_t k = 0; k < l2_entries(); ++k) release_entry(t->be64(k));
    refcounts_->free_later(t->offset >> cluster_bits_, 1);
    l1_[i] = 0;
    l1_dirty_begin_ = std::min(l1_dirty_begin_, i);
    l1_dirty_end_ = std::max(l1_dirty_end_, i + 1);
  }
  flush_metadata(true);
  // Give the freed space at the end of the file back to the file system.
  uint64_t end = refcounts_->end_cluster() << cluster_bits_;
  if (end < file_.size()) file_.truncate(end);
}

// ---- info ----------------------------------------------------------------------

ImageInfo Qcow2Device::info() const {
  std::shared_lock lock(lock_);
  return describe_image(file_, header_, snapshots_, backing_path_);
}

}  // namespace arche::image::qcow2
