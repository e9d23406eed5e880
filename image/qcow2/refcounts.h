// Host cluster management of a writable qcow2 image: the refcount table (kept whole
// in memory), refcount blocks (cached), allocation of free clusters, growth of the
// refcount structures, and frees that are deferred until the L2 tables no longer
// pointing at the clusters are on disk.
//
// Crash-safety rule this class upholds together with Qcow2Device: on disk, a
// cluster's refcount is raised before any table points at it, and lowered only after
// no table on disk points at it. A crash can therefore leak clusters but never leave a
// referenced cluster with refcount 0.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "core/file.h"
#include "image/qcow2/qcow2_format.h"
#include "image/qcow2/table_cache.h"

namespace arche::image::qcow2 {

class Refcounts {
 public:
  // `header` is the live header; growth of the refcount table updates it and calls
  // `write_header` (which must write it durably). `barrier` orders writes (fdatasync,
  // or nothing when barriers are off).
  Refcounts(const File& file, Header& header, size_t cache_tables, std::function<void()> write_header,
            std::function<void()> barrier);

  // Reads and validates the refcount table.
  void load();

  uint64_t get(uint64_t cluster);
  // Adds delta (may be negative) to a cluster's refcount; corrupt error on overflow
  // or when it would drop below zero.
  void adjust(uint64_t cluster, int64_t delta);

  // Claims `count` contiguous free clusters (refcount 1); returns the byte offset.
  uint64_t allocate(uint64_t count);
  // Claims [cluster, cluster+count) if all of it is free; false otherwise.
  bool try_allocate_at(uint64_t cluster, uint64_t count);

  // Decrements later, in apply_pending_frees(), after the tables that referenced
  // the clusters have reached the disk.
  void free_later(uint64_t cluster, uint64_t count);
  bool has_pending_frees() const { return !pending_frees_.empty(); }
  size_t pending_free_count() const { return pending_frees_.size(); }
  // Applies the deferred decrements; returns the clusters whose refcount became 0.
  std::vector<uint64_t> apply_pending_frees();

  bool has_dirty() const;
  // Writes dirty refcount blocks, then dirty refcount table entries.
  void write_dirty();
  void trim_cache() { cache_.trim(); }

  uint64_t max_refcount() const;
  // One past the last cluster with a non-zero refcount.
  uint64_t end_cluster();

 private:
  bool block_exists(uint64_t table_index) const;
  TableRef block(uint64_t table_index);
  void create_block(uint64_t table_index);
  void grow_table(uint64_t min_entries);
  uint64_t find_free_run(uint64_t count);
  void claim(uint64_t cluster, uint64_t count);
  void check_not_metadata(uint64_t cluster, uint64_t count);
  uint64_t entry(const Table& t, uint64_t index) const;
  void set_entry(Table& t, uint64_t index, uint64_t value);
  void mark_table_dirty(uint64_t index);

  const File& file_;
  Header& header_;
  std::function<void()> write_header_;
  std::function<void()> barrier_;
  TableCache cache_;
  uint32_t cluster_bits_;
  uint32_t block_bits_;  // log2 of refcount entries per block
  std::vector<uint64_t> table_;
  uint64_t table_dirty_begin_ = UINT64_MAX, table_dirty_end_ = 0;
  uint64_t free_hint_ = 1;  // no free cluster below this one (cluster 0 is the header)
  std::vector<std::pair<uint64_t, uint64_t>> pending_frees_;
};

}  // namespace arche::image::qcow2
