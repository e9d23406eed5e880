// The mirror's checksum table (one le32 per block, checksum.h), cached in 4 KiB
// pages with a bounded size: a 1 TiB disk with 4 KiB blocks has a 1 GiB table, of
// which only the pages of recently used blocks stay in memory.
//
// Pages are read from a current leg on a miss and written to every writable leg at
// write_back() or when a dirty page is evicted, without a barrier: entries only go
// stale on disk for blocks whose region is dirty in the write-intent bitmap, and
// the resync recomputes those (docs/raid.md, "Write ordering").
//
// Thread-safe (one mutex; misses and evictions do their I/O under it).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <unordered_map>
#include <vector>

#include "image/mirror/mirror_format.h"

namespace arche::image::mirror {

class ChecksumTable {
 public:
  using PageReader = std::function<void(uint64_t page, std::span<uint8_t> out)>;
  using PageWriter = std::function<void(uint64_t page, std::span<const uint8_t> bytes)>;

  ChecksumTable(uint64_t blocks, uint64_t cache_bytes, PageReader reader, PageWriter writer);

  void get(uint64_t first_block, std::span<uint32_t> out);
  void set(uint64_t first_block, std::span<const uint32_t> entries);
  // Writes every dirty page.
  void write_back();
  uint64_t blocks() const { return blocks_; }

 private:
  struct Page {
    std::array<uint32_t, kEntriesPerTablePage> entries{};
    bool dirty = false;
    bool referenced = true;
  };
  Page& page(uint64_t index);  // loads it; mutex held
  void evict_one();
  void write_page(uint64_t index, const Page& p);

  uint64_t blocks_;
  size_t capacity_;  // pages
  PageReader reader_;
  PageWriter writer_;
  std::mutex mutex_;
  std::unordered_map<uint64_t, std::unique_ptr<Page>> pages_;
  std::vector<uint64_t> ring_;  // resident pages, for the clock hand
  size_t hand_ = 0;
};

}  // namespace arche::image::mirror
