#include "backup/index.h"

#include <algorithm>

#include "core/bytes.h"
#include "core/error.h"

namespace arche::backup {

namespace {

constexpr unsigned kPackBits = 24, kOffsetBits = 21, kLengthBits = 19;
static_assert(kPackBits + kOffsetBits + kLengthBits == 64);
static_assert((uint64_t{1} << kOffsetBits) * kFrameAlign >= kMaxPackSize);
static_assert((uint64_t{1} << kLengthBits) * kFrameAlign >= kMaxFrameSize);
// A claimed chunk that is not written yet.
constexpr uint64_t kPending = ~uint64_t{0};
constexpr uint32_t kMaxPacks = (1u << kPackBits) - 1;

}  // namespace

std::vector<uint8_t> encode_index_payload(const std::vector<PackInfo>& packs) {
  ByteWriter w;
  w.le32(static_cast<uint32_t>(packs.size()));
  for (const PackInfo& p : packs) {
    w.bytes(p.id.bytes);
    w.le64(p.size);
    std::vector<uint8_t> entries = encode_footer_entries(p.entries);
    w.bytes(entries);
  }
  return w.take();
}

std::vector<PackInfo> decode_index_payload(std::span<const uint8_t> data, const std::string& what) {
  ByteReader r(data, what);
  uint32_t count = r.le32();
  // Each pack takes at least 44 bytes: a count beyond that is damage, not a reason to allocate.
  if (uint64_t{count} * 44 > r.remaining()) fail(ErrorCategory::corrupt, "{}: {} packs cannot fit", what, count);
  std::vector<PackInfo> packs(count);
  for (PackInfo& p : packs) {
    p.id = Id::from(r.bytes(kIdSize));
    p.size = r.le64();
    if (p.size < kPackHeaderSize + kPackTrailerSize)
      fail(ErrorCategory::corrupt, "{}: pack {} of {} bytes", what, p.id.short_hex(), p.size);
    uint32_t n = r.le32();
    if (uint64_t{n} * kPackEntrySize > r.remaining())
      fail(ErrorCategory::corrupt, "{}: pack {} lists {} entries that cannot fit", what, p.id.short_hex(), n);
    // Reuse the footer decoder: same entry layout, same checks.
    ByteWriter block;
    block.le32(n);
    block.bytes(r.bytes(size_t{n} * kPackEntrySize));
    p.entries = decode_footer_entries(block.buffer(), std::min<uint64_t>(p.size, kMaxPackSize), what);
  }
  if (r.remaining()) fail(ErrorCategory::corrupt, "{}: {} stray bytes at the end", what, r.remaining());
  return packs;
}

uint64_t ChunkIndex::encode(const Location& w) {
  return uint64_t{w.pack} << (kOffsetBits + kLengthBits) | uint64_t{w.offset / kFrameAlign} << kLengthBits |
         uint64_t{w.length / kFrameAlign};
}

ChunkIndex::Location ChunkIndex::decode(uint64_t v) {
  return {static_cast<uint32_t>(v >> (kOffsetBits + kLengthBits)),
          static_cast<uint32_t>((v >> kLengthBits) & ((1u << kOffsetBits) - 1)) * static_cast<uint32_t>(kFrameAlign),
          static_cast<uint32_t>(v & ((1u << kLengthBits) - 1)) * static_cast<uint32_t>(kFrameAlign)};
}

uint32_t ChunkIndex::pack_number_locked(const Id& pack_id) {
  auto [it, inserted] = pack_numbers_.try_emplace(pack_id, static_cast<uint32_t>(packs_.size()));
  if (inserted) {
    if (packs_.size() >= kMaxPacks) fail(ErrorCategory::unsupported, "repository has more than {} packs", kMaxPacks);
    packs_.push_back(pack_id);
  }
  return it->second;
}

void ChunkIndex::add_pack(const PackInfo& pack) {
  uint32_t number = pack_number_locked(pack.id);
  for (const PackEntry& e : pack.entries) {
    if (uint64_t{e.offset} + e.length > kMaxPackSize)
      fail(ErrorCategory::corrupt, "pack {}: entry beyond {} bytes", pack.id.short_hex(), kMaxPackSize);
    sorted_.push_back({e.id, encode({number, e.offset, e.length})});
  }
}

void ChunkIndex::clear() {
  std::unique_lock lock(mutex_);
  sorted_.clear();
  sorted_.shrink_to_fit();
  added_.clear();
  placed_ = 0;
  packs_.clear();
  pack_numbers_.clear();
  std::lock_guard r(referenced_mutex_);
  referenced_.clear();
}

void ChunkIndex::finalize() {
  std::sort(sorted_.begin(), sorted_.end(), [](const Entry& a, const Entry& b) { return a.id < b.id; });
  // The same chunk in two packs (an interrupted backup's leftovers, a repack): keep one.
  auto last = std::unique(sorted_.begin(), sorted_.end(), [](const Entry& a, const Entry& b) { return a.id == b.id; });
  sorted_.erase(last, sorted_.end());
  sorted_.shrink_to_fit();
}

bool ChunkIndex::in_sorted(const Id& id) const {
  return std::binary_search(sorted_.begin(), sorted_.end(), Entry{id, 0},
                            [](const Entry& a, const Entry& b) { return a.id < b.id; });
}

std::optional<ChunkIndex::Location> ChunkIndex::find(const Id& id) const {
  std::shared_lock lock(mutex_);
  auto it = std::lower_bound(sorted_.begin(), sorted_.end(), id, [](const Entry& e, const Id& k) { return e.id < k; });
  if (it != sorted_.end() && it->id == id) return decode(it->location);
  auto a = added_.find(id);
  if (a == added_.end() || a->second == kPending) return std::nullopt;
  return decode(a->second);
}

bool ChunkIndex::claim(const Id& id) {
  std::unique_lock lock(mutex_);
  auto it = std::lower_bound(sorted_.begin(), sorted_.end(), id, [](const Entry& e, const Id& k) { return e.id < k; });
  if (it != sorted_.end() && it->id == id) {
    mark_referenced(decode(it->location).pack);
    return false;
  }
  return added_.try_emplace(id, kPending).second;
}

bool ChunkIndex::reference(const Id& id) {
  std::optional<Location> where = find(id);
  if (where) mark_referenced(where->pack);
  return where.has_value();
}

void ChunkIndex::mark_referenced(uint32_t pack) {
  std::lock_guard lock(referenced_mutex_);
  if (referenced_.size() <= pack) referenced_.resize(pack + 1);
  referenced_[pack] = true;
}

std::vector<Id> ChunkIndex::referenced_packs() const {
  std::vector<Id> out;
  std::shared_lock lock(mutex_);
  std::lock_guard r(referenced_mutex_);
  for (size_t i = 0; i < referenced_.size() && i < packs_.size(); ++i)
    if (referenced_[i]) out.push_back(packs_[i]);
  return out;
}

void ChunkIndex::place(const Id& id, const Location& where) {
  std::unique_lock lock(mutex_);
  auto [it, inserted] = added_.try_emplace(id, kPending);
  if (it->second == kPending) ++placed_;
  it->second = encode(where);
  // A hash map costs far more than 40 bytes per entry: fold placed entries into the
  // sorted vector once they are an eighth of it (amortised linear cost).
  if (placed_ >= 4096 && placed_ >= sorted_.size() / 8) merge_placed_locked();
}

void ChunkIndex::merge_placed_locked() {
  const size_t old_size = sorted_.size();
  sorted_.reserve(old_size + placed_);
  for (auto it = added_.begin(); it != added_.end();) {
    if (it->second == kPending) {
      ++it;
      continue;
    }
    if (!in_sorted(it->first)) sorted_.push_back({it->first, it->second});
    it = added_.erase(it);
  }
  placed_ = 0;
  auto by_id = [](const Entry& a, const Entry& b) { return a.id < b.id; };
  std::sort(sorted_.begin() + static_cast<ptrdiff_t>(old_size), sorted_.end(), by_id);
  std::inplace_merge(sorted_.begin(), sorted_.begin() + static_cast<ptrdiff_t>(old_size), sorted_.end(), by_id);
}

uint32_t ChunkIndex::add_pack_id(const Id& pack_id) {
  std::unique_lock lock(mutex_);
  return pack_number_locked(pack_id);
}

Id ChunkIndex::pack_id(uint32_t number) const {
  std::shared_lock lock(mutex_);
  if (number >= packs_.size()) fail(ErrorCategory::internal, "pack number {} unknown", number);
  return packs_[number];
}

size_t ChunkIndex::pack_count() const {
  std::shared_lock lock(mutex_);
  return packs_.size();
}

size_t ChunkIndex::size() const {
  std::shared_lock lock(mutex_);
  return sorted_.size() + placed_;
}

}  // namespace arche::backup
