#include "image/qcow2/refcounts.h"

#include <algorithm>

#include "core/error.h"
#include "core/units.h"

namespace arche::image::qcow2 {

Refcounts::Refcounts(const File& file, Header& header, size_t cache_tables, std::function<void()> write_header,
                     std::function<void()> barrier)
    : file_(file),
      header_(header),
      write_header_(std::move(write_header)),
      barrier_(std::move(barrier)),
      cache_(file, header.cluster_size(), cache_tables, "qcow2 refcount block"),
      cluster_bits_(header.cluster_bits),
      block_bits_(header.cluster_bits + 3 - header.refcount_order) {}

void Refcounts::load() {
  uint64_t bytes = uint64_t{header_.refcount_table_clusters} << cluster_bits_;
  std::vector<uint8_t> raw(bytes);
  file_.read_exact(header_.refcount_table_offset, raw);
  table_.resize(bytes / 8);
  uint64_t file_size = file_.size();
  for (size_t i = 0; i < table_.size(); ++i) {
    uint64_t e = load_be64(raw.data() + i * 8);
    if (e & kRefcountTableReservedMask)
      fail(ErrorCategory::corrupt, "{}: qcow2 refcount table entry {} is misaligned (0x{:x}); repair with: arche image check -r all",
           file_.path(), i, e);
    if (e && !range_within(e, header_.cluster_size(), file_size))
      fail(ErrorCategory::corrupt, "{}: qcow2 refcount block {} at 0x{:x} lies outside the file; repair with: arche image check -r all",
           file_.path(), i, e);
    table_[i] = e;
  }
  std::vector<uint64_t> used;
  for (uint64_t e : table_)
    if (e) used.push_back(e);
  std::sort(used.begin(), used.end());
  if (std::adjacent_find(used.begin(), used.end()) != used.end())
    fail(ErrorCategory::corrupt, "{}: qcow2 refcount table uses one block twice; repair with: arche image check -r all",
         file_.path());
}

uint64_t Refcounts::max_refcount() const {
  return header_.refcount_order == 6 ? UINT64_MAX : (1ull << header_.refcount_bits()) - 1;
}

uint64_t Refcounts::entry(const Table& t, uint64_t index) const {
  return refcount_get(t.bytes, index, header_.refcount_order);
}

void Refcounts::set_entry(Table& t, uint64_t index, uint64_t value) {
  refcount_set(t.bytes, index, header_.refcount_order, value);
}

bool Refcounts::block_exists(uint64_t table_index) const {
  return table_index < table_.size() && table_[table_index] != 0;
}

TableRef Refcounts::block(uint64_t table_index) { return cache_.get(table_[table_index]); }

uint64_t Refcounts::get(uint64_t cluster) {
  uint64_t ti = cluster >> block_bits_;
  if (!block_exists(ti)) return 0;
  return entry(*block(ti), cluster & ((1ull << block_bits_) - 1));
}

void Refcounts::adjust(uint64_t cluster, int64_t delta) {
  if (delta == 0) return;
  uint64_t ti = cluster >> block_bits_;
  if (!block_exists(ti)) {
    if (delta < 0)
      fail(ErrorCategory::corrupt, "{}: qcow2 refcount of cluster {} would drop below zero", file_.path(), cluster);
    create_block(ti);
  }
  TableRef b = block(ti);
  uint64_t index = cluster & ((1ull << block_bits_) - 1);
  uint64_t old = entry(*b, index);
  if (delta < 0 && old < static_cast<uint64_t>(-delta))
    fail(ErrorCategory::corrupt, "{}: qcow2 refcount of cluster {} would drop below zero", file_.path(), cluster);
  if (delta > 0 && max_refcount() - old < static_cast<uint64_t>(delta))
    fail(ErrorCategory::corrupt, "{}: qcow2 refcount of cluster {} would overflow {} bits", file_.path(), cluster,
         header_.refcount_bits());
  set_entry(*b, index, old + static_cast<uint64_t>(delta));
  cache_.mark_dirty(b);
  if (old + static_cast<uint64_t>(delta) == 0) free_hint_ = std::max<uint64_t>(1, std::min(free_hint_, cluster));
}

void Refcounts::mark_table_dirty(uint64_t index) {
  table_dirty_begin_ = std::min(table_dirty_begin_, index);
  table_dirty_end_ = std::max(table_dirty_end_, index + 1);
}

// A new refcount block for table_index. It must itself be refcounted: when the free
// cluster it takes is covered by the new block, the block describes itself; when it
// is covered by another missing block, that one is made first.
void Refcounts::create_block(uint64_t table_index) {
  for (;;) {
    if (block_exists(table_index)) return;
    if (table_index >= table_.size()) {
      grow_table(table_index + 1);
      continue;
    }
    uint64_t c = find_free_run(1);
    uint64_t covering = c >> block_bits_;
    if (covering != table_index && !block_exists(covering)) {
      create_block(covering);  // takes a cluster; search again
      continue;
    }
    check_not_metadata(c, 1);
    TableRef b = cache_.create(c << cluster_bits_);
    table_[table_index] = c << cluster_bits_;
    mark_table_dirty(table_index);
    if (covering == table_index) {
      set_entry(*b, c & ((1ull << block_bits_) - 1), 1);
    } else {
      adjust(c, 1);
    }
    return;
  }
}

// Moves the refcount table to a larger area at the end of the image, together with
// the refcount blocks that area itself needs, then switches the header to it.
void Refcounts::grow_table(uint64_t min_entries) {
  const uint64_t cs = header_.cluster_size();
  const uint64_t per_block = 1ull << block_bits_;
  uint64_t start = end_cluster();
  uint64_t entries = std::max<uint64_t>(min_entries, table_.size() + table_.size() / 2 + 1);
  uint64_t table_clusters = 0, new_blocks = 0;
  std::vector<uint64_t> missing;
  for (;;) {
    table_clusters = div_round_up(entries * 8, cs);
    uint64_t area_end = start + table_clusters + new_blocks;
    missing.clear();
    for (uint64_t ti = start / per_block; ti <= (area_end - 1) / per_block; ++ti)
      if (!block_exists(ti)) missing.push_back(ti);
    uint64_t needed_entries = std::max(entries, missing.empty() ? 0 : missing.back() + 1);
    if (missing.size() <= new_blocks && needed_entries <= entries) break;
    new_blocks = std::max<uint64_t>(new_blocks, missing.size());
    entries = needed_entries;
  }
  if (table_clusters * cs > kMaxRefcountTableBytes)
    fail(ErrorCategory::no_space, "{}: qcow2 refcount table would exceed {} bytes", file_.path(), kMaxRefcountTableBytes);

  std::vector<uint64_t> table = table_;
  table.resize(table_clusters * cs / 8, 0);
  // New blocks sit right after the new table.
  uint64_t next_block_cluster = start + table_clusters;
  for (uint64_t ti : missing) {
    table[ti] = next_block_cluster << cluster_bits_;
    cache_.create(table[ti]);
    ++next_block_cluster;
  }
  uint64_t area_end = next_block_cluster;
  uint64_t old_offset = header_.refcount_table_offset;
  uint32_t old_clusters = header_.refcount_table_clusters;
  table_ = std::move(table);
  for (uint64_t c = start; c < area_end; ++c) adjust(c, 1);

  cache_.write_dirty();
  std::vector<uint8_t> raw(table_clusters * cs);
  for (size_t i = 0; i < table_.size(); ++i) store_be64(raw.data() + i * 8, table_[i]);
  file_.write_all(start << cluster_bits_, raw);
  barrier_();
  header_.refcount_table_offset = start << cluster_bits_;
  header_.refcount_table_clusters = static_cast<uint32_t>(table_clusters);
  write_header_();
  table_dirty_begin_ = UINT64_MAX;
  table_dirty_end_ = 0;
  // Nothing points at the old table any more.
  for (uint64_t c = 0; c < old_clusters; ++c) adjust((old_offset >> cluster_bits_) + c, -1);
}

uint64_t Refcounts::find_free_run(uint64_t count) {
  uint64_t c = free_hint_, run_start = c, run = 0;
  bool seen_free = false;
  const uint64_t mask = (1ull << block_bits_) - 1;
  while (run < count) {
    const uint64_t ti = c >> block_bits_;
    const uint64_t block_end = (ti + 1) << block_bits_;
    if (!block_exists(ti)) {  // a missing block means all its clusters are free
      run += block_end - c;
      c = block_end;
      seen_free = true;
      continue;
    }
    TableRef b = block(ti);
    for (; c < block_end && run < count; ++c) {
      if (entry(*b, c & mask) == 0) {
        ++run;
        seen_free = true;
      } else {
        run = 0;
        run_start = c + 1;
        if (!seen_free) free_hint_ = c + 1;
      }
    }
  }
  return run_start;
}

void Refcounts::check_not_metadata(uint64_t cluster, uint64_t count) {
  auto overlaps = [&](uint64_t offset, uint64_t bytes) {
    if (bytes == 0) return false;
    uint64_t first = offset >> cluster_bits_, last = (offset + bytes - 1) >> cluster_bits_;
    return cluster <= last && first < cluster + count;
  };
  if (cluster == 0 || overlaps(header_.l1_table_offset, uint64_t{header_.l1_size} * 8) ||
      overlaps(header_.refcount_table_offset, uint64_t{header_.refcount_table_clusters} << cluster_bits_))
    fail(ErrorCategory::corrupt,
         "{}: qcow2 refcounts mark image metadata as free (cluster {}); repair with: arche image check -r all",
         file_.path(), cluster);
}

void Refcounts::claim(uint64_t cluster, uint64_t count) {
  check_not_metadata(cluster, count);
  for (uint64_t k = 0; k < count; ++k) adjust(cluster + k, 1);
  if (cluster <= free_hint_) free_hint_ = std::max(free_hint_, cluster + count);
}

uint64_t Refcounts::allocate(uint64_t count) {
  for (;;) {
    uint64_t start = find_free_run(count);
    // Creating a missing refcount block takes a free cluster, possibly one of the
    // run just found: then search again.
    bool created = false;
    for (uint64_t ti = start >> block_bits_; ti <= (start + count - 1) >> block_bits_; ++ti) {
      if (!block_exists(ti)) {
        create_block(ti);
        created = true;
      }
    }
    if (created) continue;
    claim(start, count);
    return start << cluster_bits_;
  }
}

bool Refcounts::try_allocate_at(uint64_t cluster, uint64_t count) {
  for (uint64_t k = 0; k < count; ++k)
    if (get(cluster + k) != 0) return false;
  for (uint64_t ti = cluster >> block_bits_; ti <= (cluster + count - 1) >> block_bits_; ++ti) {
    if (!block_exists(ti)) {
      create_block(ti);
      for (uint64_t k = 0; k < count; ++k)  // the new block may have taken one of them
        if (get(cluster + k) != 0) return false;
    }
  }
  claim(cluster, count);
  return true;
}

void Refcounts::free_later(uint64_t cluster, uint64_t count) {
  if (!pending_frees_.empty() && pending_frees_.back().first + pending_frees_.back().second == cluster) {
    pending_frees_.back().second += count;
    return;
  }
  pending_frees_.emplace_back(cluster, count);
}

std::vector<uint64_t> Refcounts::apply_pending_frees() {
  std::vector<uint64_t> released;
  auto frees = std::move(pending_frees_);
  pending_frees_.clear();
  for (auto [cluster, count] : frees) {
    for (uint64_t k = 0; k < count; ++k) {
      adjust(cluster + k, -1);
      if (get(cluster + k) == 0) released.push_back(cluster + k);
    }
  }
  return released;
}

bool Refcounts::has_dirty() const { return cache_.has_dirty() || table_dirty_begin_ < table_dirty_end_; }

void Refcounts::write_dirty() {
  cache_.write_dirty();  // blocks before the table entries that point at them
  if (table_dirty_begin_ < table_dirty_end_) {
    // Whole 512-byte sectors of the table around the changed entries.
    uint64_t first = align_down(table_dirty_begin_ * 8, 512) / 8;
    uint64_t last = std::min<uint64_t>(align_up(table_dirty_end_ * 8, 512) / 8, table_.size());
    std::vector<uint8_t> raw((last - first) * 8);
    for (uint64_t i = first; i < last; ++i) store_be64(raw.data() + (i - first) * 8, table_[i]);
    file_.write_all(header_.refcount_table_offset + first * 8, raw);
    table_dirty_begin_ = UINT64_MAX;
    table_dirty_end_ = 0;
  }
}

uint64_t Refcounts::end_cluster() {
  const size_t entry_bits = header_.refcount_bits();
  for (uint64_t ti = table_.size(); ti-- > 0;) {
    if (!block_exists(ti)) continue;
    TableRef b = block(ti);
    // Find the last non-zero byte first: blocks are mostly zero at the end.
    size_t last = b->bytes.size();
    while (last > 0 && b->bytes[last - 1] == 0) --last;
    if (last == 0) continue;
    uint64_t i = ((last * 8) + entry_bits - 1) / entry_bits;  // entries up to that byte
    while (i-- > 0)
      if (entry(*b, i) != 0) return (ti << block_bits_) + i + 1;
  }
  return 1;
}

}  // namespace arche::image::qcow2
