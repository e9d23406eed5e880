// `arche raid ...`: RAID-1 mirrors of disk images (image/mirror/, docs/raid.md).
// A is any leg's path (or mirror:A+B); LEG is a leg's path or slot number. These
// commands work on arrays that no VM has open; a running VM's array is changed
// through its control socket, which calls the same MirrorDevice methods. This
// file parses the arguments and calls image/mirror/; what is printed is in
// cli/raid_output.cpp.
#include <fmt/format.h>

#include <memory>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/raid_output.h"
#include "core/progress.h"
#include "core/units.h"
#include "image/mirror/assemble.h"

namespace arche::cli {

namespace {

using image::mirror::MirrorDevice;
using image::mirror::MirrorOptions;
namespace out = raid_output;

std::unique_ptr<MirrorDevice> open_array(const std::string& array, bool writable) {
  MirrorOptions o;
  o.writable = writable;
  o.force_share = !writable;  // status only reads the metadata; it may look at an array in use
  return image::mirror::open_mirror(image::mirror::legs_named_by(array), o);
}

image::mirror::SyncRecord run_rebuild(MirrorDevice& mirror) {
  Progress progress("rebuild", 0);
  image::mirror::SyncRecord r = mirror.rebuild(&progress);
  progress.finish();
  return r;
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
    out::show_created(ctx, *mirror, a->legs.size(), a->checksum);
  });
}

// ---- status, assemble -------------------------------------------------------

void add_status(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("status", "Show a mirror's legs, their state, healed blocks, scrub and rebuilds");
  auto array = std::make_shared<std::string>();
  cmd->add_option("array", *array, "Any leg of the mirror (or mirror:A+B)")->required();
  add_json_flag(cmd, ctx);
  cmd->callback([&ctx, array] { out::show_status(ctx, *open_array(*array, false)); });
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
    out::show_rebuilt(ctx, run_rebuild(*mirror));
    out::show_status(ctx, *mirror);
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
        out::show_failed(ctx, *mirror, a->leg);
      } else {
        mirror->remove_leg(a->leg);
        out::show_removed(ctx, *mirror, a->leg);
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
      out::show_rebuilt(ctx, run_rebuild(*mirror));
      out::show_in_sync(ctx, *mirror, a->new_leg);
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
      out::show_status(ctx, *mirror);
      return;
    }
    ctx.if_interrupted = "the scrub is paused where it was; `arche raid scrub --resume` goes on from there";
    Progress progress("scrub", 0);
    image::mirror::ScrubRecord r = mirror->scrub(*resume, &progress);
    progress.finish();
    ctx.exit_code = r.unrecoverable ? 2 : 0;
    out::show_scrubbed(ctx, *mirror, r);
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
