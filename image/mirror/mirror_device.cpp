// The mirror's life cycle (open, close), its names and what it reports.
#include "image/mirror/mirror_device.h"

#include "core/error.h"
#include "core/log.h"
#include "image/mirror/assemble.h"
#include "image/mirror/status.h"

namespace arche::image::mirror {

MirrorDevice::MirrorDevice(Assembly assembly, const MirrorOptions& options)
    : options_(options),
      geometry_(assembly.newest.geometry),
      array_(assembly.newest.array_uuid),
      legs_(std::move(assembly.legs)),
      meta_(std::move(assembly.newest)),
      pool_(static_cast<unsigned>(std::max<size_t>(1, legs_.size() - 1))) {
  meta_.slots.clear();  // from now on the slot records are legs_
  if (geometry_.checksum != ChecksumKind::none)
    table_ = std::make_unique<ChecksumTable>(
        geometry_.blocks(), options_.table_cache_bytes,
        [this](uint64_t page, std::span<uint8_t> out) { read_table_page(page, out); },
        [this](uint64_t page, std::span<const uint8_t> bytes) { write_table_page(page, bytes); });
  intent_ = std::make_unique<WriteIntent>(
      array_, geometry_.regions(),
      [this](uint64_t page, std::span<const uint8_t> bytes, bool sync) { write_bitmap_page(page, bytes, sync); },
      [this] { return write_superblocks(); }, options_.bitmap_clear_delay);
  refresh_names();

  // The bitmap as the legs hold it: a region marked on any leg may differ between
  // them, and so may every region of a page that fails its checksum (a torn write).
  const uint64_t regions = geometry_.regions();
  const uint64_t pages = (regions + kRegionsPerBitmapPage - 1) / kRegionsPerBitmapPage;
  const size_t per_page = kBitmapPage - kBitmapHeader;
  std::vector<uint8_t> bits(pages * per_page, 0);
  std::vector<uint64_t> cleared(pages, 0);
  uint64_t last_cleared = 0;  // the newest event at which any bit was cleared
  std::vector<uint8_t> page_bits(per_page);
  for (const auto& leg : legs_) {
    if (!leg || !leg->writable_member()) continue;
    std::vector<uint8_t> raw(pages * kBitmapPage);
    bool readable = true;
    try {
      leg->dev->read(leg->layout.bitmap_offset, raw);
    } catch (const Error& e) {
      warn("{}: cannot read the bitmap of {} ({}): resyncing every region", filename(), leg->path, e.what());
      readable = false;
    }
    for (uint64_t p = 0; p < pages; ++p) {
      uint64_t event = 0;
      std::span<const uint8_t> page(raw.data() + p * kBitmapPage, kBitmapPage);
      const bool ok = readable && decode_bitmap_page(array_, p, page, page_bits, event);
      if (!ok && readable) warn("{}: bitmap page {} on {} is damaged: its regions are resynced", filename(), p, leg->path);
      for (size_t i = 0; i < per_page; ++i) bits[p * per_page + i] |= ok ? page_bits[i] : 0xff;
      // A damaged page may have been cleared at any event: no leg behind can rely on it.
      cleared[p] = std::max(cleared[p], ok ? event : 0);
      last_cleared = std::max(last_cleared, ok ? event : UINT64_MAX);
    }
  }
  intent_->load(bits, cleared);

  // A leg behind the array missed only what the bitmap still marks if no bit was
  // cleared since its own superblock was written; then the resync below brings it
  // up to date. Otherwise (an old copy of the leg, say) it is stale: not used.
  for (const auto& leg : legs_) {
    if (!leg || !leg->behind) continue;
    if (options_.writable && leg->own_event >= last_cleared) {
      note("{}: {} is behind (event {}, the array at {}): resyncing its dirty regions", filename(), leg->path,
           leg->own_event, meta_.event);
      continue;
    }
    leg->note = options_.writable
                    ? fmt::format("stale: its superblock is at event {}, the array at {} (it missed updates)",
                                  leg->own_event, meta_.event)
                    : fmt::format("behind: its superblock is at event {}, the array at {}", leg->own_event, meta_.event);
    warn("{}: leg {} ({}) is {}: not used{}", filename(), leg->slot, leg->path, leg->note,
         options_.writable ? "; `arche raid add` rebuilds it" : "");
    leg->dev.reset();
    leg->behind = false;
    leg->state = LegState::failed;
  }
  refresh_names();

  if (options_.writable) {
    resync_dirty_regions();
  } else {
    std::vector<uint64_t> dirty = intent_->set_regions();
    if (!dirty.empty()) {
      unsynced_.assign(regions, false);
      for (uint64_t r : dirty) unsynced_[r] = true;
      warn("{}: {} regions were being written when the array was last stopped; reading them from one leg unverified "
           "until a writable open resyncs them",
           filename(), dirty.size());
    }
  }
}

MirrorDevice::~MirrorDevice() {
  stop_background();
  if (!options_.writable) return;
  try {
    std::unique_lock cfg(config_);
    if (table_) table_->write_back();
    sync_legs(writable_legs());
    // A clean close, and with nothing in flight every region is equal on every leg.
    intent_->clear_all(write_superblocks());
    sync_legs(writable_legs());
  } catch (const std::exception& e) {
    warn("{}: closing the mirror: {}", filename(), e.what());
  }
}

void MirrorDevice::refresh_names() {
  std::vector<std::string> paths, files;
  for (const auto& l : legs_) {
    if (!l || !l->writable_member()) continue;
    paths.push_back(l->path);
    for (std::string& f : l->dev->files()) files.push_back(std::move(f));
  }
  std::lock_guard lock(name_mutex_);
  name_ = mirror_name(paths);
  files_ = std::move(files);
}

std::string MirrorDevice::filename() const {
  std::lock_guard lock(name_mutex_);
  return name_;
}

std::vector<std::string> MirrorDevice::files() const {
  std::lock_guard lock(name_mutex_);
  return files_;
}

MirrorStatus MirrorDevice::status() const {
  std::shared_lock cfg(config_);
  MirrorStatus s;
  s.name = filename();
  s.uuid = uuid_text(array_);
  s.geometry = geometry_;
  s.writable = options_.writable;
  s.dirty_regions = intent_->set_regions().size();
  s.background = background_running_.load();
  bool rebuilding = false, degraded = false;
  size_t in_sync = 0;
  {
    std::lock_guard lock(meta_mutex_);
    s.event = meta_.event;
    s.scrub = meta_.scrub;
    s.last_resync = meta_.last_resync;
    s.last_rebuild = meta_.last_rebuild;
    s.unrecoverable = meta_.unrecoverable;
    s.events = meta_.events;
    for (const auto& l : legs_) {
      if (!l) continue;
      LegStatus ls;
      ls.slot = l->slot;
      ls.path = l->path;
      ls.uuid = uuid_text(l->uuid);
      ls.state = l->state.load();
      ls.present = static_cast<bool>(l->dev);
      ls.note = l->note;
      ls.rebuild_cursor = l->rebuild_cursor.load();
      ls.replaces = l->replaces;
      ls.healed = l->healed.load();
      ls.read_errors = l->read_errors.load();
      ls.write_errors = l->write_errors.load();
      s.healed += ls.healed;
      rebuilding |= ls.state == LegState::rebuilding;
      degraded |= ls.state == LegState::failed || !ls.present;
      in_sync += ls.state == LegState::active && ls.present;
      s.legs.push_back(std::move(ls));
    }
  }
  // One leg in sync is no mirror: "degraded" until a second one is.
  degraded |= in_sync < 2;
  s.state = rebuilding ? "rebuilding" : degraded ? "degraded" : !unsynced_.empty() ? "resync-pending" : "clean";
  return s;
}

ImageInfo MirrorDevice::info() const {
  ImageInfo i;
  i.filename = filename();
  i.format = "mirror";
  i.virtual_size = size();
  i.cluster_size = geometry_.block_size;
  {
    std::shared_lock cfg(config_);
    for (const auto& l : legs_)
      if (l && l->dev) i.actual_size += l->dev->info().actual_size;
  }
  i.format_specific = to_json(status());
  return i;
}

}  // namespace arche::image::mirror
