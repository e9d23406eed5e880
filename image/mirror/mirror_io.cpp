// The mirror's data path: writes to every leg in sync, verified reads, healing.
#include <algorithm>
#include <cstring>
#include <exception>

#include "core/endian.h"
#include "core/error.h"
#include "core/log.h"
#include "core/units.h"
#include "image/mirror/mirror_device.h"

namespace arche::image::mirror {

namespace {

// Writes at least this big go to the legs in parallel; smaller ones one after the
// other, because handing a request to another thread costs more than it saves.
constexpr uint64_t kParallelBytes = 64 * 1024;

// Errors that say something about the leg (it cannot read, write, or is damaged),
// as opposed to a bug or a stop request, which must not fail a leg.
bool is_leg_failure(const Error& e) {
  switch (e.category()) {
    case ErrorCategory::usage:
    case ErrorCategory::internal:
    case ErrorCategory::interrupted: return false;
    default: return true;
  }
}

std::string message_of(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  }
}

}  // namespace

void MirrorDevice::require_writable(const char* op) const {
  if (!options_.writable) fail(ErrorCategory::usage, "{}: {} on a mirror opened read-only", filename(), op);
}

bool MirrorDevice::region_unsynced(uint64_t region) const {
  return !unsynced_.empty() && unsynced_[region];
}

std::vector<Leg*> MirrorDevice::in_sync_legs() const {
  std::vector<Leg*> out;
  for (const auto& l : legs_)
    if (l && l->in_sync()) out.push_back(l.get());
  return out;
}

std::vector<Leg*> MirrorDevice::writable_legs() const {
  std::vector<Leg*> out;
  for (const auto& l : legs_)
    if (l && l->writable_member()) out.push_back(l.get());
  return out;
}

Leg* MirrorDevice::primary() const {
  for (const auto& l : legs_)
    if (l && l->in_sync()) return l.get();
  return nullptr;
}

Leg* MirrorDevice::pick_read_leg() {
  std::vector<Leg*> legs = in_sync_legs();
  if (legs.empty()) fail(ErrorCategory::io, "{}: no leg is in sync", filename());
  return legs[next_read_.fetch_add(1, std::memory_order_relaxed) % legs.size()];
}

std::vector<std::exception_ptr> MirrorDevice::for_legs(const std::vector<Leg*>& legs, bool parallel,
                                                       const std::function<void(Leg&)>& fn) {
  std::vector<std::exception_ptr> errors(legs.size());
  auto run = [&](size_t i) {
    try {
      fn(*legs[i]);
    } catch (...) {
      errors[i] = std::current_exception();
    }
  };
  if (!parallel || legs.size() < 2) {
    for (size_t i = 0; i < legs.size(); ++i) run(i);
    return errors;
  }
  std::vector<std::future<void>> others;
  for (size_t i = 1; i < legs.size(); ++i) others.push_back(pool_.submit([&run, i] { run(i); }));
  run(0);
  for (auto& f : others) f.get();
  return errors;
}

bool MirrorDevice::leg_error(Leg& leg, const std::exception_ptr& error, bool on_write) {
  try {
    std::rethrow_exception(error);
  } catch (const Error& e) {
    if (!is_leg_failure(e)) throw;
  }
  (on_write ? leg.write_errors : leg.read_errors).fetch_add(1);
  stats_changed_ = true;
  return try_fail(leg, message_of(error));
}

// After an operation on several legs: a leg that failed it is failed, unless no leg
// in sync succeeded — then nothing is failed and the (first) error is the result.
void MirrorDevice::settle(const std::vector<Leg*>& legs, const std::vector<std::exception_ptr>& errors, bool on_write) {
  bool any_in_sync_ok = false;
  std::exception_ptr first;
  for (size_t i = 0; i < legs.size(); ++i) {
    if (!errors[i] && legs[i]->in_sync()) any_in_sync_ok = true;
    if (errors[i] && !first) first = errors[i];
  }
  if (!first) return;
  if (!any_in_sync_ok) std::rethrow_exception(first);
  for (size_t i = 0; i < legs.size(); ++i)
    if (errors[i] && !leg_error(*legs[i], errors[i], on_write)) std::rethrow_exception(errors[i]);
}

void MirrorDevice::sync_legs(const std::vector<Leg*>& legs) {
  if (options_.no_barriers) return;
  settle(legs, for_legs(legs, true, [](Leg& l) { l.dev->flush(); }), true);
}

// ---- metadata pages ---------------------------------------------------------

void MirrorDevice::write_bitmap_page(uint64_t page, std::span<const uint8_t> bytes, bool sync) {
  std::vector<Leg*> legs = writable_legs();
  settle(legs, for_legs(legs, false, [&](Leg& l) { l.dev->write(l.layout.bitmap_offset + page * kBitmapPage, bytes); }),
         true);
  if (sync) sync_legs(writable_legs());
}

void MirrorDevice::write_table_page(uint64_t page, std::span<const uint8_t> bytes) {
  std::vector<Leg*> legs = writable_legs();
  settle(legs, for_legs(legs, false, [&](Leg& l) { l.dev->write(l.layout.table_offset + page * kTablePage, bytes); }),
         true);
}

void MirrorDevice::read_table_page(uint64_t page, std::span<uint8_t> out) {
  std::exception_ptr last;
  for (Leg* l : in_sync_legs()) {
    try {
      l->dev->read(l->layout.table_offset + page * kTablePage, out);
      return;
    } catch (const Error& e) {
      if (!is_leg_failure(e)) throw;
      last = std::current_exception();
      l->read_errors.fetch_add(1);
    }
  }
  if (last) std::rethrow_exception(last);
  fail(ErrorCategory::io, "{}: no leg is in sync to read the checksum table from", filename());
}

// ---- writes -----------------------------------------------------------------

void MirrorDevice::write(uint64_t offset, std::span<const uint8_t> data) {
  require_writable("write");
  check_request(offset, data.size(), "write");
  if (data.empty()) return;
  std::shared_lock cfg(config_);
  write_range(offset, data.size(), data.data(), false);
}

void MirrorDevice::write_zeroes(uint64_t offset, uint64_t length, bool may_unmap) {
  require_writable("write zeroes");
  check_request(offset, length, "write zeroes");
  if (length == 0) return;
  std::shared_lock cfg(config_);
  write_range(offset, length, nullptr, may_unmap);
}

void MirrorDevice::discard(uint64_t offset, uint64_t length) {
  require_writable("discard");
  check_request(offset, length, "discard");
  std::shared_lock cfg(config_);
  // Whole blocks of the coarsest leg only, so that every leg drops the same bytes
  // (a qcow2 leg ignores partial clusters that a raw leg would zero).
  const uint64_t g = granularity_locked();
  const uint64_t start = align_up(offset, g);
  const uint64_t end = offset + length == size() ? size() : align_down(offset + length, g);
  if (end > start) write_range(start, end - start, nullptr, true);
}

void MirrorDevice::write_range(uint64_t offset, uint64_t length, const uint8_t* data, bool zero_unmap) {
  const uint64_t end = offset + length, R = geometry_.region_size, B = geometry_.block_size;
  const uint64_t r0 = offset / R, r1 = (end - 1) / R;
  if (!primary()) fail(ErrorCategory::io, "{}: no leg is in sync", filename());

  // 1. The bitmap says the regions may differ between legs, durably, before any leg
  //    is written. 2. The legs. 3. The checksums (written back at flush).
  intent_->begin_write(r0, r1);
  // A write that ends in an exception did not reach every leg it was meant for:
  // its regions stay dirty until a resync (WriteIntent::end_write).
  struct EndWrite {
    WriteIntent& intent;
    uint64_t first, last;
    int exceptions = std::uncaught_exceptions();
    ~EndWrite() { intent.end_write(first, last, std::uncaught_exceptions() == exceptions); }
  } end_write{*intent_, r0, r1};
  RegionLocks::Shared regions(region_locks_, r0, r1);

  if (!table_) {
    write_to_legs(offset, length, data, zero_unmap);
    return;
  }
  auto put = [&](uint64_t at, uint64_t n, const uint8_t* bytes, bool unmap) {
    write_to_legs(at, n, bytes, unmap);
    std::vector<uint32_t> entries(n / B, 0);
    if (bytes)
      for (size_t i = 0; i < entries.size(); ++i)
        entries[i] = block_checksum(geometry_.checksum, std::span(bytes + i * B, B));
    table_->set(at / B, entries);
  };
  // A block only partly written is read (verified), merged and written whole, so its
  // checksum covers what the block holds. Writers of other parts of it wait.
  auto partial = [&](uint64_t b) {
    std::lock_guard block_lock(block_locks_.of(b));
    std::vector<uint8_t> block(B);
    read_verified(b * B, block, /*region_locked=*/true);
    const uint64_t from = std::max(offset, b * B), to = std::min(end, (b + 1) * B);
    if (data) std::memcpy(block.data() + (from - b * B), data + (from - offset), to - from);
    else std::memset(block.data() + (from - b * B), 0, to - from);
    put(b * B, B, block.data(), false);
  };
  uint64_t first_whole = align_up(offset, B), last_whole = align_down(end, B);
  if (first_whole > last_whole) {  // inside one block
    partial(offset / B);
    return;
  }
  if (offset % B) partial(offset / B);
  if (last_whole > first_whole)
    put(first_whole, last_whole - first_whole, data ? data + (first_whole - offset) : nullptr, zero_unmap);
  if (end % B) partial(end / B);
}

void MirrorDevice::write_to_legs(uint64_t offset, uint64_t length, const uint8_t* data, bool zero_unmap) {
  const uint64_t end = offset + length;
  std::vector<Leg*> legs = writable_legs();
  auto one = [&](Leg& leg) {
    // A leg being rebuilt gets the writes below its rebuild position; the rebuild
    // copies the rest. (The position cannot move: the rebuild holds the region
    // exclusively while it copies it, and this write holds it shared.)
    uint64_t limit = end;
    if (leg.state.load() == LegState::rebuilding) limit = std::min(end, leg.rebuild_cursor.load());
    if (limit <= offset) return;
    if (data) leg.dev->write(offset, std::span(data, limit - offset));
    else leg.dev->write_zeroes(offset, limit - offset, zero_unmap);
  };
  settle(legs, for_legs(legs, length >= kParallelBytes, one), true);
}

// ---- reads ------------------------------------------------------------------

void MirrorDevice::read(uint64_t offset, std::span<uint8_t> out) {
  check_request(offset, out.size(), "read");
  if (out.empty()) return;
  std::shared_lock cfg(config_);
  if (table_) read_verified(offset, out, false);
  else read_plain(offset, out, false);
}

void MirrorDevice::read_plain(uint64_t offset, std::span<uint8_t> out, bool region_locked) {
  Leg* leg = pick_read_leg();
  try {
    leg->dev->read(offset, out);
    return;
  } catch (const Error& e) {
    if (!is_leg_failure(e)) throw;
  }
  // That leg could not read the range: block by block from a leg that can, healing
  // the blocks it could not read.
  const uint64_t B = geometry_.block_size, end = offset + out.size();
  std::vector<uint8_t> block(B);
  for (uint64_t b = offset / B; b * B < end; ++b) {
    recover_block(b, std::span(block.data(), B), region_locked);
    const uint64_t from = std::max(offset, b * B), to = std::min(end, b * B + B);
    std::memcpy(out.data() + (from - offset), block.data() + (from - b * B), to - from);
  }
}

void MirrorDevice::read_verified(uint64_t offset, std::span<uint8_t> out, bool region_locked) {
  const uint64_t B = geometry_.block_size, end = offset + out.size();
  const uint64_t b0 = offset / B, b1 = (end - 1) / B;
  const uint64_t aligned = b0 * B, aligned_end = std::min((b1 + 1) * B, size());
  // Whole blocks are read (a checksum covers a block); into `out` when it is aligned.
  thread_local std::vector<uint8_t> scratch;
  std::span<uint8_t> buf = out;
  if (aligned != offset || aligned_end != end) {
    scratch.resize(aligned_end - aligned);
    buf = std::span(scratch.data(), aligned_end - aligned);
  }
  Leg* leg = pick_read_leg();
  bool read_ok = true;
  try {
    leg->dev->read(aligned, buf);
  } catch (const Error& e) {
    if (!is_leg_failure(e)) throw;
    read_ok = false;
  }
  std::vector<uint32_t> entries(b1 - b0 + 1);
  table_->get(b0, entries);
  for (uint64_t b = b0; b <= b1; ++b) {
    std::span<uint8_t> block = buf.subspan((b - b0) * B, B);
    if (read_ok && (region_unsynced(b * B / geometry_.region_size) ||
                    block_checksum(geometry_.checksum, block) == entries[b - b0]))
      continue;
    recover_block(b, block, region_locked);
  }
  if (buf.data() != out.data()) std::memcpy(out.data(), buf.data() + (offset - aligned), out.size());
}

void MirrorDevice::recover_block(uint64_t b, std::span<uint8_t> out, bool region_locked) {
  const uint64_t B = geometry_.block_size, region = b * B / geometry_.region_size;
  std::unique_lock<std::shared_mutex> lock(region_locks_.of(region), std::defer_lock);
  if (!region_locked) lock.lock();
  // Under the lock nothing writes the block: what the legs hold now is settled, so a
  // mismatch seen while a write was landing is not mistaken for damage.
  std::vector<Copy> copies;
  for (Leg* leg : in_sync_legs()) {
    Copy c;
    c.leg = leg;
    c.data.resize(B);
    try {
      leg->dev->read(b * B, c.data);
    } catch (const Error& e) {
      if (!is_leg_failure(e)) throw;
      c.read_ok = false;
      leg->read_errors.fetch_add(1);
    }
    copies.push_back(std::move(c));
  }
  int good = repair_block(b, copies, false);
  if (good < 0) {
    std::string detail;
    for (const Copy& c : copies)
      detail += fmt::format("{}{}: {}", detail.empty() ? "" : ", ", c.leg->path, c.read_ok ? "checksum mismatch" : "read error");
    fail(ErrorCategory::io, "{}: block {} (bytes {}-{}) is damaged on every leg ({}); it cannot be read", filename(), b,
         b * B, b * B + B - 1,
         detail.empty() ? "no leg in sync" : detail);
  }
  std::memcpy(out.data(), copies[good].data.data(), out.size());
}

int MirrorDevice::repair_block(uint64_t b, std::vector<Copy>& copies, bool from_scrub) {
  const uint64_t region = b * geometry_.block_size / geometry_.region_size;
  const bool verify = table_ && !region_unsynced(region);
  uint32_t entry = 0;
  if (table_) table_->get(b, std::span(&entry, 1));
  auto matches = [&](const Copy& c, uint32_t e) { return block_checksum(geometry_.checksum, c.data) == e; };
  int good = -1;
  for (size_t i = 0; i < copies.size() && good < 0; ++i)
    if (copies[i].read_ok && (!verify || matches(copies[i], entry))) good = static_cast<int>(i);
  if (good < 0 && verify) {
    // No copy matches the cached entry. The entry itself may be the damaged part (the
    // table page was read from a leg whose table is bad): a copy that matches its own
    // leg's entry on disk is right, and the table is corrected.
    for (size_t i = 0; i < copies.size() && good < 0; ++i) {
      if (!copies[i].read_ok) continue;
      uint8_t raw[4];
      try {
        copies[i].leg->dev->read(copies[i].leg->layout.table_offset + b * kTableEntry, raw);
      } catch (const Error& e) {
        if (!is_leg_failure(e)) throw;
        continue;
      }
      if (load_le32(raw) != entry && matches(copies[i], load_le32(raw))) {
        good = static_cast<int>(i);
        entry = load_le32(raw);
        uint32_t fixed = entry;
        table_->set(b, std::span(&fixed, 1));
      }
    }
  }
  if (good < 0) {
    {
      std::lock_guard lock(meta_mutex_);
      ++meta_.unrecoverable;
      if (from_scrub) ++meta_.scrub.unrecoverable;
    }
    record_event(EventKind::unrecoverable, copies.empty() ? 0 : copies[0].leg->slot, b);
    // A read reports it as its error; a scrub goes on, so it says so here.
    if (from_scrub) warn("{}: block {} (offset {}) is damaged on every leg", filename(), b, b * geometry_.block_size);
    return -1;
  }
  const Copy& right = copies[good];
  for (Copy& c : copies) {
    if (&c == &right || (c.read_ok && (!verify || matches(c, entry)))) continue;
    heal_copy(b, c, right, c.read_ok ? EventKind::healed_mismatch : EventKind::healed_read_error, from_scrub);
  }
  return good;
}

void MirrorDevice::heal_copy(uint64_t b, Copy& bad, const Copy& good, EventKind kind, bool from_scrub) {
  const uint64_t B = geometry_.block_size, region = b * B / geometry_.region_size;
  const char* what = kind == EventKind::healed_mismatch   ? "checksum mismatch"
                     : kind == EventKind::scrub_mismatch ? "differs from the other legs"
                                                         : "read error";
  if (!options_.writable) {
    warn("{}: block {} (offset {}) on {}: {}; not rewritten (opened read-only)", filename(), b, b * B, bad.leg->path,
         what);
    return;
  }
  // The region is marked while the copy is rewritten: if that write is torn by a
  // crash, the resync (not only the checksum) sees to it.
  intent_->begin_write(region, region);
  try {
    bad.leg->dev->write(b * B, good.data);
  } catch (...) {
    // Failed, the leg holds no good copy: fine once the leg is failed; if it cannot
    // be (it is the last in sync), the region waits for a resync.
    bool failed = false;
    try {
      failed = leg_error(*bad.leg, std::current_exception(), true);
    } catch (...) {
      intent_->end_write(region, region, false);
      throw;
    }
    intent_->end_write(region, region, failed);
    if (!failed) throw;
    return;
  }
  intent_->end_write(region, region, true);
  bad.leg->healed.fetch_add(1);
  if (from_scrub) {
    std::lock_guard lock(meta_mutex_);
    if (kind == EventKind::scrub_mismatch) ++meta_.scrub.mismatches;
    else ++meta_.scrub.healed;
  }
  record_event(kind, bad.leg->slot, b);
  warn("{}: block {} (offset {}) on {}: {}; rewritten from {}", filename(), b, b * B, bad.leg->path, what,
       good.leg->path);
}

// ---- flush, status of ranges ------------------------------------------------

void MirrorDevice::flush() {
  if (!options_.writable) return;
  std::shared_lock cfg(config_);
  // Everything written before the flush began becomes durable with the checksums
  // that describe it; only then may the bitmap forget the regions (flush_done).
  const uint64_t gen = intent_->flush_started();
  if (table_) table_->write_back();
  sync_legs(writable_legs());
  intent_->flush_done(gen);
  if (stats_changed_.exchange(false)) write_superblocks();
}

LayerStatus MirrorDevice::layer_status(uint64_t offset, uint64_t max_length) {
  std::shared_lock cfg(config_);
  const uint64_t limit = std::min(max_length, size() - std::min(offset, size()));
  Leg* leg = primary();
  if (!leg) return {ExtentKind::data, limit, std::nullopt};
  LayerStatus st = leg->dev->layer_status(offset, limit);
  st.length = std::min(st.length, limit);
  st.host_offset.reset();
  st.compressed = false;
  if (st.kind == ExtentKind::unallocated) st.kind = ExtentKind::zero;  // a leaf: legs have no backing file
  return st;
}

uint64_t MirrorDevice::granularity() const {
  std::shared_lock cfg(config_);
  return granularity_locked();
}

uint64_t MirrorDevice::granularity_locked() const {
  uint64_t g = geometry_.block_size;
  for (const auto& l : legs_)
    if (l && l->dev) g = std::max(g, l->dev->granularity());
  return g;
}

}  // namespace arche::image::mirror
