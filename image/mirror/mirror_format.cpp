#include "image/mirror/mirror_format.h"

#include <cstring>

#include "core/bytes.h"
#include "core/crc32c.h"
#include "core/error.h"
#include "core/units.h"

namespace arche::image::mirror {

namespace {

struct Needs {
  uint64_t table_offset, table_bytes, bitmap_offset, bitmap_bytes, end;
};

// The metadata `g` needs, placed from the first 64 KiB boundary after the data.
// Callers validated g, so nothing here can overflow for data sizes below 2^62.
Needs needs_of(const Geometry& g) {
  Needs n{};
  n.table_offset = align_up(g.data_size, kMetadataAlign);
  n.table_bytes = g.checksum == ChecksumKind::none ? 0 : align_up(g.blocks() * kTableEntry, kTablePage);
  n.bitmap_offset = n.table_offset + n.table_bytes;
  n.bitmap_bytes = div_round_up(g.regions(), kRegionsPerBitmapPage) * kBitmapPage;
  n.end = n.bitmap_offset + n.bitmap_bytes;
  return n;
}

const char* state_names[] = {"empty", "active", "rebuilding", "failed"};

}  // namespace

void validate(const Geometry& g) {
  if (!is_power_of_two(g.block_size) || g.block_size < kMinBlockSize || g.block_size > kMaxBlockSize)
    fail(ErrorCategory::usage, "mirror: block size {} must be a power of two from 4 KiB to 64 KiB", g.block_size);
  if (!is_power_of_two(g.region_size) || g.region_size < kMinRegionSize || g.region_size > kMaxRegionSize ||
      g.region_size < g.block_size)
    fail(ErrorCategory::usage, "mirror: region size {} must be a power of two from 64 KiB to 1 GiB (and at least the block size)",
         g.region_size);
  if (g.data_size == 0 || g.data_size > (1ull << 60))
    fail(ErrorCategory::usage, "mirror: size {} is out of range", g.data_size);
  if (g.data_size % g.block_size)
    fail(ErrorCategory::usage, "mirror: size {} is not a multiple of the {}-byte block", g.data_size, g.block_size);
  if (static_cast<uint8_t>(g.checksum) > static_cast<uint8_t>(ChecksumKind::xxh3))
    fail(ErrorCategory::usage, "mirror: unknown checksum algorithm {}", static_cast<int>(g.checksum));
}

uint64_t min_leg_size(const Geometry& g) { return needs_of(g).end + kSuperblockArea; }

LegLayout layout_for(const Geometry& g, uint64_t leg_size) {
  Needs n = needs_of(g);
  if (leg_size < n.end + kSuperblockArea)
    fail(ErrorCategory::usage, "a leg of {} bytes is too small for a {}-byte mirror (it needs {} bytes with the metadata)",
         leg_size, g.data_size, n.end + kSuperblockArea);
  LegLayout l;
  l.table_offset = n.table_offset;
  l.table_bytes = n.table_bytes;
  l.bitmap_offset = n.bitmap_offset;
  l.bitmap_bytes = n.bitmap_bytes;
  l.superblock_offset = leg_size - kSuperblockArea;
  l.leg_size = leg_size;
  return l;
}

uint64_t max_data_size(uint64_t leg_size, const Geometry& shape) {
  Geometry g = shape;
  uint64_t lo = 0, hi = leg_size / kMetadataAlign;  // in units of 64 KiB
  while (lo < hi) {
    uint64_t mid = lo + (hi - lo + 1) / 2;
    g.data_size = mid * kMetadataAlign;
    if (min_leg_size(g) <= leg_size) lo = mid;
    else hi = mid - 1;
  }
  return lo * kMetadataAlign;
}

bool layout_consistent(const Geometry& g, const LegLayout& l) {
  Needs n = needs_of(g);
  if (l.leg_size < kSuperblockArea || l.superblock_offset != l.leg_size - kSuperblockArea) return false;
  if (l.table_offset < g.data_size || l.table_bytes < n.table_bytes) return false;
  if (!range_within(l.table_offset, l.table_bytes, l.superblock_offset)) return false;
  if (l.bitmap_offset < l.table_offset + l.table_bytes || l.bitmap_bytes < n.bitmap_bytes) return false;
  if (!range_within(l.bitmap_offset, l.bitmap_bytes, l.superblock_offset)) return false;
  return l.table_offset % kTablePage == 0 && l.bitmap_offset % kBitmapPage == 0 && l.bitmap_bytes % kBitmapPage == 0;
}

const char* to_string(LegState state) {
  auto i = static_cast<size_t>(state);
  return i < std::size(state_names) ? state_names[i] : "?";
}

const char* to_string(ScrubState state) {
  switch (state) {
    case ScrubState::idle: return "idle";
    case ScrubState::running: return "running";
    case ScrubState::paused: return "paused";
  }
  return "?";
}

const char* to_string(EventKind kind) {
  switch (kind) {
    case EventKind::healed_mismatch: return "healed-checksum-mismatch";
    case EventKind::healed_read_error: return "healed-read-error";
    case EventKind::unrecoverable: return "unrecoverable";
    case EventKind::scrub_mismatch: return "scrub-mismatch";
    case EventKind::leg_failed: return "leg-failed";
    case EventKind::leg_removed: return "leg-removed";
    case EventKind::leg_added: return "leg-added";
    case EventKind::rebuild_done: return "rebuild-done";
  }
  return "?";
}

// ---- superblock -------------------------------------------------------------

namespace {

void put_sync(ByteWriter& w, const SyncRecord& s) {
  w.le64(static_cast<uint64_t>(s.time_ns));
  w.le32(s.slot);
  w.le64(s.regions);
  w.le64(s.bytes_read);
  w.le64(s.bytes_written);
  w.le64(s.bytes_zeroed);
  w.le64(s.milliseconds);
}

SyncRecord get_sync(ByteReader& r) {
  SyncRecord s;
  s.time_ns = static_cast<int64_t>(r.le64());
  s.slot = r.le32();
  s.regions = r.le64();
  s.bytes_read = r.le64();
  s.bytes_written = r.le64();
  s.bytes_zeroed = r.le64();
  s.milliseconds = r.le64();
  return s;
}

}  // namespace

std::vector<uint8_t> encode_superblock(const Superblock& sb) {
  for (const SlotRecord& s : sb.slots)
    if (s.path.size() > 0xffff) fail(ErrorCategory::usage, "mirror: leg path {} is too long to record", s.path);
  ByteWriter w;
  w.bytes(sb.array_uuid);
  w.le32(sb.slot);
  w.le64(sb.event);
  w.le64(static_cast<uint64_t>(sb.created_ns));
  w.le64(static_cast<uint64_t>(sb.updated_ns));
  w.le64(sb.geometry.data_size);
  w.le64(sb.geometry.block_size);
  w.le64(sb.geometry.region_size);
  w.u8(static_cast<uint8_t>(sb.geometry.checksum));
  w.le64(sb.layout.table_offset);
  w.le64(sb.layout.table_bytes);
  w.le64(sb.layout.bitmap_offset);
  w.le64(sb.layout.bitmap_bytes);
  w.le64(sb.layout.superblock_offset);
  w.le64(sb.layout.leg_size);
  w.le64(sb.unrecoverable);
  w.u8(static_cast<uint8_t>(sb.slots.size()));
  for (const SlotRecord& s : sb.slots) {
    w.bytes(s.uuid);
    w.u8(static_cast<uint8_t>(s.state));
    w.le64(s.rebuild_cursor);
    w.le32(static_cast<uint32_t>(s.replaces));
    w.le64(s.healed);
    w.le64(s.read_errors);
    w.le64(s.write_errors);
    w.le16(static_cast<uint16_t>(s.path.size()));
    w.string(s.path);
  }
  w.u8(static_cast<uint8_t>(sb.scrub.state));
  w.le64(sb.scrub.cursor);
  w.le64(static_cast<uint64_t>(sb.scrub.started_ns));
  w.le64(static_cast<uint64_t>(sb.scrub.finished_ns));
  w.le64(sb.scrub.checked);
  w.le64(sb.scrub.healed);
  w.le64(sb.scrub.unrecoverable);
  w.le64(sb.scrub.mismatches);
  put_sync(w, sb.last_resync);
  put_sync(w, sb.last_rebuild);
  size_t first = sb.events.size() > kMaxEvents ? sb.events.size() - kMaxEvents : 0;
  w.u8(static_cast<uint8_t>(sb.events.size() - first));
  for (size_t i = first; i < sb.events.size(); ++i) {
    w.le64(static_cast<uint64_t>(sb.events[i].time_ns));
    w.le32(sb.events[i].slot);
    w.u8(static_cast<uint8_t>(sb.events[i].kind));
    w.le64(sb.events[i].block);
  }
  std::vector<uint8_t> record = seal_record(kSuperblockMagic, {kSuperblockMajor, kSuperblockMinor}, w.buffer());
  if (record.size() > kSuperblockSlot)
    fail(ErrorCategory::usage, "mirror: the leg paths are too long to record in the {}-byte superblock",
         kSuperblockSlot);
  record.resize(kSuperblockSlot, 0);
  return record;
}

Superblock decode_superblock(std::span<const uint8_t> slot, const std::string& what) {
  OpenedRecord rec = open_record(slot, kSuperblockMagic, kSuperblockMajor, what);
  ByteReader r(rec.payload, what);
  Superblock sb;
  std::memcpy(sb.array_uuid.data(), r.bytes(16).data(), 16);
  sb.slot = r.le32();
  sb.event = r.le64();
  sb.created_ns = static_cast<int64_t>(r.le64());
  sb.updated_ns = static_cast<int64_t>(r.le64());
  sb.geometry.data_size = r.le64();
  sb.geometry.block_size = r.le64();
  sb.geometry.region_size = r.le64();
  sb.geometry.checksum = static_cast<ChecksumKind>(r.u8());
  try {
    validate(sb.geometry);
  } catch (const Error& e) {
    fail(ErrorCategory::corrupt, "{}: {}", what, e.what());
  }
  sb.layout.table_offset = r.le64();
  sb.layout.table_bytes = r.le64();
  sb.layout.bitmap_offset = r.le64();
  sb.layout.bitmap_bytes = r.le64();
  sb.layout.superblock_offset = r.le64();
  sb.layout.leg_size = r.le64();
  if (!layout_consistent(sb.geometry, sb.layout))
    fail(ErrorCategory::corrupt, "{}: the metadata layout it records does not fit the leg", what);
  sb.unrecoverable = r.le64();
  size_t n = r.u8();
  if (n == 0 || n > kMaxLegs) fail(ErrorCategory::corrupt, "{}: {} legs recorded (1 to {} allowed)", what, n, kMaxLegs);
  for (size_t i = 0; i < n; ++i) {
    SlotRecord s;
    std::memcpy(s.uuid.data(), r.bytes(16).data(), 16);
    uint8_t state = r.u8();
    if (state > static_cast<uint8_t>(LegState::failed)) fail(ErrorCategory::corrupt, "{}: leg {} has state {}", what, i, state);
    s.state = static_cast<LegState>(state);
    s.rebuild_cursor = r.le64();
    s.replaces = static_cast<int32_t>(r.le32());
    s.healed = r.le64();
    s.read_errors = r.le64();
    s.write_errors = r.le64();
    s.path = r.string(r.le16());
    if (s.rebuild_cursor > sb.geometry.data_size || s.replaces < -1 || s.replaces >= static_cast<int32_t>(n))
      fail(ErrorCategory::corrupt, "{}: leg {} has an impossible rebuild position or replacement", what, i);
    sb.slots.push_back(std::move(s));
  }
  if (sb.slot >= n || sb.slots[sb.slot].state == LegState::empty)
    fail(ErrorCategory::corrupt, "{}: it names slot {}, which is not a leg", what, sb.slot);
  uint8_t scrub = r.u8();
  if (scrub > static_cast<uint8_t>(ScrubState::paused)) fail(ErrorCategory::corrupt, "{}: scrub state {}", what, scrub);
  sb.scrub.state = static_cast<ScrubState>(scrub);
  sb.scrub.cursor = r.le64();
  sb.scrub.started_ns = static_cast<int64_t>(r.le64());
  sb.scrub.finished_ns = static_cast<int64_t>(r.le64());
  sb.scrub.checked = r.le64();
  sb.scrub.healed = r.le64();
  sb.scrub.unrecoverable = r.le64();
  sb.scrub.mismatches = r.le64();
  if (sb.scrub.cursor > sb.geometry.data_size) fail(ErrorCategory::corrupt, "{}: scrub position beyond the disk", what);
  sb.last_resync = get_sync(r);
  sb.last_rebuild = get_sync(r);
  size_t events = r.u8();
  if (events > kMaxEvents) fail(ErrorCategory::corrupt, "{}: {} events recorded (at most {})", what, events, kMaxEvents);
  for (size_t i = 0; i < events; ++i) {
    EventRecord e;
    e.time_ns = static_cast<int64_t>(r.le64());
    e.slot = r.le32();
    uint8_t kind = r.u8();
    if (kind < 1 || kind > static_cast<uint8_t>(EventKind::rebuild_done))
      fail(ErrorCategory::corrupt, "{}: event of unknown kind {}", what, kind);
    e.kind = static_cast<EventKind>(kind);
    e.block = r.le64();
    sb.events.push_back(e);
  }
  return sb;
}

// ---- bitmap pages -----------------------------------------------------------

namespace {
uint32_t page_crc(const Uuid& array, std::span<const uint8_t> page) {
  return crc32c(crc32c(0, array.data(), array.size()), page.data() + 4, page.size() - 4);
}
}  // namespace

std::vector<uint8_t> encode_bitmap_page(const Uuid& array, uint64_t page, uint64_t cleared_event,
                                        std::span<const uint8_t> bits) {
  std::vector<uint8_t> out(kBitmapPage, 0);
  store_le32(out.data() + 4, static_cast<uint32_t>(page));
  store_le64(out.data() + 8, cleared_event);
  std::memcpy(out.data() + kBitmapHeader, bits.data(), std::min<size_t>(bits.size(), kBitmapPage - kBitmapHeader));
  store_le32(out.data(), page_crc(array, out));
  return out;
}

bool decode_bitmap_page(const Uuid& array, uint64_t page, std::span<const uint8_t> raw, std::span<uint8_t> bits_out,
                        uint64_t& cleared_event) {
  if (raw.size() != kBitmapPage || load_le32(raw.data()) != page_crc(array, raw) ||
      load_le32(raw.data() + 4) != static_cast<uint32_t>(page))
    return false;
  cleared_event = load_le64(raw.data() + 8);
  std::memcpy(bits_out.data(), raw.data() + kBitmapHeader, std::min<size_t>(bits_out.size(), kBitmapPage - kBitmapHeader));
  return true;
}

std::string uuid_text(const Uuid& id) { return foreign::uuid_string(id); }

}  // namespace arche::image::mirror
