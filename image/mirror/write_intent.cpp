#include "image/mirror/write_intent.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace arche::image::mirror {

namespace {
int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

WriteIntent::WriteIntent(const Uuid& array, uint64_t regions, PageWriter writer, EventBump bump,
                         std::chrono::nanoseconds clear_delay)
    : array_(array), regions_(regions), writer_(std::move(writer)), bump_(std::move(bump)), clear_delay_(clear_delay) {
  const uint64_t pages = (regions + kRegionsPerBitmapPage - 1) / kRegionsPerBitmapPage;
  bits_.assign(pages * (kBitmapPage - kBitmapHeader), 0);
  state_.resize(regions);
  page_gen_.assign(pages, 0);
  synced_gen_.assign(pages, 0);
  written_gen_.assign(pages, 0);
  cleared_event_.assign(pages, 0);
  page_busy_.assign(pages, false);
}

void WriteIntent::set_bit(uint64_t r, bool on) {
  if (on) bits_[r / 8] |= static_cast<uint8_t>(1u << (r % 8));
  else bits_[r / 8] &= static_cast<uint8_t>(~(1u << (r % 8)));
  ++page_gen_[page_of(r)];
}

void WriteIntent::load(std::span<const uint8_t> bits, std::span<const uint64_t> cleared_events) {
  std::lock_guard lock(mutex_);
  for (size_t p = 0; p < cleared_event_.size() && p < cleared_events.size(); ++p) cleared_event_[p] = cleared_events[p];
  set_list_.clear();
  for (uint64_t r = 0; r < regions_; ++r) {
    bool on = r / 8 < bits.size() && (bits[r / 8] & (1u << (r % 8)));
    if (on != bit(r)) set_bit(r, on);
    if (on) set_list_.push_back(r);
  }
  // What was loaded is what the legs hold: durable as it stands.
  synced_gen_ = page_gen_;
  written_gen_ = page_gen_;
}

void WriteIntent::write_page(std::unique_lock<std::mutex>& lock, uint64_t p, bool sync) {
  const uint64_t want = page_gen_[p];
  for (;;) {
    if ((sync ? synced_gen_[p] : written_gen_[p]) >= want) return;
    if (page_busy_[p]) {
      page_done_.wait(lock);
      continue;
    }
    page_busy_[p] = true;
    const uint64_t gen = page_gen_[p];
    const size_t per_page = kBitmapPage - kBitmapHeader;
    std::vector<uint8_t> encoded = encode_bitmap_page(array_, p, cleared_event_[p],
                                                      std::span<const uint8_t>(bits_.data() + p * per_page, per_page));
    lock.unlock();
    try {
      writer_(p, encoded, sync);
    } catch (...) {
      lock.lock();
      page_busy_[p] = false;
      page_done_.notify_all();
      throw;
    }
    lock.lock();
    page_busy_[p] = false;
    written_gen_[p] = std::max(written_gen_[p], gen);
    if (sync) synced_gen_[p] = std::max(synced_gen_[p], gen);
    ++page_writes_;
    page_done_.notify_all();
  }
}

void WriteIntent::begin_write(uint64_t first, uint64_t last) {
  std::unique_lock lock(mutex_);
  for (uint64_t r = first; r <= last; ++r) {
    ++state_[r].writers;
    if (!bit(r)) {
      set_bit(r, true);
      state_[r].set_gen = page_gen_[page_of(r)];
      set_list_.push_back(r);
    }
  }
  try {
    for (uint64_t p = page_of(first); p <= page_of(last); ++p) {
      uint64_t need = 0;
      const uint64_t lo = std::max(first, p * kRegionsPerBitmapPage);
      const uint64_t hi = std::min(last, (p + 1) * kRegionsPerBitmapPage - 1);
      for (uint64_t r = lo; r <= hi; ++r) need = std::max(need, state_[r].set_gen);
      while (synced_gen_[p] < need) write_page(lock, p, true);
    }
  } catch (...) {
    for (uint64_t r = first; r <= last; ++r) --state_[r].writers;
    throw;
  }
}

void WriteIntent::end_write(uint64_t first, uint64_t last, bool completed) {
  const int64_t now = now_ns();
  std::lock_guard lock(mutex_);
  for (uint64_t r = first; r <= last; ++r) {
    Region& s = state_[r];
    --s.writers;
    s.pinned |= !completed;
    s.last_gen = flush_gen_;
    s.last_write_ns = now;
  }
}

uint64_t WriteIntent::flush_started() {
  std::lock_guard lock(mutex_);
  return ++flush_gen_;
}

bool WriteIntent::idle(uint64_t r, uint64_t gen, int64_t now) const {
  const Region& s = state_[r];
  return s.writers == 0 && !s.pinned && s.last_gen < gen && now - s.last_write_ns >= clear_delay_.count() &&
         synced_gen_[page_of(r)] >= s.set_gen;
}

void WriteIntent::flush_done(uint64_t gen) {
  const int64_t now = now_ns();
  std::unique_lock lock(mutex_);
  if (std::none_of(set_list_.begin(), set_list_.end(), [&](uint64_t r) { return idle(r, gen, now); })) return;
  // The event comes first: once a bit is gone, a leg older than it must not pass
  // for one that only missed what the bitmap shows.
  lock.unlock();
  const uint64_t event = bump_();
  lock.lock();
  std::vector<uint64_t> pages, still_set;
  for (uint64_t r : set_list_) {
    if (!idle(r, gen, now)) {  // written again meanwhile
      still_set.push_back(r);
      continue;
    }
    set_bit(r, false);
    cleared_event_[page_of(r)] = event;
    pages.push_back(page_of(r));
  }
  set_list_ = std::move(still_set);
  std::sort(pages.begin(), pages.end());
  pages.erase(std::unique(pages.begin(), pages.end()), pages.end());
  for (uint64_t p : pages) write_page(lock, p, false);
}

void WriteIntent::clear_all(uint64_t event) {
  std::unique_lock lock(mutex_);
  std::vector<uint64_t> pages, still_set;
  for (uint64_t r : set_list_) {
    if (state_[r].writers)
      fail(ErrorCategory::internal, "mirror: bitmap cleared while a write into region {} is in flight", r);
    if (state_[r].pinned) {
      still_set.push_back(r);
      continue;
    }
    set_bit(r, false);
    cleared_event_[page_of(r)] = event;
    pages.push_back(page_of(r));
  }
  set_list_ = std::move(still_set);
  std::sort(pages.begin(), pages.end());
  pages.erase(std::unique(pages.begin(), pages.end()), pages.end());
  for (uint64_t p : pages) write_page(lock, p, false);
}

void WriteIntent::write_all() {
  std::unique_lock lock(mutex_);
  for (uint64_t p = 0; p < page_gen_.size(); ++p) {
    ++page_gen_[p];  // same bits, but every leg must receive them
    write_page(lock, p, true);
  }
}

bool WriteIntent::is_set(uint64_t region) const {
  std::lock_guard lock(mutex_);
  return bit(region);
}

std::vector<uint64_t> WriteIntent::set_regions() const {
  std::lock_guard lock(mutex_);
  std::vector<uint64_t> out = set_list_;
  std::sort(out.begin(), out.end());
  return out;
}

uint64_t WriteIntent::page_writes() const {
  std::lock_guard lock(mutex_);
  return page_writes_;
}

}  // namespace arche::image::mirror
