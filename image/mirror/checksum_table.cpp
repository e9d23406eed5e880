#include "image/mirror/checksum_table.h"

#include <algorithm>
#include <cstring>

#include "core/endian.h"

namespace arche::image::mirror {

ChecksumTable::ChecksumTable(uint64_t blocks, uint64_t cache_bytes, PageReader reader, PageWriter writer)
    : blocks_(blocks),
      capacity_(std::max<size_t>(16, cache_bytes / kTablePage)),
      reader_(std::move(reader)),
      writer_(std::move(writer)) {}

void ChecksumTable::write_page(uint64_t index, const Page& p) {
  std::array<uint8_t, kTablePage> bytes;
  for (size_t i = 0; i < kEntriesPerTablePage; ++i) store_le32(bytes.data() + i * kTableEntry, p.entries[i]);
  writer_(index, bytes);
}

void ChecksumTable::evict_one() {
  for (size_t scanned = 0; scanned < 2 * ring_.size() + 1; ++scanned) {
    if (hand_ >= ring_.size()) hand_ = 0;
    Page& p = *pages_.at(ring_[hand_]);
    if (p.referenced) {
      p.referenced = false;
      ++hand_;
      continue;
    }
    if (p.dirty) {
      write_page(ring_[hand_], p);
      p.dirty = false;
    }
    pages_.erase(ring_[hand_]);
    ring_[hand_] = ring_.back();
    ring_.pop_back();
    return;
  }
}

ChecksumTable::Page& ChecksumTable::page(uint64_t index) {
  auto it = pages_.find(index);
  if (it != pages_.end()) {
    it->second->referenced = true;
    return *it->second;
  }
  if (pages_.size() >= capacity_) evict_one();
  auto p = std::make_unique<Page>();
  std::array<uint8_t, kTablePage> bytes;
  reader_(index, bytes);
  for (size_t i = 0; i < kEntriesPerTablePage; ++i) p->entries[i] = load_le32(bytes.data() + i * kTableEntry);
  Page& ref = *p;
  pages_.emplace(index, std::move(p));
  ring_.push_back(index);
  return ref;
}

void ChecksumTable::get(uint64_t first_block, std::span<uint32_t> out) {
  std::lock_guard lock(mutex_);
  for (size_t done = 0; done < out.size();) {
    const uint64_t b = first_block + done;
    Page& p = page(b / kEntriesPerTablePage);
    const size_t at = b % kEntriesPerTablePage;
    const size_t n = std::min(out.size() - done, kEntriesPerTablePage - at);
    std::memcpy(out.data() + done, p.entries.data() + at, n * sizeof(uint32_t));
    done += n;
  }
}

void ChecksumTable::set(uint64_t first_block, std::span<const uint32_t> entries) {
  std::lock_guard lock(mutex_);
  for (size_t done = 0; done < entries.size();) {
    const uint64_t b = first_block + done;
    Page& p = page(b / kEntriesPerTablePage);
    const size_t at = b % kEntriesPerTablePage;
    const size_t n = std::min(entries.size() - done, kEntriesPerTablePage - at);
    if (std::memcmp(p.entries.data() + at, entries.data() + done, n * sizeof(uint32_t)) != 0) {
      std::memcpy(p.entries.data() + at, entries.data() + done, n * sizeof(uint32_t));
      p.dirty = true;
    }
    done += n;
  }
}

void ChecksumTable::write_back() {
  std::lock_guard lock(mutex_);
  std::vector<uint64_t> dirty;
  for (const auto& [index, p] : pages_)
    if (p->dirty) dirty.push_back(index);
  std::sort(dirty.begin(), dirty.end());
  for (uint64_t index : dirty) {
    Page& p = *pages_.at(index);
    write_page(index, p);
    p.dirty = false;
  }
}

}  // namespace arche::image::mirror
