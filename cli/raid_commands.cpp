// `arche raid ...`: RAID-1 mirrors of disk images (image/mirror/, docs/raid.md).
// A is any leg's path (or mirror:A+B); LEG is a leg's path or slot number. These
// commands work on arrays that no VM has open; a running VM's array is changed
// through its control socket, which calls the same MirrorDevice methods.
#include <fmt/format.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/command.h"
#include "core/error.h"
#include "core/progress.h"
#include "core/units.h"
#include "image/mirror/assemble.h"
#include "image/mirror/status.h"

namespace arche::cli {

namespace {

using image::mirror::MirrorDevice;
using image::mirror::MirrorOptions;
using image::mirror::MirrorStatus;

std::vector<std::string> legs_of(const std::string& array) {
  return image::mirror::is_mirror_name(array) ? image::mirror::parse_mirror_name(array)
                                              : std::vector<std::string>{array};
}

std::unique_ptr<MirrorDevice> open_array(const std::string& array, bool writable, bool exact = false) {
  MirrorOptions o;
  o.writable = writable;
  o.force_share = !writable;  // status only reads the metadata; it may look at an array in use
  o.exact_legs = exact;
  return image::mirror::open_mirror(legs_of(array), o);
}

std::string percent(uint64_t part, uint64_t whole) {
  return whole ? fmt::format("{:.0f}%", 100.0 * static_cast<double>(part) / static_cast<double>(whole)) : "-";
}

void print_status(const MirrorStatus& s) {
  using image::mirror::to_string;
  std::string out = fmt::format("{}\n  uuid: {}\n  state: {}\n  size: {} ({} bytes); {} checksums per {}, {} regions\n",
                                s.name, s.uuid, s.state, format_size(s.geometry.data_size), s.geometry.data_size,
                                to_string(s.geometry.checksum), format_size(s.geometry.block_size),
                                format_size(s.geometry.region_size));
  out += fmt::format("  event: {}; dirty regions: {}; healed blocks: {}; unrecoverable blocks: {}\n  legs:\n", s.event,
                     s.dirty_regions, s.healed, s.unrecoverable);
  for (const auto& l : s.legs) {
    std::string state = to_string(l.state);
    if (l.state == image::mirror::LegState::rebuilding)
      state += fmt::format(" {}", percent(l.rebuild_cursor, s.geometry.data_size));
    out += fmt::format("    {}  {:<14} {}  (healed {}, read errors {}, write errors {}){}{}\n", l.slot, state, l.path,
                       l.healed, l.read_errors, l.write_errors, l.replaces >= 0 ? fmt::format(", replaces {}", l.replaces) : "",
                       l.note.empty() ? "" : "\n       " + l.note);
  }
  const auto& sc = s.scrub;
  out += fmt::format("  scrub: {}", to_string(sc.state));
  if (sc.state != image::mirror::ScrubState::idle) out += fmt::format(" at {}", percent(sc.cursor, s.geometry.data_size));
  if (sc.started_ns)
    out += fmt::format(" (started {}{}; {} blocks checked, {} healed, {} unrecoverable, {} mismatches)",
                       image::mirror::rfc3339(sc.started_ns),
                       sc.finished_ns ? ", finished " + image::mirror::rfc3339(sc.finished_ns) : "", sc.checked,
                       sc.healed, sc.unrecoverable, sc.mismatches);
  out += "\n";
  if (s.last_resync.time_ns)
    out += fmt::format("  last resync: {}: {} regions, {} read, {} rewritten\n", image::mirror::rfc3339(s.last_resync.time_ns),
                       s.last_resync.regions, format_size(s.last_resync.bytes_read),
                       format_size(s.last_resync.bytes_written));
  if (s.last_rebuild.time_ns)
    out += fmt::format("  last rebuild: {}: leg {}, {} copied, {} zeroed, {:.1f} s\n",
                       image::mirror::rfc3339(s.last_rebuild.time_ns), s.last_rebuild.slot,
                       format_size(s.last_rebuild.bytes_written), format_size(s.last_rebuild.bytes_zeroed),
                       static_cast<double>(s.last_rebuild.milliseconds) / 1000.0);
  if (!s.events.empty()) {
    out += "  events:\n";
    for (const auto& e : s.events) {
      out += fmt::format("    {}  {}  leg {}", image::mirror::rfc3339(e.time_ns), to_string(e.kind), e.slot);
      if (e.kind == image::mirror::EventKind::healed_mismatch || e.kind == image::mirror::EventKind::healed_read_error ||
          e.kind == image::mirror::EventKind::unrecoverable || e.kind == image::mirror::EventKind::scrub_mismatch)
        out += fmt::format("  block {} (offset {})", e.block, e.block * s.geometry.block_size);
      out += "\n";
    }
  }
  std::fputs(out.c_str(), stdout);
}

void report(const Context& ctx, const MirrorDevice& mirror) {
  if (ctx.json) print_json(image::mirror::to_json(mirror.status()));
  else if (!ctx.quiet) print_status(mirror.status());
}

void run_rebuild(const Context& ctx, MirrorDevice& mirror) {
  Progress progress("rebuild", 0);
  image::mirror::SyncRecord r = mirror.rebuild(&progress);
  progress.finish();
  if (r.time_ns)
    say(ctx, fmt::format("rebuilt leg {}: {} copied, {} zeroed (regions without data), {:.1f} s", r.slot,
                         format_size(r.bytes_written), format_size(r.bytes_zeroed),
                         static_cast<double>(r.milliseconds) / 1000.0));
}

// ---- create -------------------------------------------------------------------

struct CreateArgs {
  std::vector<std::string> legs;
  std::string size, region_size, block_size, checksum = image::mirror::to_string(image::mirror::kDefaultChecksum);
  bool overwrite = false;
};

void add_create(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("create", "Create a mirror over two or more legs (new legs become raw files)");
  auto a = std::make_shared<CreateArgs>();
  cmd->add_option("legs", a->legs, "The legs: files (created when missing), images or block devices")->required();
  cmd->add_option("--size", a->size, "Size of the mirrored disk (default: what the smallest existing leg holds)");
  cmd->add_option("--region-size", a->region_size, "Bytes per write-intent bitmap bit (default 4M)");
  cmd->add_option("--block-size", a->block_size, "Bytes per checksum, 4K to 64K (default 4K)");
  cmd->add_option("--checksum", a->checksum, "Block checksum")
      ->check(CLI::IsMember({"crc32c", "xxh3", "none"}))
      ->capture_default_str();
  cmd->add_flag("--overwrite", a->overwrite, "Use existing legs that hold data (all but the first are overwritten)");
  add_json_flag(cmd, ctx);
  cmd->callback([&ctx, a] {
    image::mirror::CreateMirrorOptions o;
    if (!a->size.empty()) o.size = parse_size(a->size, "size");
    if (!a->region_size.empty()) o.region_size = parse_size(a->region_size, "region size");
    if (!a->block_size.empty()) o.block_size = parse_size(a->block_size, "block size");
    o.checksum = image::mirror::parse_checksum_kind(a->checksum);
    o.overwrite = a->overwrite;
    Progress progress("rebuild", 0);
    std::unique_ptr<MirrorDevice> mirror = image::mirror::create_mirror(a->legs, o, {}, &progress);
    progress.finish();
    if (ctx.json) {
      print_json(image::mirror::to_json(mirror->status()));
      return;
    }
    say(ctx, fmt::format("created {} ({}, {} legs, {} checksums)", mirror->filename(), format_size(mirror->size()),
                         a->legs.size(), a->checksum));
  });
}

// ---- status, assemble -------------------------------------------------------

void add_status(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("status", "Show a mirror's legs, their state, healed blocks, scrub and rebuilds");
  auto array = std::make_shared<std::string>();
  cmd->add_option("array", *array, "Any leg of the mirror (or mirror:A+B)")->required();
  add_json_flag(cmd, ctx);
  cmd->callback([&ctx, array] { report(ctx, *open_array(*array, false)); });
}

void add_assemble(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand(
      "assemble", "Use exactly these legs (after they moved, or to keep one of two that were used apart); finish pending rebuilds");
  auto legs = std::make_shared<std::vector<std::string>>();
  cmd->add_option("legs", *legs, "The legs to use")->required();
  add_json_flag(cmd, ctx);
  cmd->callback([&ctx, legs] {
    MirrorOptions o;
    o.writable = true;
    o.exact_legs = true;
    std::unique_ptr<MirrorDevice> mirror = image::mirror::open_mirror(*legs, o);
    run_rebuild(ctx, *mirror);
    report(ctx, *mirror);
  });
}

// ---- fail, remove, add, replace -----------------------------------------------

struct LegArgs {
  std::string array, leg, new_leg;
  bool overwrite = false;
};

void add_fail_remove(CLI::App& group, Context& ctx) {
  for (const char* name : {"fail", "remove"}) {
    const bool fail_it = std::string(name) == "fail";
    auto* cmd = group.add_subcommand(
        name, fail_it ? "Stop using a leg (the mirror runs degraded)" : "Take a failed or missing leg out of the mirror");
    auto a = std::make_shared<LegArgs>();
    cmd->add_option("array", a->array, "Any leg of the mirror (or mirror:A+B)")->required();
    cmd->add_option("leg", a->leg, "The leg: its path or slot number")->required();
    cmd->callback([&ctx, a, fail_it] {
      std::unique_ptr<MirrorDevice> mirror = open_array(a->array, true);
      if (fail_it) {
        mirror->fail_leg(a->leg);
        say(ctx, fmt::format("{}: leg {} failed", mirror->filename(), a->leg));
      } else {
        mirror->remove_leg(a->leg);
        say(ctx, fmt::format("{}: leg {} removed (it is a plain image now)", mirror->filename(), a->leg));
      }
    });
  }
}

void add_add_replace(CLI::App& group, Context& ctx) {
  for (const char* name : {"add", "replace"}) {
    const bool add = std::string(name) == "add";
    auto* cmd = group.add_subcommand(
        name, add ? "Put NEW into LEG's slot (failed, missing, removed, or the next number) and rebuild it"
                  : "Rebuild NEW beside LEG, then take LEG out");
    auto a = std::make_shared<LegArgs>();
    cmd->add_option("array", a->array, "Any leg of the mirror (or mirror:A+B)")->required();
    cmd->add_option("leg", a->leg, "The leg (path or slot number) whose place NEW takes")->required();
    cmd->add_option("new", a->new_leg, "The new leg: a file (created when missing), image or block device")->required();
    cmd->add_flag("--overwrite", a->overwrite, "Use a NEW that holds data or another mirror (it is overwritten)");
    cmd->callback([&ctx, a, add] {
      ctx.if_interrupted = fmt::format(
          "{} is a member being rebuilt; the rebuild keeps its position and `arche raid assemble` goes on from there",
          a->new_leg);
      std::unique_ptr<MirrorDevice> mirror = open_array(a->array, true);
      image::mirror::NewLegOptions o;
      o.overwrite = a->overwrite;
      if (add) mirror->add_leg(a->leg, a->new_leg, o);
      else mirror->replace_leg(a->leg, a->new_leg, o);
      run_rebuild(ctx, *mirror);
      say(ctx, fmt::format("{}: {} is in sync", mirror->filename(), a->new_leg));
    });
  }
}

// ---- scrub --------------------------------------------------------------------

void add_scrub(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("scrub", "Read and verify every block of every leg, healing bad copies");
  auto a = std::make_shared<LegArgs>();
  auto pause = std::make_shared<bool>(false), resume = std::make_shared<bool>(false);
  cmd->add_option("array", a->array, "Any leg of the mirror (or mirror:A+B)")->required();
  auto* p = cmd->add_flag("--pause", *pause, "Record a running scrub as paused (it keeps its position)");
  cmd->add_flag("--resume", *resume, "Continue a paused scrub from where it stopped")->excludes(p);
  add_json_flag(cmd, ctx);
  cmd->footer("Exit status: 0 every block has a good copy, 2 some block is bad on every leg. Ctrl-C pauses.");
  cmd->callback([&ctx, a, pause, resume] {
    std::unique_ptr<MirrorDevice> mirror = open_array(a->array, true);
    if (*pause) {
      mirror->pause_scrub();
      report(ctx, *mirror);
      return;
    }
    ctx.if_interrupted = "the scrub is paused where it was; `arche raid scrub --resume` goes on from there";
    Progress progress("scrub", 0);
    image::mirror::ScrubRecord r = mirror->scrub(*resume, &progress);
    progress.finish();
    ctx.exit_code = r.unrecoverable ? 2 : 0;
    if (ctx.json) {
      print_json(image::mirror::to_json(mirror->status()));
      return;
    }
    say(ctx, fmt::format("{}: scrub {}: {} blocks checked, {} healed, {} unrecoverable, {} mismatches", mirror->filename(),
                         r.state == image::mirror::ScrubState::idle ? "done" : "paused", r.checked, r.healed,
                         r.unrecoverable, r.mismatches));
  });
}

}  // namespace

void register_raid_commands(CLI::App& app, Context& ctx) {
  CLI::App* group = app.add_subcommand("raid", "RAID-1 mirrors: create, status, fail, remove, add, replace, scrub, assemble");
  group->require_subcommand(1);
  add_create(*group, ctx);
  add_status(*group, ctx);
  add_fail_remove(*group, ctx);
  add_add_replace(*group, ctx);
  add_scrub(*group, ctx);
  add_assemble(*group, ctx);
}

}  // namespace arche::cli
