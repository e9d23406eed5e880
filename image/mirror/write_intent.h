// The mirror's write-intent bitmap: one bit per region, set on disk (durably, on
// every writable leg) before the first write into the region, cleared lazily once
// the region has been idle and everything written to it is durable. After a crash
// only regions whose bit is set can differ between the legs, so only they are
// resynced (docs/raid.md, "Write ordering").
//
// As in md, each region also has an in-memory counter of writes in flight, so a hot
// region costs one bitmap write when it turns dirty and none while it stays hot;
// bits are cleared at a flush, and only for regions idle for `clear_delay`.
//
// Before bits are cleared the superblocks move to a new event (EventBump), and the
// cleared pages carry it: a leg whose own superblock is at least as new as every
// page's cleared event has missed nothing the bitmap no longer shows (assemble.h).
//
// Thread-safe. Page writes of one page never overlap and always carry the newest
// bits, so an older "cleared" page can never land after a newer "set" one.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <vector>

#include "image/mirror/mirror_format.h"

namespace arche::image::mirror {

class WriteIntent {
 public:
  // Writes one encoded page to every writable leg; with `sync` it is durable on all
  // of them when this returns. Throws when no leg took it.
  using PageWriter = std::function<void(uint64_t page, std::span<const uint8_t> encoded, bool sync)>;
  // Records a new event on every leg, durably; returns it.
  using EventBump = std::function<uint64_t()>;

  WriteIntent(const Uuid& array, uint64_t regions, PageWriter writer, EventBump bump,
              std::chrono::nanoseconds clear_delay);

  // The bits found on disk at assembly (the union over the legs) and each page's
  // cleared event (the highest found).
  void load(std::span<const uint8_t> bits, std::span<const uint64_t> cleared_events);

  // Before a write into regions [first, last]: counts it in and returns once every
  // bit is durable. On an exception nothing stays counted.
  void begin_write(uint64_t first, uint64_t last);
  // After that write. `completed`: it reached every leg it was meant for. A write
  // that did not (an error, a leg that could not be failed) may have left the legs
  // different anywhere in its regions: their bits stay set until the next writable
  // open resyncs them, whatever is written there meanwhile.
  void end_write(uint64_t first, uint64_t last, bool completed);

  // A flush starts; returns its generation. Writes that end from now on are not
  // covered by this flush's sync.
  uint64_t flush_started();
  // The flush `gen` made everything written before it started durable on every leg
  // (data and checksums): only now are the idle regions' bits cleared — the second
  // phase; the first was the flush itself. A region written since `gen` began is
  // not idle. The cleared pages are written without a barrier: a lost clear only
  // costs a resync, and the data it covers is durable already.
  void flush_done(uint64_t gen);
  // Clears every bit but those of pinned regions (end_write) and writes the pages
  // that change, recording `event` (just made durable by the caller) as their
  // cleared event. No write may be in flight, and everything written must be durable
  // on every leg: after a resync and at close. The caller syncs the legs afterwards.
  void clear_all(uint64_t event);
  // Writes every page (sync): a new leg gets the whole bitmap.
  void write_all();

  bool is_set(uint64_t region) const;
  std::vector<uint64_t> set_regions() const;  // ascending
  uint64_t regions() const { return regions_; }
  uint64_t page_writes() const;  // bitmap pages written so far (for tests and the bench)

 private:
  struct Region {
    uint32_t writers = 0;     // writes in flight
    bool pinned = false;      // a write did not complete: stays dirty until a resync
    uint64_t set_gen = 0;     // page generation at which the bit was set
    uint64_t last_gen = 0;    // flush generation in which the last write ended
    int64_t last_write_ns = 0;
  };
  bool bit(uint64_t r) const { return bits_[r / 8] & (1u << (r % 8)); }
  bool idle(uint64_t r, uint64_t gen, int64_t now) const;
  void set_bit(uint64_t r, bool on);
  uint64_t page_of(uint64_t r) const { return r / kRegionsPerBitmapPage; }
  // Writes page p with its newest content unless a write at least as new is done.
  // Called with `lock` held; drops it around the I/O.
  void write_page(std::unique_lock<std::mutex>& lock, uint64_t p, bool sync);

  Uuid array_;
  uint64_t regions_;
  PageWriter writer_;
  EventBump bump_;
  std::chrono::nanoseconds clear_delay_;

  mutable std::mutex mutex_;
  std::condition_variable page_done_;
  std::vector<uint8_t> bits_;
  std::vector<Region> state_;
  std::vector<uint64_t> set_list_;  // regions whose bit is set (unordered)
  std::vector<uint64_t> page_gen_, synced_gen_, written_gen_, cleared_event_;
  std::vector<bool> page_busy_;
  uint64_t flush_gen_ = 1;
  uint64_t page_writes_ = 0;
};

}  // namespace arche::image::mirror
