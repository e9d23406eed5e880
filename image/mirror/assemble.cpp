#include "image/mirror/assemble.h"

#include <sys/stat.h>

#include <algorithm>
#include <boost/filesystem.hpp>
#include <chrono>
#include <optional>

#include "core/clock.h"
#include "core/endian.h"
#include "core/error.h"
#include "core/file.h"
#include "core/interrupt.h"
#include "core/log.h"
#include "core/units.h"
#include "image/format.h"

namespace arche::image::mirror {

namespace {

constexpr std::string_view kPrefix = "mirror:";

std::string absolute(const std::string& path) {
  boost::system::error_code ec;
  boost::filesystem::path p = boost::filesystem::canonical(path, ec);
  return ec ? boost::filesystem::absolute(path).lexically_normal().string() : p.string();
}

OpenOptions leg_open_options(const MirrorOptions& m) {
  OpenOptions o;
  o.writable = m.writable;
  o.force_share = m.force_share;
  o.no_barriers = m.no_barriers;
  return o;
}

// One leg as found: opened (or why not) and its superblock (or why not).
struct Candidate {
  std::string path;
  std::unique_ptr<BlockDevice> dev;
  std::optional<Superblock> sb;
  std::string problem;
  ErrorCategory problem_category = ErrorCategory::format;
  bool named = false;
};

Candidate find_leg(const std::string& path, const MirrorOptions& options, bool named) {
  Candidate c;
  c.path = absolute(path);
  c.named = named;
  try {
    c.dev = open_image(path, leg_open_options(options));
    if (options.wrap_leg) c.dev = options.wrap_leg(std::move(c.dev));
    if (c.dev->backing())
      fail(ErrorCategory::usage, "{}: a mirror leg must not have a backing file (its data would live outside the mirror)",
           path);
    c.sb = read_superblock(*c.dev, path);
  } catch (const Error& e) {
    // In use elsewhere, not allowed, too new, misused: a real error. A leg that is
    // gone or damaged is what a mirror is for: the array runs without it.
    switch (e.category()) {
      case ErrorCategory::busy:
      case ErrorCategory::permission:
      case ErrorCategory::unsupported:
      case ErrorCategory::usage:
      case ErrorCategory::internal:
      case ErrorCategory::interrupted: throw;
      default: break;
    }
    c.problem = e.what();
    c.problem_category = e.category();
    c.sb.reset();
  }
  return c;
}

bool same_file(const std::string& a, const std::string& b) {
  struct stat sa {}, sb {};
  return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

const Candidate* newest_of(const std::vector<Candidate>& all) {
  const Candidate* best = nullptr;
  for (const Candidate& c : all)
    if (c.sb && (!best || c.sb->event > best->sb->event)) best = &c;
  return best;
}

// Each of two legs says the other failed: both were used alone, and nothing tells
// which one holds the data the owner wants.
void refuse_split_brain(const std::vector<Candidate>& all, const Candidate& newest) {
  const Superblock& n = *newest.sb;
  for (const Candidate& c : all) {
    if (!c.sb || &c == &newest) continue;
    const Superblock& x = *c.sb;
    if (n.slot >= x.slots.size() || x.slots[n.slot].uuid != n.leg_uuid() || x.slot >= n.slots.size() ||
        n.slots[x.slot].uuid != x.leg_uuid())
      continue;
    if (x.slots[n.slot].state == LegState::failed && n.slots[x.slot].state == LegState::failed &&
        x.slots[x.slot].state == LegState::active)
      fail(ErrorCategory::corrupt,
           "{} and {} were each used without the other ({} at event {} says {} failed; {} at event {} says {} failed): "
           "arche will not guess which holds the right data. Keep one with `arche raid assemble KEEP`, then add the "
           "other back with `arche raid add KEEP OTHER OTHER`",
           newest.path, c.path, newest.path, n.event, c.path, c.path, x.event, newest.path);
  }
}

}  // namespace

// ---- names ------------------------------------------------------------------

bool is_mirror_name(const std::string& name) { return name.rfind(kPrefix, 0) == 0; }

std::vector<std::string> parse_mirror_name(const std::string& name) {
  if (!is_mirror_name(name)) fail(ErrorCategory::usage, "'{}' is not a mirror name (mirror:A+B)", name);
  std::vector<std::string> legs;
  const std::string rest = name.substr(kPrefix.size());
  size_t pos = 0;
  while (pos <= rest.size()) {
    size_t plus = rest.find('+', pos);
    std::string leg = rest.substr(pos, plus == std::string::npos ? std::string::npos : plus - pos);
    if (leg.empty()) fail(ErrorCategory::usage, "'{}': empty leg name (expected mirror:A+B[+C])", name);
    legs.push_back(std::move(leg));
    if (plus == std::string::npos) break;
    pos = plus + 1;
  }
  if (legs.size() > kMaxLegs) fail(ErrorCategory::usage, "'{}': at most {} legs", name, kMaxLegs);
  return legs;
}

std::string mirror_name(const std::vector<std::string>& legs) {
  std::string out(kPrefix);
  for (size_t i = 0; i < legs.size(); ++i) out += (i ? "+" : "") + legs[i];
  return out;
}

std::vector<std::string> legs_named_by(const std::string& name) {
  return is_mirror_name(name) ? parse_mirror_name(name) : std::vector<std::string>{name};
}

std::string resolve_mirror_name(const std::string& dir, const std::string& name) {
  std::vector<std::string> legs = parse_mirror_name(name);
  for (std::string& leg : legs)
    if (!dir.empty() && !boost::filesystem::path(leg).is_absolute()) leg = (boost::filesystem::path(dir) / leg).string();
  return mirror_name(legs);
}

// ---- superblocks on a leg ---------------------------------------------------

Superblock read_superblock(BlockDevice& leg, const std::string& what) {
  const uint64_t size = leg.size();
  if (size < kSuperblockArea)
    fail(ErrorCategory::format, "{}: {} bytes, too small to be a mirror leg", what, size);
  std::vector<uint8_t> area(kSuperblockArea);
  leg.read(size - kSuperblockArea, area);
  std::optional<Superblock> best;
  std::string problems;
  for (int copy = 0; copy < 2; ++copy) {
    try {
      Superblock sb = decode_superblock(std::span(area).subspan(copy * kSuperblockSlot, kSuperblockSlot),
                                        fmt::format("{}: superblock copy {}", what, copy));
      if (sb.layout.leg_size != size)
        fail(ErrorCategory::corrupt, "{}: superblock copy {} is for a leg of {} bytes, this one holds {}", what, copy,
             sb.layout.leg_size, size);
      if (!best || sb.event > best->event) best = std::move(sb);
    } catch (const Error& e) {
      if (e.category() == ErrorCategory::unsupported) throw;
      problems += fmt::format("{}{}", problems.empty() ? "" : "; ", e.what());
    }
  }
  if (best) return *best;
  // A leg that was cut short or grown lost the metadata at its end: say so.
  const bool blank = std::all_of(area.begin(), area.end(), [](uint8_t b) { return b == 0; });
  fail(ErrorCategory::format,
       "{}: no mirror superblock in its last 16 KiB ({}). Not a leg of an arche mirror, or one that was truncated or "
       "resized: the metadata sits at the end of a leg",
       what, blank ? "it reads as zeros" : problems);
}

// ---- assembly ---------------------------------------------------------------

std::unique_ptr<MirrorDevice> open_mirror(const std::vector<std::string>& names, const MirrorOptions& options) {
  if (names.empty()) fail(ErrorCategory::usage, "mirror: no legs named");
  std::vector<Candidate> found;
  for (const std::string& name : names) {
    for (const Candidate& c : found)
      if (c.path == absolute(name) || same_file(c.path, name))
        fail(ErrorCategory::usage, "mirror: {} is named twice", name);
    found.push_back(find_leg(name, options, true));
  }
  const Candidate* newest = newest_of(found);
  if (!newest) {
    std::string all;
    bool all_missing = true;
    for (const Candidate& c : found) {
      all += fmt::format("{}{}", all.empty() ? "" : "; ", c.problem);
      all_missing = all_missing && c.problem_category == ErrorCategory::not_found;
    }
    fail(all_missing ? ErrorCategory::not_found : ErrorCategory::format, "no usable mirror leg: {}", all);
  }
  const Uuid array = newest->sb->array_uuid;
  for (const Candidate& c : found)
    if (c.sb && c.sb->array_uuid != array)
      fail(ErrorCategory::usage, "{} and {} are legs of different mirrors ({} and {})", newest->path, c.path,
           uuid_text(array), uuid_text(c.sb->array_uuid));

  // The legs the newest superblock records and nobody named, from their paths; a
  // leg found there may hold a newer superblock, whose legs are looked up in turn.
  for (bool more = !options.exact_legs; more;) {
    more = false;
    // Copied before `found` grows: its push_back moves the candidates `newest` points into.
    const std::vector<SlotRecord> slots = newest->sb->slots;
    const auto newest_event = newest->sb->event;
    for (const SlotRecord& s : slots) {
      if (s.state == LegState::empty || s.path.empty()) continue;
      bool have = std::any_of(found.begin(), found.end(), [&](const Candidate& c) {
        return (c.sb && c.sb->leg_uuid() == s.uuid) || c.path == s.path;
      });
      if (have) continue;
      Candidate c = find_leg(s.path, options, false);
      if (c.sb && c.sb->array_uuid != array) {
        c.problem = fmt::format("{} now holds another mirror ({})", s.path, uuid_text(c.sb->array_uuid));
        c.sb.reset();
        c.dev.reset();
      }
      found.push_back(std::move(c));
    }
    const Candidate* now = newest_of(found);
    more = now->sb->event != newest_event;
    newest = now;
  }
  refuse_split_brain(found, *newest);

  Assembly a;
  a.newest = *newest->sb;
  const uint64_t event = a.newest.event;
  a.legs.resize(a.newest.slots.size());
  std::vector<bool> used(found.size(), false);
  for (uint32_t slot = 0; slot < a.newest.slots.size(); ++slot) {
    const SlotRecord& rec = a.newest.slots[slot];
    if (rec.state == LegState::empty) continue;
    auto leg = std::make_unique<Leg>();
    leg->slot = slot;
    leg->uuid = rec.uuid;
    leg->path = rec.path;
    leg->rebuild_cursor = rec.rebuild_cursor;
    leg->replaces = rec.replaces;
    leg->healed = rec.healed;
    leg->read_errors = rec.read_errors;
    leg->write_errors = rec.write_errors;
    leg->state = LegState::failed;
    Candidate* match = nullptr;
    for (size_t i = 0; i < found.size(); ++i)
      if (found[i].sb && found[i].sb->slot == slot && found[i].sb->leg_uuid() == rec.uuid) {
        match = &found[i];
        used[i] = true;
      }
    if (!match) {
      // Named or recorded, it could not be opened or holds no superblock of ours.
      const Candidate* seen = nullptr;
      for (const Candidate& c : found)
        if (!c.sb && c.path == rec.path) seen = &c;
      if (rec.state != LegState::failed) {
        const std::string why =
            seen                 ? seen->problem
            : options.exact_legs ? "not among the legs named"
            : rec.path.empty()   ? "no path recorded"
                                 : "its file holds another leg of this mirror";
        leg->note = "missing: " + why;
        warn("mirror leg {} ({}) is missing: {}", slot, rec.path, why);
      }
      // Left out on purpose (raid assemble): the slot gets a new identity, so the
      // leg's own superblock no longer matches it — it can come back only through a
      // rebuild, and two legs used apart stop contradicting each other.
      if (options.exact_legs && options.writable) leg->uuid = foreign::random_uuid();
    } else if (rec.state == LegState::failed) {
      leg->path = match->path;
    } else {
      // A leg whose superblock is older than the array's is "behind": the device
      // decides from the bitmap whether a resync of the dirty regions brings it up
      // to date, or whether it is stale (mirror_device.cpp).
      leg->own_event = match->sb->event;
      leg->behind = match->sb->event != event;
      leg->dev = std::move(match->dev);
      leg->path = match->path;
      leg->layout = match->sb->layout;
      leg->state = rec.state;
    }
    a.legs[slot] = std::move(leg);
  }
  for (size_t i = 0; i < found.size(); ++i) {
    if (found[i].sb && !used[i])
      warn("{} is no longer a leg of this mirror (it was removed): not used", found[i].path);
    else if (!found[i].sb && found[i].named &&
             std::none_of(a.newest.slots.begin(), a.newest.slots.end(),
                          [&](const SlotRecord& s) { return s.path == found[i].path; }))
      warn("{}", found[i].problem);  // named, but not where any leg was recorded
  }
  if (std::none_of(a.legs.begin(), a.legs.end(), [](const auto& l) { return l && l->in_sync(); })) {
    // (a leg behind is never the only source)
    std::string why;
    for (const auto& l : a.legs)
      if (l) why += fmt::format("{}{}: {}", why.empty() ? "" : "; ", l->path, l->note.empty() ? to_string(l->state.load()) : l->note);
    fail(ErrorCategory::io, "mirror {}: no leg in sync is available ({})", uuid_text(array), why);
  }
  return std::make_unique<MirrorDevice>(std::move(a), options);
}

// ---- creation ---------------------------------------------------------------

std::unique_ptr<MirrorDevice> create_mirror(const std::vector<std::string>& paths, const CreateMirrorOptions& create,
                                            const MirrorOptions& open, Progress* progress) {
  if (paths.size() < 2 || paths.size() > kMaxLegs)
    fail(ErrorCategory::usage, "raid create: give 2 to {} legs (got {})", kMaxLegs, paths.size());
  for (size_t i = 0; i < paths.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (absolute(paths[i]) == absolute(paths[j]) || same_file(paths[i], paths[j]))
        fail(ErrorCategory::usage, "raid create: {} is named twice", paths[i]);

  Geometry g;
  g.block_size = create.block_size;
  g.region_size = create.region_size;
  g.checksum = create.checksum;
  OpenOptions o;
  o.writable = true;
  o.no_barriers = open.no_barriers;

  // Existing legs are opened as they are; the others are made below.
  std::vector<std::unique_ptr<BlockDevice>> devs(paths.size());
  for (size_t i = 0; i < paths.size(); ++i) {
    boost::system::error_code ec;
    if (boost::filesystem::exists(paths[i], ec)) {
      devs[i] = open_image(paths[i], o);
      if (devs[i]->backing())
        fail(ErrorCategory::usage, "{}: a mirror leg must not have a backing file (its data would live outside the mirror)",
             paths[i]);
    }
  }
  g.data_size = create.size;
  if (g.data_size == 0) {
    for (const auto& d : devs)
      if (d) g.data_size = g.data_size ? std::min(g.data_size, max_data_size(d->size(), g)) : max_data_size(d->size(), g);
    if (g.data_size == 0) fail(ErrorCategory::usage, "raid create: give --size (no leg exists yet to take it from)");
    g.data_size = align_down(g.data_size, g.block_size);
  }
  validate(g);
  const uint64_t needed = min_leg_size(g);
  for (size_t i = 0; i < paths.size(); ++i) {
    if (!devs[i]) continue;
    if (devs[i]->size() < needed)
      fail(ErrorCategory::usage, "{} holds {} bytes; a mirror of {} needs {} per leg", paths[i], devs[i]->size(),
           format_size(g.data_size), needed);
    // The first leg's content is the array's, up to the size; beyond it go the
    // metadata. Every other leg is overwritten.
    const uint64_t from = i == 0 ? g.data_size : 0;
    if (create.overwrite || devs[i]->known_zero(from, devs[i]->size() - from)) continue;
    if (i == 0)
      fail(ErrorCategory::exists,
           "{} holds data beyond {} bytes, where the mirror keeps its metadata (grow it first with arche image resize, "
           "or pass --overwrite)",
           paths[i], g.data_size);
    fail(ErrorCategory::exists, "{} holds data that the mirror would overwrite with the first leg's (pass --overwrite)",
         paths[i]);
  }
  // New legs: raw files, built under temporary names until their superblocks are in.
  std::vector<std::unique_ptr<PendingFile>> pending;
  for (size_t i = 0; i < paths.size(); ++i) {
    if (devs[i]) continue;
    pending.push_back(std::make_unique<PendingFile>(paths[i], false));
    CreateOptions c;
    c.format = "raw";
    c.size = needed;
    driver_for("raw").create(pending.back()->temp_path(), c);
    OpenOptions ro = o;
    ro.format = "raw";
    devs[i] = open_image(pending.back()->temp_path(), ro);
  }

  Superblock sb;
  sb.array_uuid = foreign::random_uuid();
  sb.created_ns = unix_time_ns();
  sb.geometry = g;
  const bool first_has_data = !devs[0]->known_zero(0, g.data_size);
  std::vector<LegLayout> layouts;
  for (size_t i = 0; i < paths.size(); ++i) {
    layouts.push_back(layout_for(g, devs[i]->size()));
    SlotRecord r;
    r.uuid = foreign::random_uuid();
    r.path = absolute(paths[i]);
    const bool equal_already = !first_has_data && devs[i]->known_zero(0, g.data_size);
    r.state = i == 0 || equal_already ? LegState::active : LegState::rebuilding;
    sb.slots.push_back(std::move(r));
    // The metadata area starts clean: no old superblock, an empty table and bitmap.
    const LegLayout& l = layouts.back();
    devs[i]->write_zeroes(l.table_offset, l.leg_size - l.table_offset, true);
    std::vector<uint8_t> zeros(kBitmapPage - kBitmapHeader, 0);
    for (uint64_t p = 0; p < l.bitmap_bytes / kBitmapPage; ++p)
      devs[i]->write(l.bitmap_offset + p * kBitmapPage, encode_bitmap_page(sb.array_uuid, p, 0, zeros));
  }
  if (first_has_data && g.checksum != ChecksumKind::none) {
    // The checksums of what the first leg holds (the others get them by the rebuild).
    Progress scan("checksums", g.data_size, progress != nullptr && Progress::stderr_is_terminal());
    std::vector<uint8_t> buf;
    for (const Extent& e : devs[0]->map(0, g.data_size)) {
      if (e.kind != ExtentKind::data) continue;
      const uint64_t first = align_down(e.offset, g.block_size), stop = align_up(e.offset + e.length, g.block_size);
      for (uint64_t pos = first; pos < stop; pos += 1 * MiB) {
        interrupt::check();
        const uint64_t n = std::min<uint64_t>(1 * MiB, stop - pos);
        buf.resize(n);
        devs[0]->read(pos, buf);
        std::vector<uint8_t> raw(n / g.block_size * kTableEntry);
        for (uint64_t b = 0; b < n / g.block_size; ++b)
          store_le32(raw.data() + b * kTableEntry,
                     block_checksum(g.checksum, std::span(buf.data() + b * g.block_size, g.block_size)));
        devs[0]->write(layouts[0].table_offset + pos / g.block_size * kTableEntry, raw);
        scan.add(n);
      }
    }
    scan.finish();
  }
  // Both copies of the superblock, then a barrier: the array exists from here on.
  for (size_t i = 0; i < paths.size(); ++i) {
    Superblock leg_sb = sb;
    leg_sb.slot = static_cast<uint32_t>(i);
    leg_sb.layout = layouts[i];
    for (uint64_t event = 0; event < 2; ++event) {
      leg_sb.event = event;
      leg_sb.updated_ns = unix_time_ns();
      devs[i]->write(layouts[i].superblock_offset + event * kSuperblockSlot, encode_superblock(leg_sb));
    }
    if (!open.no_barriers) devs[i]->flush();
  }
  devs.clear();
  for (auto& p : pending) p->commit(/*durable=*/!open.no_barriers);

  MirrorOptions mo = open;
  mo.writable = true;
  std::unique_ptr<MirrorDevice> mirror = open_mirror(paths, mo);
  mirror->rebuild(progress);  // only when the first leg holds data
  return mirror;
}

}  // namespace arche::image::mirror
