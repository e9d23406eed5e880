#include "image/qcow2/table_cache.h"

#include <algorithm>

#include "core/error.h"

namespace arche::image::qcow2 {

TableCache::TableCache(const File& file, size_t table_size, size_t capacity, std::string what)
    : file_(file), table_size_(table_size), capacity_(std::max<size_t>(capacity, 4)), what_(std::move(what)) {}

TableRef TableCache::get(uint64_t offset) {
  std::lock_guard lock(mutex_);
  auto it = tables_.find(offset);
  if (it != tables_.end()) {
    it->second->last_use = ++tick_;
    return it->second;
  }
  auto t = std::make_shared<Table>();
  t->offset = offset;
  t->bytes.resize(table_size_);
  if (file_.read_some(offset, t->bytes) != table_size_)
    fail(ErrorCategory::corrupt, "{}: {} at 0x{:x} lies outside the file", file_.path(), what_, offset);
  t->last_use = ++tick_;
  tables_.emplace(offset, t);
  if (tables_.size() > capacity_ + capacity_ / 4) trim_locked();  // readers keep the cache bounded too
  return t;
}

size_t TableCache::size() const {
  std::lock_guard lock(mutex_);
  return tables_.size();
}

TableRef TableCache::create(uint64_t offset) {
  std::lock_guard lock(mutex_);
  auto t = std::make_shared<Table>();
  t->offset = offset;
  t->bytes.assign(table_size_, 0);
  t->dirty = true;
  t->last_use = ++tick_;
  auto old = tables_.find(offset);
  if (old != tables_.end() && old->second->dirty) --dirty_;
  tables_[offset] = t;
  ++dirty_;
  return t;
}

void TableCache::mark_dirty(const TableRef& table) {
  std::lock_guard lock(mutex_);
  if (!table->dirty) {
    table->dirty = true;
    ++dirty_;
  }
}

bool TableCache::has_dirty() const {
  std::lock_guard lock(mutex_);
  return dirty_ > 0;
}

void TableCache::write_dirty() {
  std::lock_guard lock(mutex_);
  if (dirty_ == 0) return;
  std::vector<TableRef> dirty;
  for (auto& [offset, t] : tables_)
    if (t->dirty) dirty.push_back(t);
  std::sort(dirty.begin(), dirty.end(), [](const TableRef& a, const TableRef& b) { return a->offset < b->offset; });
  for (const TableRef& t : dirty) {
    file_.write_all(t->offset, t->bytes);
    t->dirty = false;
    --dirty_;
  }
}

void TableCache::forget(uint64_t offset) {
  std::lock_guard lock(mutex_);
  auto it = tables_.find(offset);
  if (it == tables_.end()) return;
  if (it->second->dirty) --dirty_;
  tables_.erase(it);
}

void TableCache::trim() {
  std::lock_guard lock(mutex_);
  trim_locked();
}

void TableCache::trim_locked() {
  if (tables_.size() <= capacity_) return;
  std::vector<std::pair<uint64_t, uint64_t>> clean;  // (last_use, offset)
  for (auto& [offset, t] : tables_)
    if (!t->dirty) clean.emplace_back(t->last_use, offset);
  std::sort(clean.begin(), clean.end());
  size_t excess = tables_.size() - capacity_;
  for (size_t i = 0; i < clean.size() && i < excess; ++i) tables_.erase(clean[i].second);
}

void TableCache::clear() {
  std::lock_guard lock(mutex_);
  tables_.clear();
  dirty_ = 0;
}

}  // namespace arche::image::qcow2
