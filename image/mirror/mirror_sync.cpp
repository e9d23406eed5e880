// Making legs equal: the resync of bitmap-dirty regions after a crash, rebuilding
// a new leg, and scrubbing (every block of every leg read and verified).
#include <algorithm>
#include <cstring>

#include "core/clock.h"
#include "core/endian.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "core/log.h"
#include "core/units.h"
#include "image/mirror/mirror_device.h"

namespace arche::image::mirror {

namespace {

constexpr uint64_t kChunk = 1 * MiB;  // unit of reading within a region
// Rebuild and scrub positions are recorded at least this often, so a crash or a
// Ctrl-C repeats at most this much work.
constexpr auto kCheckpointEvery = std::chrono::seconds(2);

uint64_t ms_since(std::chrono::steady_clock::time_point t) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t).count());
}

}  // namespace

// ---- resync after a crash ---------------------------------------------------

void MirrorDevice::resync_dirty_regions() {
  // 1. The data: every dirty region equal on every leg, legs behind included.
  std::vector<uint64_t> dirty = intent_->set_regions();
  const auto started = std::chrono::steady_clock::now();
  SyncRecord rec;
  rec.time_ns = unix_time_ns();
  for (uint64_t r : dirty) resync_region(r, rec);
  if (table_) table_->write_back();
  sync_legs(writable_legs());
  rec.milliseconds = ms_since(started);
  if (!dirty.empty()) {
    std::lock_guard lock(meta_mutex_);
    meta_.last_resync = rec;
  }
  // 2. The open: legs behind are current now; legs missing or stale are failed.
  for (const auto& l : legs_)
    if (l) l->behind = false;
  const uint64_t event = write_superblocks();
  // 3. Only then may the bitmap forget the regions.
  if (dirty.empty()) return;
  intent_->clear_all(event);
  sync_legs(writable_legs());
  note("{}: resynced {} dirty regions ({} bytes read, {} rewritten)", filename(), rec.regions, rec.bytes_read,
       rec.bytes_written);
}

void MirrorDevice::resync_region(uint64_t region, SyncRecord& rec) {
  const uint64_t R = geometry_.region_size, B = geometry_.block_size;
  const uint64_t start = region * R, end = std::min(start + R, size());
  std::unique_lock lock(region_locks_.of(region));
  // The legs that hold this region: those in sync, rebuilt legs past it, and legs
  // behind (which only receive: their copy is never the one kept).
  std::vector<Leg*> legs;
  for (Leg* l : writable_legs())
    if (l->in_sync()) legs.push_back(l);
  for (Leg* l : writable_legs())
    if ((!l->in_sync() && l->rebuild_cursor.load() >= end) || l->behind) legs.push_back(l);
  if (legs.empty() || !legs[0]->in_sync()) return;
  ++rec.regions;
  std::vector<std::vector<uint8_t>> bufs(legs.size());
  std::vector<uint32_t> entries;
  for (uint64_t pos = start; pos < end; pos += kChunk) {
    const uint64_t n = std::min(kChunk, end - pos);
    for (size_t i = 0; i < legs.size(); ++i) bufs[i].resize(n);
    std::vector<std::exception_ptr> errors = for_legs(legs, true, [&](Leg& l) {
      size_t i = std::find(legs.begin(), legs.end(), &l) - legs.begin();
      l.dev->read(pos, bufs[i]);
    });
    settle(legs, errors, false);
    rec.bytes_read += n * legs.size();
    if (table_) {
      entries.resize(n / B);
      table_->get(pos / B, entries);
    }
    std::vector<size_t> alive;  // a leg that failed while being read is left out
    for (size_t i = 0; i < legs.size(); ++i)
      if (!errors[i] && legs[i]->writable_member()) alive.push_back(i);
    if (alive.empty() || legs[alive[0]]->behind) return;
    for (uint64_t off = 0; off < n; off += B) {
      // The copy to keep: one that matches its checksum (the first leg's if several
      // do); when none does, the write was torn between data and checksum, and the
      // first leg's data wins with a new checksum. Either is what the guest may see
      // after a crash: a write not yet flushed may or may not have happened.
      size_t keep = alive[0];
      if (table_) {
        const uint32_t want = entries[off / B];
        auto match = std::find_if(alive.begin(), alive.end(), [&](size_t i) {
          return !legs[i]->behind && block_checksum(geometry_.checksum, std::span(bufs[i].data() + off, B)) == want;
        });
        if (match != alive.end()) keep = *match;
        else entries[off / B] = block_checksum(geometry_.checksum, std::span(bufs[keep].data() + off, B));
      }
      for (size_t i : alive) {
        if (i == keep || !legs[i]->writable_member()) continue;
        if (std::memcmp(bufs[i].data() + off, bufs[keep].data() + off, B) == 0) continue;
        try {
          legs[i]->dev->write(pos + off, std::span(bufs[keep].data() + off, B));
          rec.bytes_written += B;
        } catch (...) {
          if (!leg_error(*legs[i], std::current_exception(), true)) throw;
        }
      }
    }
    if (table_) {
      table_->set(pos / B, entries);
      // The cache came from one leg's table; a crash may have left another leg's
      // entries for this dirty range older (a table write that reached one leg
      // only), and the cache writes back only pages it changed. Every leg gets the
      // entries here, so each leg's own table describes its data once the region is
      // clean, whichever leg is read from later.
      std::vector<uint8_t> raw(entries.size() * kTableEntry);
      for (size_t i = 0; i < entries.size(); ++i) store_le32(raw.data() + i * kTableEntry, entries[i]);
      for (size_t i : alive) {
        if (!legs[i]->writable_member()) continue;
        try {
          legs[i]->dev->write(legs[i]->layout.table_offset + pos / B * kTableEntry, raw);
        } catch (...) {
          if (!leg_error(*legs[i], std::current_exception(), true)) throw;
        }
      }
    }
  }
}

// ---- rebuild ----------------------------------------------------------------

bool MirrorDevice::has_pending_rebuild() const {
  std::shared_lock cfg(config_);
  for (const auto& l : legs_)
    if (l && l->dev && l->state.load() == LegState::rebuilding) return true;
  return false;
}

bool MirrorDevice::rebuild_step(Progress* progress) {
  std::lock_guard step(step_mutex_);
  uint32_t finished = UINT32_MAX;
  {
    std::shared_lock cfg(config_);
    Leg* target = nullptr;
    for (const auto& l : legs_)
      if (l && l->dev && l->state.load() == LegState::rebuilding) {
        target = l.get();
        break;
      }
    if (!target) return false;
    const uint64_t cursor = target->rebuild_cursor.load();
    if (rebuild_progress_.time_ns == 0 || rebuild_progress_.slot != target->slot) {
      rebuild_progress_ = {};
      rebuild_progress_.time_ns = unix_time_ns();
      rebuild_progress_.slot = target->slot;
      rebuild_started_ = std::chrono::steady_clock::now();
      if (progress) progress->set_total(size() - cursor);
    }
    if (cursor >= size()) {
      finished = target->slot;
    } else {
      if (!copy_region_to(*target, cursor / geometry_.region_size)) return true;  // the new leg failed
      if (progress) progress->add(target->rebuild_cursor.load() - cursor);
      if (std::chrono::steady_clock::now() - last_checkpoint_ >= kCheckpointEvery) {
        // The position is recorded only once everything below it is durable on the leg.
        if (!options_.no_barriers) target->dev->flush();
        write_superblocks();
        last_checkpoint_ = std::chrono::steady_clock::now();
      }
      return true;
    }
  }
  std::unique_lock cfg(config_);
  finish_rebuild(finished);
  return true;
}

bool MirrorDevice::copy_region_to(Leg& target, uint64_t region) {
  const uint64_t R = geometry_.region_size, B = geometry_.block_size;
  const uint64_t start = region * R, end = std::min(start + R, size());
  Leg* source = primary();
  if (!source) fail(ErrorCategory::io, "{}: no leg in sync to rebuild {} from", filename(), target.path);
  std::unique_lock lock(region_locks_.of(region));
  // The new leg failing ends its rebuild (errors of the source are the reads' business).
  auto on_target = [&](const std::function<void()>& fn) {
    try {
      fn();
      return true;
    } catch (const Error& e) {
      if (e.category() == ErrorCategory::usage || e.category() == ErrorCategory::internal ||
          e.category() == ErrorCategory::interrupted)
        throw;
      try_fail(target, std::string("during its rebuild: ") + e.what());
      return false;
    }
  };
  std::vector<uint8_t> buf;
  // Only what the source holds is copied; the rest reads as zeros, and is made to on
  // the new leg unless it already does (a fresh sparse file).
  for (uint64_t pos = start; pos < end;) {
    LayerStatus st = source->dev->layer_status(pos, end - pos);
    const uint64_t n = std::min<uint64_t>(std::max<uint64_t>(st.length, 1), end - pos);
    if (st.kind == ExtentKind::data) {
      for (uint64_t at = pos; at < pos + n;) {
        const uint64_t len = std::min(kChunk, pos + n - at);
        buf.resize(len);
        read_for_copy(at, buf);
        if (!on_target([&] { target.dev->write(at, buf); })) return false;
        rebuild_progress_.bytes_read += len;
        rebuild_progress_.bytes_written += len;
        at += len;
      }
    } else {
      bool zeroed = false;
      if (!on_target([&] {
            if (!target.dev->known_zero(pos, n)) {
              target.dev->write_zeroes(pos, n, true);
              zeroed = true;
            }
          }))
        return false;
      if (zeroed) rebuild_progress_.bytes_zeroed += n;
    }
    pos += n;
  }
  if (table_) {
    std::vector<uint32_t> entries((end - start) / B);
    table_->get(start / B, entries);
    std::vector<uint8_t> raw(entries.size() * kTableEntry);
    for (size_t i = 0; i < entries.size(); ++i) store_le32(raw.data() + i * kTableEntry, entries[i]);
    if (!on_target([&] { target.dev->write(target.layout.table_offset + start / B * kTableEntry, raw); })) return false;
  }
  target.rebuild_cursor = end;
  ++rebuild_progress_.regions;
  return true;
}

void MirrorDevice::read_for_copy(uint64_t offset, std::span<uint8_t> out) {
  try {
    if (table_) read_verified(offset, out, true);
    else read_plain(offset, out, true);
    return;
  } catch (const Error& e) {
    if (e.category() != ErrorCategory::io) throw;
  }
  // A block bad on every leg (already counted and logged) must not stop the
  // rebuild: the new leg gets the first leg's copy of it, bad as it is, and every
  // other block is copied as usual.
  const uint64_t B = geometry_.block_size;
  for (uint64_t at = 0; at < out.size(); at += B) {
    std::span<uint8_t> block = out.subspan(at, B);
    try {
      if (table_) read_verified(offset + at, block, true);
      else read_plain(offset + at, block, true);
    } catch (const Error& e) {
      if (e.category() != ErrorCategory::io) throw;
      try {
        primary()->dev->read(offset + at, block);
      } catch (const Error&) {
        std::memset(block.data(), 0, B);
      }
    }
  }
}

void MirrorDevice::finish_rebuild(uint32_t slot) {
  if (slot >= legs_.size() || !legs_[slot] || legs_[slot]->state.load() != LegState::rebuilding) return;
  Leg& leg = *legs_[slot];
  if (!options_.no_barriers) leg.dev->flush();
  leg.state = LegState::active;
  leg.note.clear();
  if (leg.replaces >= 0 && static_cast<size_t>(leg.replaces) < legs_.size() && legs_[leg.replaces]) {
    const uint32_t old = static_cast<uint32_t>(leg.replaces);
    note("{}: {} is in sync; removing {}, which it replaces", filename(), leg.path, legs_[old]->path);
    erase_leg(old);
    record_event(EventKind::leg_removed, old, 0);
  }
  leg.replaces = -1;
  rebuild_progress_.milliseconds = ms_since(rebuild_started_);
  {
    std::lock_guard lock(meta_mutex_);
    meta_.last_rebuild = rebuild_progress_;
  }
  record_event(EventKind::rebuild_done, slot, 0);
  write_superblocks();
  note("{}: rebuild of {} done: {} bytes copied, {} zeroed in {} ms", filename(), leg.path,
       rebuild_progress_.bytes_written, rebuild_progress_.bytes_zeroed, rebuild_progress_.milliseconds);
  rebuild_progress_ = {};
}

SyncRecord MirrorDevice::rebuild(Progress* progress) {
  require_writable("rebuild");
  std::vector<std::pair<uint32_t, Uuid>> targets;
  {
    std::shared_lock cfg(config_);
    for (const auto& l : legs_)
      if (l && l->dev && l->state.load() == LegState::rebuilding) targets.emplace_back(l->slot, l->uuid);
  }
  while (rebuild_step(progress)) interrupt::check();
  std::shared_lock cfg(config_);
  for (const auto& [slot, uuid] : targets)
    if (slot < legs_.size() && legs_[slot] && legs_[slot]->uuid == uuid && legs_[slot]->state.load() == LegState::failed)
      fail(ErrorCategory::io, "{}: the rebuild of {} failed: {}", filename(), legs_[slot]->path, legs_[slot]->note);
  std::lock_guard lock(meta_mutex_);
  return meta_.last_rebuild;
}

// ---- scrub ------------------------------------------------------------------

void MirrorDevice::start_scrub() {
  require_writable("scrub");
  std::shared_lock cfg(config_);
  {
    std::lock_guard lock(meta_mutex_);
    meta_.scrub = {};
    meta_.scrub.state = ScrubState::running;
    meta_.scrub.started_ns = unix_time_ns();
  }
  write_superblocks();
  {
    std::lock_guard lock(work_mutex_);
    worker_kicked_ = true;
  }
  work_cv_.notify_all();
}

void MirrorDevice::resume_scrub() {
  require_writable("scrub");
  std::shared_lock cfg(config_);
  {
    std::lock_guard lock(meta_mutex_);
    if (meta_.scrub.state == ScrubState::idle)
      fail(ErrorCategory::usage, "{}: no paused scrub to resume (start one with arche raid scrub)", filename());
    meta_.scrub.state = ScrubState::running;
  }
  write_superblocks();
  {
    std::lock_guard lock(work_mutex_);
    worker_kicked_ = true;
  }
  work_cv_.notify_all();
}

void MirrorDevice::pause_scrub() {
  require_writable("scrub");
  std::shared_lock cfg(config_);
  {
    std::lock_guard lock(meta_mutex_);
    if (meta_.scrub.state != ScrubState::running) return;
    meta_.scrub.state = ScrubState::paused;
  }
  write_superblocks();
}

ScrubRecord MirrorDevice::scrub(bool resume, Progress* progress) {
  if (resume) resume_scrub();
  else start_scrub();
  try {
    while (scrub_step(progress)) interrupt::check();
  } catch (const Error& e) {
    if (e.category() == ErrorCategory::interrupted) pause_scrub();  // where it was is kept
    throw;
  }
  std::lock_guard lock(meta_mutex_);
  return meta_.scrub;
}

bool MirrorDevice::scrub_step(Progress* progress) {
  std::lock_guard step(step_mutex_);
  std::shared_lock cfg(config_);
  uint64_t cursor;
  {
    std::lock_guard lock(meta_mutex_);
    if (meta_.scrub.state != ScrubState::running) return false;
    cursor = meta_.scrub.cursor;
  }
  if (progress && progress->done() == 0) progress->set_total(size() - cursor);
  if (cursor >= size()) {
    {
      std::lock_guard lock(meta_mutex_);
      meta_.scrub.state = ScrubState::idle;
      meta_.scrub.finished_ns = unix_time_ns();
    }
    write_superblocks();
    note("{}: scrub done", filename());
    return false;
  }
  const uint64_t region = cursor / geometry_.region_size;
  scrub_region(region);
  const uint64_t end = std::min((region + 1) * geometry_.region_size, size());
  {
    std::lock_guard lock(meta_mutex_);
    meta_.scrub.cursor = end;
    meta_.scrub.checked += (end - region * geometry_.region_size) / geometry_.block_size;
  }
  if (progress) progress->add(end - region * geometry_.region_size);
  if (std::chrono::steady_clock::now() - last_checkpoint_ >= kCheckpointEvery) {
    write_superblocks();
    last_checkpoint_ = std::chrono::steady_clock::now();
  }
  return true;
}

void MirrorDevice::scrub_region(uint64_t region) {
  const uint64_t R = geometry_.region_size, B = geometry_.block_size;
  const uint64_t start = region * R, end = std::min(start + R, size());
  std::unique_lock lock(region_locks_.of(region));
  std::vector<Leg*> legs = in_sync_legs();
  if (legs.empty()) return;
  std::vector<std::vector<uint8_t>> bufs(legs.size());
  std::vector<bool> readable(legs.size());
  std::vector<uint32_t> entries;
  for (uint64_t pos = start; pos < end; pos += kChunk) {
    const uint64_t n = std::min(kChunk, end - pos);
    for (size_t i = 0; i < legs.size(); ++i) {
      bufs[i].resize(n);
      readable[i] = true;
      try {
        // What a leg says reads as zeros is not read (a sparse leg's holes).
        LayerStatus st = legs[i]->dev->layer_status(pos, n);
        if (st.kind != ExtentKind::data && st.length >= n) std::memset(bufs[i].data(), 0, n);
        else legs[i]->dev->read(pos, bufs[i]);
      } catch (const Error& e) {
        if (e.category() == ErrorCategory::usage || e.category() == ErrorCategory::internal) throw;
        readable[i] = false;  // judged block by block below
      }
    }
    if (table_) {
      entries.resize(n / B);
      table_->get(pos / B, entries);
    }
    for (uint64_t off = 0; off < n; off += B) {
      const uint64_t b = (pos + off) / B;
      bool all_fine = true;
      for (size_t i = 0; i < legs.size() && all_fine; ++i) {
        std::span<const uint8_t> block(bufs[i].data() + off, B);
        all_fine = readable[i] && (table_ ? block_checksum(geometry_.checksum, block) == entries[off / B]
                                          : std::memcmp(block.data(), bufs[0].data() + off, B) == 0);
      }
      if (all_fine) continue;
      std::vector<Copy> copies;
      for (size_t i = 0; i < legs.size(); ++i) {
        Copy c;
        c.leg = legs[i];
        c.data.resize(B);
        c.read_ok = readable[i];
        if (readable[i]) std::memcpy(c.data.data(), bufs[i].data() + off, B);
        else {
          try {
            legs[i]->dev->read(pos + off, c.data);
            c.read_ok = true;
          } catch (const Error& e) {
            if (e.category() == ErrorCategory::usage || e.category() == ErrorCategory::internal) throw;
            legs[i]->read_errors.fetch_add(1);
          }
        }
        copies.push_back(std::move(c));
      }
      if (table_) {
        repair_block(b, copies, true);  // an unrecoverable block is counted; the scrub goes on
        continue;
      }
      // Without checksums nothing says which copy is right: the first readable leg's
      // wins, as md's repair does, and each difference is counted.
      auto keep = std::find_if(copies.begin(), copies.end(), [](const Copy& c) { return c.read_ok; });
      if (keep == copies.end()) {
        repair_block(b, copies, true);  // counted as unrecoverable
        continue;
      }
      for (Copy& c : copies) {
        if (&c == &*keep) continue;
        if (!c.read_ok) heal_copy(b, c, *keep, EventKind::healed_read_error, true);
        else if (std::memcmp(c.data.data(), keep->data.data(), B) != 0) heal_copy(b, c, *keep, EventKind::scrub_mismatch, true);
      }
    }
  }
}

// ---- background worker ------------------------------------------------------

void MirrorDevice::start_background() {
  if (!options_.writable) return;
  std::lock_guard lock(work_mutex_);
  if (worker_.joinable()) return;
  worker_stop_ = false;
  background_running_ = true;
  worker_ = std::thread([this] { background_loop(); });
}

void MirrorDevice::stop_background() {
  {
    std::lock_guard lock(work_mutex_);
    if (!worker_.joinable()) return;
    worker_stop_ = true;
  }
  work_cv_.notify_all();
  worker_.join();
  background_running_ = false;
}

bool MirrorDevice::has_background_work() const {
  if (has_pending_rebuild()) return true;
  std::lock_guard lock(meta_mutex_);
  return meta_.scrub.state == ScrubState::running;
}

void MirrorDevice::background_loop() {
  for (;;) {
    {
      std::unique_lock lock(work_mutex_);
      worker_busy_ = false;
      work_cv_.notify_all();
      // Woken by add/replace/scrub; the timeout also picks up work nobody announced.
      work_cv_.wait_for(lock, std::chrono::seconds(1), [&] { return worker_stop_ || worker_kicked_; });
      if (worker_stop_) return;
      worker_kicked_ = false;
      worker_busy_ = true;
    }
    try {
      while (!worker_stop_) {
        if (rebuild_step(nullptr)) continue;
        if (!scrub_step(nullptr)) break;
      }
    } catch (const std::exception& e) {
      warn("{}: background work stopped: {}", filename(), e.what());
      std::lock_guard lock(work_mutex_);
      worker_error_ = e.what();
    }
  }
}

void MirrorDevice::wait_background_idle() {
  {
    std::lock_guard lock(work_mutex_);
    worker_error_.clear();
  }
  for (;;) {
    {
      std::unique_lock lock(work_mutex_);
      if (!worker_.joinable()) return;
      work_cv_.wait(lock, [&] { return !worker_busy_; });
      if (!worker_error_.empty()) fail(ErrorCategory::io, "{}: background work stopped: {}", filename(), worker_error_);
    }
    if (!has_background_work()) return;
    {
      std::lock_guard lock(work_mutex_);
      worker_kicked_ = true;
    }
    work_cv_.notify_all();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace arche::image::mirror
