#include "cli/tape_output.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <map>

#include "backup/snapshot.h"
#include "core/json.h"
#include "core/units.h"

namespace arche::cli::tape_output {

using namespace arche::tape;

namespace {

std::vector<std::string> tapes_of(const Catalog& c, const CatalogSnapshot& s) {
  // The tapes that hold the snapshot's objects, by sequence.
  std::map<uint32_t, std::string> tapes;
  const auto places = c.objects_of_set(s.media_set);
  auto note = [&](const std::string& name) {
    if (auto it = places.find(name); it != places.end()) tapes[it->second.tape->sequence] = it->second.tape->label;
  };
  note("snapshots/" + s.id);
  for (const std::string& p : s.packs) note("data/" + p.substr(0, 2) + "/" + p);
  std::vector<std::string> out;
  for (const auto& [seq, label] : tapes) out.push_back(label);
  return out;
}

Json read_json(const ReadReport& r) {
  Json damaged = Json::array();
  for (const DamagedRecord& d : r.damaged)
    damaged.push_back({{"tape", d.tape}, {"file", d.file}, {"record", d.record}, {"error", d.why}});
  return {
      {"tapes", r.tapes}, {"files", r.files_read}, {"records", r.records}, {"bytes", r.bytes}, {"damaged", damaged}};
}

}  // namespace

void show_labelled(const Context& ctx, const MediaLabel& l, const std::string& device) {
  if (ctx.json) {
    print_json(label_to_json(l));
    return;
  }
  say(ctx, fmt::format("labelled tape {} (pool {}, uuid {}) in {}", l.label, l.pool, uuid_text(l.tape), device));
}

void show_status(const Context& ctx, const TapeStatus& s) {
  if (ctx.json) {
    Json j = {{"device", s.device},
              {"cartridge", or_null(s.cartridge)},
              {"online", s.drive.online},
              {"write-protected", s.drive.write_protected},
              {"label", s.label ? label_to_json(*s.label) : Json(nullptr)},
              {"capacity", s.capacity ? Json(s.capacity->capacity) : Json(nullptr)},
              {"early-warning", s.capacity ? Json(s.capacity->early_warning) : Json(nullptr)},
              {"used", s.capacity ? Json(s.used) : Json(nullptr)},
              {"in-catalog", s.known != nullptr},
              {"files", s.known ? Json(s.known->files.size()) : Json(nullptr)},
              {"full", s.known ? Json(s.known->full) : Json(nullptr)}};
    print_json(j);
    return;
  }
  std::string out =
      fmt::format("{}{}: {}{}\n", s.device, s.cartridge.empty() ? "" : " (" + s.cartridge + ")",
                  s.drive.online ? "online" : "offline", s.drive.write_protected ? ", write-protected" : "");
  if (!s.label) out += "  blank tape (no arche label)\n";
  else {
    out += fmt::format("  label {}  pool {}  uuid {}\n", s.label->label, s.label->pool, uuid_text(s.label->tape));
    if (is_nil(s.label->media_set)) out += "  in no media set\n";
    else
      out += fmt::format("  media set {} tape {}  key fingerprint {}\n", uuid_text(s.label->media_set),
                         s.label->sequence, s.label->key_fingerprint);
  }
  if (s.capacity)
    out += fmt::format("  used {} of {} (early warning in the last {})\n", format_size(s.used),
                       format_size(s.capacity->capacity), format_size(s.capacity->early_warning));
  if (s.known)
    out += fmt::format("  catalog: {} archive file(s){}\n", s.known->files.size(), s.known->full ? ", full" : "");
  else if (s.label) out += "  not in the catalog (arche tape catalog rebuild reads it)\n";
  std::fputs(out.c_str(), stdout);
}

void show_backup(const Context& ctx, const TapeBackupReport& r) {
  if (ctx.json) {
    print_json({{"media-set", r.media_set},
                {"tapes", r.tapes},
                {"snapshots", r.snapshots},
                {"packs-written", r.packs_written},
                {"packs-on-set", r.packs_on_set},
                {"bytes-written", r.bytes_written}});
    return;
  }
  std::string tapes;
  for (const std::string& t : r.tapes) tapes += (tapes.empty() ? "" : ", ") + t;
  say(ctx, fmt::format("{} snapshot(s) to media set {} on {}: {} pack(s) written, {} already on the set, {} to tape",
                       r.snapshots.size(), r.media_set, tapes, r.packs_written, r.packs_on_set,
                       format_size(r.bytes_written)));
}

void show_list(const Context& ctx, const Catalog& c, const std::string& pool) {
  Json list = Json::array();
  std::string out;
  for (const CatalogSnapshot& s : c.snapshots) {
    const CatalogSet* set = c.find_set(s.media_set);
    if (!pool.empty() && (!set || set->pool != pool)) continue;
    const std::vector<std::string> tapes = tapes_of(c, s);
    const int64_t secs = s.time_ns / 1000000000;
    if (ctx.json) {
      list.push_back({{"id", s.id},
                      {"name", s.name},
                      {"time", rfc3339(secs)},
                      {"host", s.host},
                      {"pool", set ? Json(set->pool) : Json(nullptr)},
                      {"media-set", s.media_set},
                      {"tapes", tapes},
                      {"packs", s.packs.size()},
                      {"paths", s.paths},
                      {"images", s.images}});
    } else {
      out +=
          fmt::format("{}  {:<20} {}  pool {}  tapes {}  {} pack(s)\n", s.id.substr(0, 8), s.name,
                      backup::format_time_ns(s.time_ns), set ? set->pool : "?", fmt::join(tapes, ","), s.packs.size());
    }
  }
  if (ctx.json) {
    print_json(list);
    return;
  }
  if (out.empty()) out = "no snapshots on tape\n";
  if (!ctx.quiet) std::fputs(out.c_str(), stdout);
}

void show_restored(const Context& ctx, const TapeRestoreReport& r) {
  if (ctx.json) {
    print_json({{"snapshot", r.snapshot_id},
                {"name", r.snapshot_name},
                {"to", r.target},
                {"objects-written", r.objects_written},
                {"objects-present", r.objects_present},
                {"read", read_json(r.read)}});
    return;
  }
  say(ctx, fmt::format("restored snapshot {} ({}) into {}: {} object(s) written, {} present already; read {} tape "
                       "file(s), {} record(s)",
                       r.snapshot_name, r.snapshot_id.substr(0, 8), r.target, r.objects_written, r.objects_present,
                       r.read.files_read.size(), r.read.records));
}

void show_file_restored(const Context& ctx, const TapeFileRestoreReport& r) {
  if (ctx.json) {
    print_json({{"snapshot", r.snapshot_id},
                {"name", r.snapshot_name},
                {"path", r.path},
                {"to", r.target},
                {"files", r.stats.files},
                {"bytes", r.stats.bytes},
                {"packs-needed", r.reads.packs_needed},
                {"tape-files-read", r.reads.files_read()},
                {"tape-files-in-set", r.reads.set_files},
                {"records-read", r.reads.records()},
                {"metadata-pass", read_json(r.reads.first)},
                {"data-pass", read_json(r.reads.second)}});
    return;
  }
  say(ctx,
      fmt::format(
          "restored {} from snapshot {} below {}: {} file(s), {}; read {} of the set's {} tape file(s), {} record(s)",
          r.path, r.snapshot_name, r.target, r.stats.files, format_size(r.stats.bytes), r.reads.files_read(),
          r.reads.set_files, r.reads.records()));
}

void show_image_restored(const Context& ctx, const TapeImageRestoreReport& r, const std::string& format) {
  if (ctx.json) {
    print_json({{"snapshot", r.snapshot_id},
                {"name", r.snapshot_name},
                {"image", r.image},
                {"to", r.target},
                {"format", format},
                {"size", r.stats.size},
                {"bytes-written", r.stats.bytes_written},
                {"chunks", r.stats.chunks},
                {"holes", r.stats.holes},
                {"packs-needed", r.reads.packs_needed},
                {"tape-files-read", r.reads.files_read()},
                {"tape-files-in-set", r.reads.set_files},
                {"records-read", r.reads.records()},
                {"metadata-pass", read_json(r.reads.first)},
                {"data-pass", read_json(r.reads.second)}});
    return;
  }
  say(ctx, fmt::format("restored image {} from snapshot {} to {} ({}, {}); read {} of the set's {} tape file(s), {} "
                       "record(s)",
                       r.image, r.snapshot_name, r.target, format, format_size(r.stats.size), r.reads.files_read(),
                       r.reads.set_files, r.reads.records()));
}

void show_verified(const Context& ctx, const VerifyReport& r) {
  if (ctx.json) {
    Json damaged = Json::array();
    for (const DamagedRecord& d : r.damaged)
      damaged.push_back({{"tape", d.tape}, {"file", d.file}, {"record", d.record}, {"error", d.why}});
    print_json({{"tapes", r.tapes},
                {"files", r.files},
                {"records", r.records},
                {"objects", r.objects},
                {"bytes", r.bytes},
                {"damaged", damaged},
                {"missing", r.missing}});
    return;
  }
  std::string out;
  for (const DamagedRecord& d : r.damaged) out += "damaged: " + d.text() + "\n";
  for (const std::string& m : r.missing) out += "missing: " + m + "\n";
  out += fmt::format("{} tape(s), {} file(s), {} record(s), {} object(s): {}\n", r.tapes.size(), r.files, r.records,
                     r.objects, r.damaged.empty() && r.missing.empty() ? "all good" : "DAMAGED");
  if (!ctx.quiet || !r.damaged.empty()) std::fputs(out.c_str(), stdout);
}

void show_rebuilt(const Context& ctx, const Catalog& c, const std::string& dir, const std::vector<std::string>& notes) {
  if (ctx.json) {
    print_json({{"catalog", dir},
                {"tapes", c.tapes.size()},
                {"sets", c.sets.size()},
                {"snapshots", c.snapshots.size()},
                {"notes", notes}});
    return;
  }
  for (const std::string& n : notes) say(ctx, n);
  say(ctx, fmt::format("catalog {} rebuilt: {} tape(s), {} media set(s), {} snapshot(s)", dir, c.tapes.size(),
                       c.sets.size(), c.snapshots.size()));
}

}  // namespace arche::cli::tape_output
