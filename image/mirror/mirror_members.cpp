// Membership of the mirror: failing, removing, adding and replacing legs, and the
// superblocks that record it.
#include <sys/stat.h>

#include <algorithm>
#include <boost/filesystem.hpp>
#include <chrono>

#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "core/units.h"
#include "image/format.h"
#include "image/mirror/assemble.h"
#include "image/mirror/mirror_device.h"

namespace arche::image::mirror {

namespace {

bool same_file(const std::string& a, const std::string& b) {
  struct stat sa {}, sb {};
  return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

std::string absolute(const std::string& path) {
  boost::system::error_code ec;
  boost::filesystem::path p = boost::filesystem::canonical(path, ec);
  return ec ? boost::filesystem::absolute(path).lexically_normal().string() : p.string();
}

constexpr const char* kByRequest = "by request";

bool is_number(const std::string& s) {
  return !s.empty() && s.size() < 4 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

// ---- superblocks and events -------------------------------------------------

Superblock MirrorDevice::superblock_for(const Leg& leg) const {
  Superblock sb = meta_;
  sb.slot = leg.slot;
  sb.layout = leg.layout;
  for (const auto& l : legs_) {
    SlotRecord r;
    if (l) {
      r.uuid = l->uuid;
      r.state = l->state.load();
      r.rebuild_cursor = l->rebuild_cursor.load();
      r.replaces = l->replaces;
      r.path = l->path;
      r.healed = l->healed.load();
      r.read_errors = l->read_errors.load();
      r.write_errors = l->write_errors.load();
    }
    sb.slots.push_back(std::move(r));
  }
  return sb;
}

uint64_t MirrorDevice::write_superblocks() {
  std::lock_guard lock(meta_mutex_);
  for (;;) {
    ++meta_.event;
    meta_.updated_ns = unix_time_ns();
    std::vector<Leg*> legs = writable_legs();
    if (legs.empty()) fail(ErrorCategory::io, "{}: no leg left to record the array's state on", filename());
    // Copies alternate by event, so the write never touches the newest valid copy.
    const uint64_t copy = meta_.event % 2;
    std::vector<std::vector<uint8_t>> encoded(legs_.size());
    for (Leg* l : legs) encoded[l->slot] = encode_superblock(superblock_for(*l));
    std::vector<std::exception_ptr> errors = for_legs(legs, true, [&](Leg& l) {
      l.dev->write(l.layout.superblock_offset + copy * kSuperblockSlot, encoded[l.slot]);
      if (!options_.no_barriers) l.dev->flush();
    });
    bool again = false;
    for (size_t i = 0; i < legs.size(); ++i) {
      if (!errors[i]) continue;
      std::string why;
      try {
        std::rethrow_exception(errors[i]);
      } catch (const Error& e) {
        if (e.category() == ErrorCategory::usage || e.category() == ErrorCategory::internal) throw;
        why = e.what();
      }
      size_t in_sync = in_sync_legs().size();
      if (legs[i]->in_sync() && in_sync <= 1) std::rethrow_exception(errors[i]);
      legs[i]->state = LegState::failed;
      legs[i]->note = "failed: " + why;
      legs[i]->write_errors.fetch_add(1);
      push_event_locked(EventKind::leg_failed, legs[i]->slot, 0);
      warn("{}: leg {} ({}) failed: {}", filename(), legs[i]->slot, legs[i]->path, why);
      again = true;  // the others must record that
    }
    if (!again) break;
  }
  refresh_names();
  return meta_.event;
}

void MirrorDevice::push_event_locked(EventKind kind, uint32_t slot, uint64_t block) {
  meta_.events.push_back({unix_time_ns(), slot, kind, block});
  if (meta_.events.size() > kMaxEvents) meta_.events.erase(meta_.events.begin());
  stats_changed_ = true;
}

void MirrorDevice::record_event(EventKind kind, uint32_t slot, uint64_t block) {
  std::lock_guard lock(meta_mutex_);
  push_event_locked(kind, slot, block);
}

// ---- naming legs ------------------------------------------------------------

Leg& MirrorDevice::leg_named(const std::string& leg) const {
  if (is_number(leg)) {
    size_t slot = std::stoul(leg);
    if (slot < legs_.size() && legs_[slot]) return *legs_[slot];
  } else {
    const std::string abs = absolute(leg);
    for (const auto& l : legs_)
      if (l && (l->path == abs || same_file(l->path, leg))) return *l;
  }
  std::string known;
  for (const auto& l : legs_)
    if (l) known += fmt::format("{}{} {}", known.empty() ? "" : ", ", l->slot, l->path);
  fail(ErrorCategory::not_found, "{}: no leg '{}' (legs: {})", filename(), leg, known);
}

uint32_t MirrorDevice::vacant_slot(const std::string& leg) const {
  if (is_number(leg)) {
    size_t slot = std::stoul(leg);
    if (slot > legs_.size() || slot >= kMaxLegs)
      fail(ErrorCategory::usage, "{}: slot {} does not exist (the next new one is {}; at most {} legs)", filename(), slot,
           legs_.size(), kMaxLegs);
    return static_cast<uint32_t>(slot);
  }
  return leg_named(leg).slot;
}

// ---- fail, remove -----------------------------------------------------------

bool MirrorDevice::try_fail(Leg& leg, const std::string& why) {
  size_t left = 0;
  {
    std::lock_guard lock(meta_mutex_);
    const LegState state = leg.state.load();
    if (state == LegState::failed) return true;
    left = in_sync_legs().size();
    if (state == LegState::active && left <= 1) return false;
    if (state == LegState::active) --left;
    leg.state = LegState::failed;
    leg.note = "failed: " + why;
    push_event_locked(EventKind::leg_failed, leg.slot, 0);
  }
  if (why == kByRequest) note("{}: leg {} ({}) failed by request; {} leg(s) in sync remain", filename(), leg.slot, leg.path, left);
  else warn("{}: leg {} ({}) failed: {}; {} leg(s) in sync remain", filename(), leg.slot, leg.path, why, left);
  write_superblocks();
  return true;
}

void MirrorDevice::fail_leg(const std::string& name) {
  require_writable("fail a leg");
  std::shared_lock cfg(config_);
  Leg& leg = leg_named(name);
  if (leg.state.load() == LegState::failed) return;
  if (!try_fail(leg, kByRequest))
    fail(ErrorCategory::usage, "{}: {} is the last leg in sync; failing it would leave no good copy", filename(),
         leg.path);
}

void MirrorDevice::erase_leg(uint32_t slot) {
  Leg* leg = legs_[slot].get();
  if (!leg) return;
  // Its superblock goes, so the leg is a plain image from now on and can never be
  // taken for a member of this array again.
  if (options_.writable) {
    try {
      std::unique_ptr<BlockDevice> closed;  // a failed leg is not open: open it for this
      BlockDevice* dev = leg->dev.get();
      if (!dev && !leg->path.empty() && boost::filesystem::exists(leg->path)) {
        OpenOptions o;
        o.writable = true;
        closed = open_image(leg->path, o);
        Superblock sb = read_superblock(*closed, leg->path);
        if (sb.array_uuid == array_ && sb.leg_uuid() == leg->uuid) dev = closed.get();
      }
      if (dev) {
        std::vector<uint8_t> zeros(kSuperblockArea, 0);
        dev->write(dev->size() - kSuperblockArea, zeros);
        if (!options_.no_barriers) dev->flush();
      }
    } catch (const Error& e) {
      if (leg->dev) warn("{}: could not erase the superblock of {}: {}", filename(), leg->path, e.what());
    }
  }
  for (const auto& l : legs_)
    if (l && l->replaces == static_cast<int32_t>(slot)) l->replaces = -1;
  legs_[slot].reset();
  while (!legs_.empty() && !legs_.back()) legs_.pop_back();
}

void MirrorDevice::remove_leg(const std::string& name) {
  require_writable("remove a leg");
  std::unique_lock cfg(config_);
  Leg& leg = leg_named(name);
  if (leg.state.load() == LegState::active && leg.dev)
    fail(ErrorCategory::usage, "{}: {} is in sync; fail it first (arche raid fail)", filename(), leg.path);
  const uint32_t slot = leg.slot;
  const std::string path = leg.path;
  erase_leg(slot);
  record_event(EventKind::leg_removed, slot, 0);
  write_superblocks();
  note("{}: removed leg {} ({})", filename(), slot, path);
}

// ---- add, replace -----------------------------------------------------------

std::unique_ptr<Leg> MirrorDevice::prepare_new_leg(uint32_t slot, const std::string& path,
                                                   const NewLegOptions& options, bool was_member) const {
  const std::string abs = absolute(path);
  for (const auto& l : legs_)
    if (l && l->dev && (l->path == abs || same_file(l->path, path)))
      fail(ErrorCategory::usage, "{}: {} is already leg {}", filename(), path, l->slot);

  const uint64_t needed = min_leg_size(geometry_);
  OpenOptions o;
  o.writable = true;
  o.no_barriers = options_.no_barriers;
  boost::system::error_code ec;
  if (!boost::filesystem::exists(path, ec)) {
    CreateOptions c;
    c.format = "raw";
    c.size = needed;
    create_image(path, c);
  } else {
    std::unique_ptr<BlockDevice> probe = open_image(path, o);
    if (probe->size() < needed)
      fail(ErrorCategory::usage, "{}: {} holds {} bytes; a leg of this mirror needs {}", filename(), path,
           probe->size(), needed);
    bool ours = was_member;
    try {
      Superblock sb = read_superblock(*probe, path);
      ours = ours || sb.array_uuid == array_;
      if (!ours && !options.overwrite)
        fail(ErrorCategory::exists, "{} is a leg of another mirror ({}); pass --overwrite to reuse it", path,
             uuid_text(sb.array_uuid));
    } catch (const Error& e) {
      if (e.category() == ErrorCategory::exists) throw;
    }
    if (!ours && !options.overwrite && !probe->known_zero(0, std::min(probe->size(), geometry_.data_size)))
      fail(ErrorCategory::exists, "{} holds data; the rebuild would overwrite it (pass --overwrite to allow it)", path);
  }
  auto leg = std::make_unique<Leg>();
  leg->slot = slot;
  leg->uuid = foreign::random_uuid();
  leg->path = abs;
  leg->dev = open_image(path, o);
  if (options_.wrap_leg) leg->dev = options_.wrap_leg(std::move(leg->dev));
  if (leg->dev->backing())
    fail(ErrorCategory::usage, "{}: a leg must not have a backing file (its data would live outside the mirror)", path);
  leg->layout = layout_for(geometry_, leg->dev->size());
  leg->state = LegState::rebuilding;
  leg->rebuild_cursor = 0;
  // No superblock until the others record the leg: a crash before then leaves a
  // plain image, not a half-made member.
  std::vector<uint8_t> zeros(kSuperblockArea, 0);
  leg->dev->write(leg->layout.superblock_offset, zeros);
  return leg;
}

void MirrorDevice::install_new_leg(std::unique_ptr<Leg> leg) {
  const uint32_t slot = leg->slot;
  const std::string path = leg->path;
  if (slot < legs_.size() && legs_[slot]) {
    if (same_file(legs_[slot]->path, path)) legs_[slot].reset();  // the same file comes back
    else erase_leg(slot);
  }
  if (legs_.size() <= slot) legs_.resize(slot + 1);
  legs_[slot] = std::move(leg);
  // Its bitmap first (every page, durably), then the superblocks that make it a
  // member: a leg is never a member with a bitmap that says less than the others.
  intent_->write_all();
  record_event(EventKind::leg_added, slot, 0);
  write_superblocks();
  note("{}: added leg {} ({}); rebuild pending", filename(), slot, path);
  {
    std::lock_guard lock(work_mutex_);
    worker_kicked_ = true;
  }
  work_cv_.notify_all();
}

void MirrorDevice::add_leg(const std::string& name, const std::string& new_path, const NewLegOptions& options) {
  require_writable("add a leg");
  std::unique_lock cfg(config_);
  const uint32_t slot = vacant_slot(name);
  Leg* old = slot < legs_.size() ? legs_[slot].get() : nullptr;
  if (old && old->writable_member())
    fail(ErrorCategory::usage, "{}: slot {} ({}) is {}; use raid replace to swap it", filename(), slot, old->path,
         to_string(old->state.load()));
  // The same file back in its old slot (a stale or failed leg): close it first.
  const bool same = old && same_file(old->path, new_path);
  if (same) old->dev.reset();
  install_new_leg(prepare_new_leg(slot, new_path, options, same));
}

void MirrorDevice::replace_leg(const std::string& name, const std::string& new_path, const NewLegOptions& options) {
  require_writable("replace a leg");
  std::unique_lock cfg(config_);
  Leg& old = leg_named(name);
  if (!old.in_sync()) {
    // Nothing to keep reading from: the new leg simply takes the slot.
    const bool same = same_file(old.path, new_path);
    if (same) old.dev.reset();
    install_new_leg(prepare_new_leg(old.slot, new_path, options, same));
    return;
  }
  uint32_t free = 0;
  while (free < legs_.size() && legs_[free]) ++free;
  if (free >= kMaxLegs) fail(ErrorCategory::usage, "{}: no free slot for the new leg (at most {} legs)", filename(), kMaxLegs);
  std::unique_ptr<Leg> leg = prepare_new_leg(free, new_path, options, false);
  leg->replaces = static_cast<int32_t>(old.slot);
  install_new_leg(std::move(leg));
}

}  // namespace arche::image::mirror
