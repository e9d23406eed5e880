#include "cli/raid_output.h"

#include <fmt/format.h>

#include <cstdio>

#include "core/json.h"
#include "core/units.h"
#include "image/mirror/status.h"

namespace arche::cli::raid_output {

using image::mirror::EventKind;
using image::mirror::LegState;
using image::mirror::MirrorDevice;
using image::mirror::MirrorStatus;
using image::mirror::rfc3339;  // nanoseconds, not core/json.h's seconds
using image::mirror::ScrubRecord;
using image::mirror::ScrubState;
using image::mirror::SyncRecord;
using image::mirror::to_json;
using image::mirror::to_string;

namespace {

std::string percent(uint64_t part, uint64_t whole) {
  return whole ? fmt::format("{:.0f}%", 100.0 * static_cast<double>(part) / static_cast<double>(whole)) : "-";
}

bool names_a_block(EventKind kind) {
  return kind == EventKind::healed_mismatch || kind == EventKind::healed_read_error ||
         kind == EventKind::unrecoverable || kind == EventKind::scrub_mismatch;
}

std::string leg_lines(const MirrorStatus& s) {
  std::string out;
  for (const auto& l : s.legs) {
    std::string state = to_string(l.state);
    if (l.state == LegState::rebuilding) state += fmt::format(" {}", percent(l.rebuild_cursor, s.geometry.data_size));
    out += fmt::format("    {}  {:<14} {}  (healed {}, read errors {}, write errors {}){}{}\n", l.slot, state, l.path,
                       l.healed, l.read_errors, l.write_errors,
                       l.replaces >= 0 ? fmt::format(", replaces {}", l.replaces) : "",
                       l.note.empty() ? "" : "\n       " + l.note);
  }
  return out;
}

std::string scrub_line(const MirrorStatus& s) {
  const auto& sc = s.scrub;
  std::string out = fmt::format("  scrub: {}", to_string(sc.state));
  if (sc.state != ScrubState::idle) out += fmt::format(" at {}", percent(sc.cursor, s.geometry.data_size));
  if (sc.started_ns)
    out += fmt::format(" (started {}{}; {} blocks checked, {} healed, {} unrecoverable, {} mismatches)",
                       rfc3339(sc.started_ns), sc.finished_ns ? ", finished " + rfc3339(sc.finished_ns) : "",
                       sc.checked, sc.healed, sc.unrecoverable, sc.mismatches);
  return out + "\n";
}

std::string sync_lines(const MirrorStatus& s) {
  std::string out;
  if (s.last_resync.time_ns)
    out += fmt::format("  last resync: {}: {} regions, {} read, {} rewritten\n", rfc3339(s.last_resync.time_ns),
                       s.last_resync.regions, format_size(s.last_resync.bytes_read),
                       format_size(s.last_resync.bytes_written));
  if (s.last_rebuild.time_ns)
    out += fmt::format("  last rebuild: {}: leg {}, {} copied, {} zeroed, {:.1f} s\n", rfc3339(s.last_rebuild.time_ns),
                       s.last_rebuild.slot, format_size(s.last_rebuild.bytes_written),
                       format_size(s.last_rebuild.bytes_zeroed),
                       static_cast<double>(s.last_rebuild.milliseconds) / 1000.0);
  return out;
}

std::string event_lines(const MirrorStatus& s) {
  if (s.events.empty()) return "";
  std::string out = "  events:\n";
  for (const auto& e : s.events) {
    out += fmt::format("    {}  {}  leg {}", rfc3339(e.time_ns), to_string(e.kind), e.slot);
    if (names_a_block(e.kind)) out += fmt::format("  block {} (offset {})", e.block, e.block * s.geometry.block_size);
    out += "\n";
  }
  return out;
}

void print_status(const MirrorStatus& s) {
  std::string out = fmt::format("{}\n  uuid: {}\n  state: {}\n  size: {} ({} bytes); {} checksums per {}, {} regions\n",
                                s.name, s.uuid, s.state, format_size(s.geometry.data_size), s.geometry.data_size,
                                to_string(s.geometry.checksum), format_size(s.geometry.block_size),
                                format_size(s.geometry.region_size));
  out += fmt::format("  event: {}; dirty regions: {}; healed blocks: {}; unrecoverable blocks: {}\n  legs:\n", s.event,
                     s.dirty_regions, s.healed, s.unrecoverable);
  out += leg_lines(s) + scrub_line(s) + sync_lines(s) + event_lines(s);
  std::fputs(out.c_str(), stdout);
}

}  // namespace

void show_status(const Context& ctx, const MirrorDevice& mirror) {
  if (ctx.json) print_json(to_json(mirror.status()));
  else if (!ctx.quiet) print_status(mirror.status());
}

void show_created(const Context& ctx, const MirrorDevice& mirror, size_t legs, const std::string& checksum) {
  if (ctx.json) {
    print_json(to_json(mirror.status()));
    return;
  }
  say(ctx, fmt::format("created {} ({}, {} legs, {} checksums)", mirror.filename(), format_size(mirror.size()), legs,
                       checksum));
}

void show_rebuilt(const Context& ctx, const SyncRecord& r) {
  if (r.time_ns)
    say(ctx, fmt::format("rebuilt leg {}: {} copied, {} zeroed (regions without data), {:.1f} s", r.slot,
                         format_size(r.bytes_written), format_size(r.bytes_zeroed),
                         static_cast<double>(r.milliseconds) / 1000.0));
}

void show_failed(const Context& ctx, const MirrorDevice& mirror, const std::string& leg) {
  say(ctx, fmt::format("{}: leg {} failed", mirror.filename(), leg));
}

void show_removed(const Context& ctx, const MirrorDevice& mirror, const std::string& leg) {
  say(ctx, fmt::format("{}: leg {} removed (it is a plain image now)", mirror.filename(), leg));
}

void show_in_sync(const Context& ctx, const MirrorDevice& mirror, const std::string& new_leg) {
  say(ctx, fmt::format("{}: {} is in sync", mirror.filename(), new_leg));
}

void show_scrubbed(const Context& ctx, const MirrorDevice& mirror, const ScrubRecord& r) {
  if (ctx.json) {
    print_json(to_json(mirror.status()));
    return;
  }
  say(ctx,
      fmt::format("{}: scrub {}: {} blocks checked, {} healed, {} unrecoverable, {} mismatches", mirror.filename(),
                  r.state == ScrubState::idle ? "done" : "paused", r.checked, r.healed, r.unrecoverable, r.mismatches));
}

}  // namespace arche::cli::raid_output
