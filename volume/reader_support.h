// Small pieces the file system readers of our own (FAT, XFS) share: path
// splitting, bounds-checked volume reads, range merging and a bounded LRU cache
// for parsed metadata (directories, block maps) so that a walk that stats every
// file of a big directory parses the directory once.
#pragma once

#include <cstdint>
#include <list>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "image/block_device.h"
#include "volume/filesystem.h"

namespace arche::volume {

// The components of an absolute path ("/a//b/./c" -> a, b, c; ".." removes the
// previous component, lexically: readers never follow symbolic links). Throws a
// usage error naming `fs` for a relative path.
std::vector<std::string> split_path(std::string_view path, std::string_view fs);

// Reads out.size() bytes at offset of the volume; a range beyond its end is a
// corrupt error (the metadata that led there points outside the volume).
void read_volume(image::BlockDevice& volume, uint64_t offset, std::span<uint8_t> out, std::string_view fs);

// The name with ASCII letters in upper case: how the case-insensitive names of
// FAT (and of XFS with ascii-ci) compare. Other characters are left as they are.
std::string fold_ascii_case(std::string_view name);

// Sorts and merges overlapping or adjacent ranges; drops empty ones.
void merge_ranges(std::vector<ByteRange>& ranges);

// A least-recently-used map with a fixed number of entries. Values are returned
// by pointer and stay valid until the next insert.
template <typename Key, typename Value>
class LruCache {
 public:
  explicit LruCache(size_t capacity) : capacity_(capacity) {}

  Value* find(const Key& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    order_.splice(order_.begin(), order_, it->second);
    return &it->second->second;
  }

  Value& insert(const Key& key, Value value) {
    if (Value* existing = find(key)) {
      *existing = std::move(value);
      return *existing;
    }
    order_.emplace_front(key, std::move(value));
    index_[key] = order_.begin();
    if (order_.size() > capacity_) {
      index_.erase(order_.back().first);
      order_.pop_back();
    }
    return order_.front().second;
  }

 private:
  using Entry = std::pair<Key, Value>;
  size_t capacity_;
  std::list<Entry> order_;
  std::unordered_map<Key, typename std::list<Entry>::iterator> index_;
};

}  // namespace arche::volume
