// A cache of cluster-sized metadata tables (L2 tables, refcount blocks) in their
// on-disk, big-endian form. Lookups are thread-safe; tables are handed out as
// shared_ptr so a reader keeps its table even if another thread evicts it.
// Dirty tables are never evicted: they leave the cache only through write_dirty(),
// which the owner calls in the order crash safety requires.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/endian.h"
#include "core/file.h"

namespace arche::image::qcow2 {

struct Table {
  uint64_t offset = 0;
  std::vector<uint8_t> bytes;
  bool dirty = false;
  uint64_t last_use = 0;

  uint64_t be64(size_t index) const { return load_be64(bytes.data() + index * 8); }
  void set_be64(size_t index, uint64_t value) { store_be64(bytes.data() + index * 8, value); }
};
using TableRef = std::shared_ptr<Table>;

class TableCache {
 public:
  TableCache(const File& file, size_t table_size, size_t capacity, std::string what);

  // The table at `offset`, read from the file on a miss. A table beyond the end of
  // the file is a corrupt error.
  TableRef get(uint64_t offset);
  // A new zero-filled table at `offset`, dirty, without reading the file.
  TableRef create(uint64_t offset);
  void mark_dirty(const TableRef& table);
  bool has_dirty() const;
  // Writes every dirty table, in offset order, and marks them clean.
  void write_dirty();
  // Forgets the table at `offset` (its cluster was freed), dirty or not.
  void forget(uint64_t offset);
  // Drops the least recently used clean tables while over capacity.
  void trim();
  
  // Drops every table (after a repair rewrote metadata behind the cache).
  void clear();

  size_t capacity() const { return capacity_; }
  size_t size() const;

 private:
  void trim_locked();

  const File& file_;
  size_t table_size_;
  size_t capacity_;
  std::string what_;
  mutable std::mutex mutex_;
  std::unordered_map<uint64_t, TableRef> tables_;
  uint64_t tick_ = 0;
  size_t dirty_ = 0;
};

}  // namespace arche::image::qcow2
