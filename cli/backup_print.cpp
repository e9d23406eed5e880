#include "cli/backup_print.h"

#include <fmt/format.h>

#include <cstdio>
#include <ctime>

#include "core/units.h"

namespace arche::cli::backup_cli {

using namespace arche::backup;

namespace {

Json or_null(const std::string& s) { return s.empty() ? Json(nullptr) : Json(s); }

std::string ratio(double r) { return r > 0 ? fmt::format("{:.2f}", r) : "-"; }

std::string join(const std::vector<std::string>& items, const char* separator = ", ") {
  std::string out;
  for (const std::string& i : items) out += (out.empty() ? "" : separator) + i;
  return out;
}

Json image_json(const ImageRecord& i) {
  return Json{{"name", i.name},
              {"source", i.source},
              {"format", i.format},
              {"virtual-size", i.size},
              {"chunk-size", i.chunk_size},
              {"chunks", i.chunk_count},
              {"allocated-bytes", i.allocated_bytes},
              {"bytes-read", i.bytes_read},
              {"bytes-read-per-layer", i.bytes_read_per_layer},
              {"hole-chunks", i.hole_chunks},
              {"reused-chunks", i.reused_chunks},
              {"patched-chunks", i.patched_chunks},
              {"incremental-from", or_null(i.incremental_from)}};
}

Json stats_json(const SnapshotStats& st) {
  return Json{{"files", st.files},
              {"dirs", st.dirs},
              {"symlinks", st.symlinks},
              {"other", st.other},
              {"unchanged-files", st.unchanged_files},
              {"unreadable", st.unreadable},
              {"total-bytes", st.total_bytes},
              {"bytes-read", st.bytes_read},
              {"new-chunks", st.new_blobs},
              {"new-bytes", st.new_bytes},
              {"stored-bytes", st.stored_bytes},
              {"seconds", st.seconds}};
}

// One line of `list --json`; a damaged manifest has its id and the error, nulls else.
Json snapshot_summary_json(const Snapshot& s) {
  Json images = Json::array();
  for (const ImageRecord& i : s.images) images.push_back(i.name);
  return Json{{"id", s.id},
              {"name", s.name},
              {"time", rfc3339(s.time_ns)},
              {"host", s.host},
              {"user", s.user},
              {"tags", s.tags},
              {"paths", s.paths},
              {"images", images},
              {"total-bytes", s.stats.total_bytes},
              {"stored-bytes", s.stats.stored_bytes},
              {"damaged", nullptr}};
}

Json damaged_summary_json(const DamagedManifest& d) {
  Json j = snapshot_summary_json(Snapshot{});
  for (auto& [key, value] : j.items()) value = nullptr;
  j["id"] = d.id;
  j["damaged"] = d.error;
  return j;
}

std::string content_of(const Snapshot& s) {
  std::vector<std::string> parts;
  for (const ImageRecord& i : s.images) parts.push_back(i.name);
  for (const std::string& p : s.paths) parts.push_back(p);
  return join(parts);
}

std::string local_time(int64_t ns) { return format_time_ns(ns); }

}  // namespace

std::string rfc3339(int64_t unix_ns) {
  std::time_t t = static_cast<std::time_t>(unix_ns / 1000000000);
  if (unix_ns < 0 && unix_ns % 1000000000) --t;
  std::tm tm{};
  localtime_r(&t, &tm);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
  const long offset = tm.tm_gmtoff;
  if (offset == 0) return std::string(date) + "Z";
  const long a = offset < 0 ? -offset : offset;
  return fmt::format("{}{}{:02}:{:02}", date, offset < 0 ? '-' : '+', a / 3600, a % 3600 / 60);
}

std::string count(uint64_t n, std::string_view singular, std::string_view plural) {
  return fmt::format("{} {}", n, n == 1 ? singular : plural);
}

void print_created(const Context& ctx, const Snapshot& s, bool dry_run) {
  if (ctx.json) {
    Json images = Json::array();
    for (const ImageRecord& i : s.images) images.push_back(image_json(i));
    print_json(Json{{"dry-run", dry_run},
                    {"id", or_null(s.id)},
                    {"name", s.name},
                    {"time", rfc3339(s.time_ns)},
                    {"host", s.host},
                    {"images", images},
                    {"stats", stats_json(s.stats)}});
    return;
  }
  for (const ImageRecord& i : s.images)
    say(ctx, fmt::format("image {}: {} ({} allocated), read {}{}", i.name, format_size(i.size),
                         format_size(i.allocated_bytes), format_size(i.bytes_read),
                         i.incremental_from.empty() ? "" : " (incremental)"));
  if (!s.paths.empty()) {
    uint64_t image_bytes = 0;
    for (const ImageRecord& i : s.images) image_bytes += i.bytes_read;
    say(ctx, fmt::format("files: {}, {}, {} unchanged, {} read", count(s.stats.files, "file", "files"),
                         count(s.stats.dirs, "directory", "directories"), s.stats.unchanged_files,
                         format_size(s.stats.bytes_read - image_bytes)));
  }
  if (dry_run) {
    say(ctx, fmt::format("dry run: snapshot {} would add {} of new data; nothing was written", s.name,
                         format_size(s.stats.new_bytes)));
  } else {
    say(ctx, fmt::format("snapshot {} ({}) created in {:.2f} s: {} new data, {} added to the repository", s.name,
                         s.short_id(), s.stats.seconds, format_size(s.stats.new_bytes),
                         format_size(s.stats.stored_bytes)));
  }
  if (s.stats.unreadable)
    say(ctx, fmt::format("warning: {} entries could not be read and are not in the snapshot", s.stats.unreadable));
}

void print_restored(const Context& ctx, const RestoreResult& r, const std::string& to, const std::string& format) {
  if (r.image) {
    const ImageRestoreStats& st = r.image_stats;
    if (ctx.json) {
      print_json(Json{{"snapshot", r.snapshot.id}, {"image", r.image->name}, {"to", to}, {"format", format},
                      {"virtual-size", st.size}, {"bytes-written", st.bytes_written}, {"chunks", st.chunks},
                      {"holes", st.holes}, {"removed-temporaries", st.removed_temporaries}, {"seconds", st.seconds}});
      return;
    }
    say(ctx, fmt::format("restored image {} to {} ({}, {} of data) in {:.2f} s", r.image->name, to,
                         format_size(st.size), format_size(st.bytes_written), st.seconds));
    return;
  }
  const FileRestoreStats& st = r.file_stats;
  if (ctx.json) {
    print_json(Json{{"snapshot", r.snapshot.id}, {"to", to}, {"files", st.files}, {"dirs", st.dirs},
                    {"symlinks", st.links}, {"other", st.other}, {"bytes", st.bytes}, {"warnings", st.warnings},
                    {"removed-temporaries", st.removed_temporaries}, {"seconds", st.seconds}});
    return;
  }
  say(ctx, fmt::format("restored {}, {}, {} ({}) to {} in {:.2f} s", count(st.files, "file", "files"),
                       count(st.dirs, "directory", "directories"), count(st.links, "symlink", "symlinks"),
                       format_size(st.bytes), to, st.seconds));
}

void print_list(const Context& ctx, const SnapshotList& list) {
  for (const DamagedManifest& d : list.damaged) std::fprintf(stderr, "arche: %s\n", d.error.c_str());
  if (ctx.json) {
    Json out = Json::array();
    for (const Snapshot& s : list.snapshots) out.push_back(snapshot_summary_json(s));
    for (const DamagedManifest& d : list.damaged) out.push_back(damaged_summary_json(d));
    print_json(out);
    return;
  }
  if (list.snapshots.empty() && list.damaged.empty()) {
    say(ctx, "no snapshots");
    return;
  }
  std::printf("%-8s  %-19s  %-12s  %10s  %s\n", "ID", "TIME", "HOST", "SIZE", "NAME (CONTENT)");
  for (const Snapshot& s : list.snapshots)
    std::printf("%-8s  %-19s  %-12s  %10s  %s (%s)\n", s.short_id().c_str(), local_time(s.time_ns).c_str(),
                s.host.c_str(), format_size(s.stats.total_bytes).c_str(), s.name.c_str(), content_of(s).c_str());
  for (const DamagedManifest& d : list.damaged)
    std::printf("%-8s  %-19s  %-12s  %10s  %s\n", d.id.substr(0, 8).c_str(), "?", "?", "?",
                "DAMAGED (arche backup repair snapshots removes it)");
}

void print_snapshot_info(const Context& ctx, const Snapshot& s) {
  if (ctx.json) {
    Json j = snapshot_summary_json(s);
    j.erase("damaged");
    Json images = Json::array();
    for (const ImageRecord& i : s.images) images.push_back(image_json(i));
    j["images"] = images;
    j["parent"] = or_null(s.parent);
    j["arche-version"] = s.arche_version;
    j["stats"] = stats_json(s.stats);
    print_json(j);
    return;
  }
  std::printf("snapshot: %s (%s)\ntime: %s\nhost: %s\nuser: %s\n", s.name.c_str(), s.id.c_str(),
              local_time(s.time_ns).c_str(), s.host.c_str(), s.user.c_str());
  if (!s.tags.empty()) std::printf("tags: %s\n", join(s.tags).c_str());
  for (const ImageRecord& i : s.images)
    std::printf("image: %s (%s, %s, from %s) %s allocated, %s read%s\n", i.name.c_str(), i.format.c_str(),
                format_size(i.size).c_str(), i.source.c_str(), format_size(i.allocated_bytes).c_str(),
                format_size(i.bytes_read).c_str(), i.incremental_from.empty() ? "" : ", incremental");
  for (const std::string& p : s.paths) std::printf("path: %s\n", p.c_str());
  std::printf("size: %s; %llu files, %llu directories\nadded: %s new data, %s stored; took %.2f s\n",
              format_size(s.stats.total_bytes).c_str(), static_cast<unsigned long long>(s.stats.files),
              static_cast<unsigned long long>(s.stats.dirs), format_size(s.stats.new_bytes).c_str(),
              format_size(s.stats.stored_bytes).c_str(), s.stats.seconds);
}

void print_repository_info(const Context& ctx, const Repository& repo, const RepoInfo& info) {
  const RepoSettings& st = repo.settings();
  if (ctx.json) {
    print_json(Json{{"repository", repo.location()},
                    {"id", repo.id().hex()},
                    {"format-version", fmt::format("{}.{}", repo.header().major, repo.header().minor)},
                    {"created", rfc3339(static_cast<int64_t>(repo.header().created) * 1000000000)},
                    {"snapshots", info.snapshots},
                    {"damaged-snapshots", info.damaged_snapshots},
                    {"packs", info.packs},
                    {"pack-bytes", info.pack_bytes},
                    {"chunks", info.chunks},
                    {"chunk-bytes", info.chunk_bytes},
                    {"logical-bytes", info.logical_bytes},
                    {"dedup-ratio", info.dedup_ratio() > 0 ? Json(info.dedup_ratio()) : Json(nullptr)},
                    {"compression-ratio", info.compression_ratio() > 0 ? Json(info.compression_ratio()) : Json(nullptr)},
                    {"index-files", info.index_files},
                    {"index-ram-bytes", info.chunks * ChunkIndex::kBytesPerEntry},
                    {"key-slots", info.key_slots},
                    {"image-chunk-size", st.image_chunk_size},
                    {"file-chunk-sizes", {st.cdc_min, st.cdc_avg, st.cdc_max}},
                    {"compression-level", st.compression_level},
                    {"pack-size", st.pack_size}});
    return;
  }
  std::printf("repository: %s\nid: %s (format %u.%u)\nsnapshots: %llu\n", repo.location().c_str(), repo.id().hex().c_str(),
              repo.header().major, repo.header().minor, static_cast<unsigned long long>(info.snapshots));
  if (info.damaged_snapshots)
    std::printf("damaged snapshot manifests: %llu (arche backup repair snapshots removes them)\n",
                static_cast<unsigned long long>(info.damaged_snapshots));
  std::printf("original size of all snapshots: %s\nunique data: %s in %llu chunks\nstored: %s in %llu packs\n",
              format_size(info.logical_bytes).c_str(), format_size(info.chunk_bytes).c_str(),
              static_cast<unsigned long long>(info.chunks), format_size(info.pack_bytes).c_str(),
              static_cast<unsigned long long>(info.packs));
  std::printf("deduplication ratio: %s, compression ratio: %s\n", ratio(info.dedup_ratio()).c_str(),
              ratio(info.compression_ratio()).c_str());
  std::printf("chunks: images %s fixed, files %s/%s/%s (FastCDC); zstd level %d; key slots: %llu\n",
              format_size(st.image_chunk_size).c_str(), format_size(st.cdc_min).c_str(), format_size(st.cdc_avg).c_str(),
              format_size(st.cdc_max).c_str(), st.compression_level, static_cast<unsigned long long>(info.key_slots));
}

void print_diff(const Context& ctx, const SnapshotDiff& d) {
  if (ctx.json) {
    Json images = Json::array(), files = Json::array();
    for (const auto& i : d.changes.images)
      images.push_back(Json{{"name", i.name}, {"change", std::string(1, i.change)}, {"chunks", i.chunks},
                            {"changed-chunks", i.changed_chunks}, {"changed-bytes", i.changed_bytes}});
    for (const auto& f : d.changes.files) files.push_back(Json{{"change", std::string(1, f.change)}, {"path", f.path}});
    print_json(Json{{"a", d.a.id}, {"b", d.b.id}, {"images", images}, {"files", files}});
    return;
  }
  for (const auto& i : d.changes.images) {
    if (i.change == 'M')
      std::printf("M image %s: %llu of %llu chunks differ (%s)\n", i.name.c_str(),
                  static_cast<unsigned long long>(i.changed_chunks), static_cast<unsigned long long>(i.chunks),
                  format_size(i.changed_bytes).c_str());
    else
      std::printf("%c image %s\n", i.change, i.name.c_str());
  }
  for (const auto& f : d.changes.files) std::printf("%c %s\n", f.change, f.path.c_str());
}

void print_prune(const Context& ctx, const PruneReport& r, bool dry_run) {
  size_t removed = 0;
  for (const RetentionGroup& g : r.groups) removed += g.removed.size();
  if (ctx.json) {
    Json groups = Json::array(), all_kept = Json::array(), all_removed = Json::array();
    for (const RetentionGroup& g : r.groups) {
      Json kept = Json::array(), gone = Json::array();
      for (size_t i = 0; i < g.kept.size(); ++i) {
        Json j = snapshot_summary_json(g.kept[i]);
        j.erase("damaged");
        j["reasons"] = g.kept_reasons[i];
        kept.push_back(j);
        all_kept.push_back(j);
      }
      for (const Snapshot& s : g.removed) {
        Json j = snapshot_summary_json(s);
        j.erase("damaged");
        gone.push_back(j);
        all_removed.push_back(j);
      }
      groups.push_back(Json{{"host", or_null(g.key.host)},
                            {"paths", g.key.paths.empty() ? Json(nullptr) : Json(g.key.paths)},
                            {"tags", g.key.tags.empty() ? Json(nullptr) : Json(g.key.tags)},
                            {"kept", kept},
                            {"removed", gone}});
    }
    print_json(Json{{"dry-run", dry_run}, {"groups", groups}, {"kept", all_kept}, {"removed", all_removed},
                    {"packs-deleted", r.packs_deleted}, {"packs-repacked", r.packs_repacked},
                    {"packs-written", r.packs_written}, {"packs-waiting", r.packs_waiting},
                    {"bytes-waiting", r.bytes_waiting}, {"packs-revived", r.packs_revived},
                    {"bytes-freed", r.bytes_freed}, {"bytes-repacked", r.bytes_repacked}});
    return;
  }
  for (const RetentionGroup& g : r.groups) {
    std::vector<std::string> key;
    if (!g.key.host.empty()) key.push_back("host " + g.key.host);
    if (!g.key.paths.empty()) key.push_back("paths " + join(g.key.paths, " "));
    if (!g.key.tags.empty()) key.push_back("tags " + join(g.key.tags, ","));
    say(ctx, fmt::format("group {}:", key.empty() ? std::string("(all snapshots)") : join(key, ", ")));
    for (size_t i = 0; i < g.kept.size(); ++i)
      say(ctx, fmt::format("  keep          {}  {}  {} ({})", g.kept[i].short_id(), local_time(g.kept[i].time_ns),
                           g.kept[i].name, join(g.kept_reasons[i])));
    for (const Snapshot& s : g.removed)
      say(ctx, fmt::format("  {}  {}  {}  {}", dry_run ? "would remove" : "remove      ", s.short_id(),
                           local_time(s.time_ns), s.name));
  }
  if (dry_run) {
    say(ctx, fmt::format("dry run: {} would be removed, {} would be freed", count(removed, "snapshot", "snapshots"),
                         format_size(r.bytes_freed)));
    return;
  }
  say(ctx, fmt::format("removed {}; deleted {}, repacked {} ({} copied); {} freed",
                       count(removed, "snapshot", "snapshots"), count(r.packs_deleted, "pack", "packs"),
                       r.packs_repacked, format_size(r.bytes_repacked), format_size(r.bytes_freed)));
  if (r.packs_waiting)
    say(ctx, fmt::format("{} ({}) marked for deletion: backups run beside this prune; a prune after they have ended "
                         "deletes them",
                         count(r.packs_waiting, "pack", "packs"), format_size(r.bytes_waiting)));
  if (r.packs_revived)
    say(ctx, fmt::format("{} that a snapshot needs indexed again", count(r.packs_revived, "pack", "packs")));
}

void print_check(const Context& ctx, const CheckReport& r, bool read_data) {
  if (ctx.json) {
    Json damaged = Json::array();
    for (const DamagedChunk& d : r.damaged)
      damaged.push_back(Json{{"chunk", d.id.hex()}, {"pack", d.pack.hex()}, {"offset", d.offset},
                             {"error", d.error}, {"affects", d.affects}});
    print_json(Json{{"ok", r.ok()}, {"errors", r.errors}, {"notes", r.notes}, {"temporary-files", r.temporary_files},
                    {"damaged-chunks", damaged}, {"snapshots", r.snapshots}, {"packs", r.packs},
                    {"chunks", r.chunks}, {"bytes-verified", read_data ? Json(r.bytes_verified) : Json(nullptr)}});
    return;
  }
  for (const std::string& n : r.notes) std::printf("note: %s\n", n.c_str());
  for (const std::string& e : r.errors) std::printf("error: %s\n", e.c_str());
  for (const DamagedChunk& d : r.damaged) {
    std::printf("damaged chunk %s (pack %s, offset %u): %s\n", d.id.hex().c_str(), d.pack.short_hex().c_str(),
                d.offset, d.error.c_str());
    for (const std::string& what : d.affects) std::printf("  affects %s\n", what.c_str());
    if (d.affects.empty()) std::printf("  affects no snapshot\n");
  }
  std::printf("%s, %s, %s%s: %s\n", count(r.snapshots, "snapshot", "snapshots").c_str(),
              count(r.packs, "pack", "packs").c_str(), count(r.chunks, "chunk", "chunks").c_str(),
              read_data ? fmt::format(", {} verified", format_size(r.bytes_verified)).c_str() : "",
              r.ok() ? "no errors found" : count(r.errors.size() + r.damaged.size(), "error", "errors").c_str());
}

void print_repair_index(const Context& ctx, const RepairReport& r) {
  if (ctx.json) {
    print_json(Json{{"packs", r.packs}, {"chunks", r.chunks}, {"scanned-packs", r.scanned_packs},
                    {"unreadable-packs", r.unreadable}, {"replaced-index-files", r.replaced_index_files}});
    return;
  }
  for (const std::string& u : r.unreadable) say(ctx, "left out: " + u);
  say(ctx, fmt::format("index rebuilt: {} in {} ({} read by scanning); {} replaced", count(r.chunks, "chunk", "chunks"),
                       count(r.packs, "pack", "packs"), r.scanned_packs,
                       count(r.replaced_index_files, "index file", "index files")));
}

void print_repair_snapshots(const Context& ctx, const SnapshotRepairReport& r, bool dry_run) {
  if (ctx.json) {
    Json removed = Json::array(), renamed = Json::array();
    for (const DamagedManifest& d : r.removed) removed.push_back(Json{{"id", d.id}, {"error", d.error}});
    for (const auto& [from, to] : r.renamed) renamed.push_back(Json{{"from", from}, {"to", to}});
    print_json(Json{{"dry-run", dry_run}, {"removed", removed}, {"renamed", renamed}, {"intact", r.intact}});
    return;
  }
  for (const DamagedManifest& d : r.removed)
    say(ctx, fmt::format("{} damaged manifest {}: {}", dry_run ? "would remove" : "removed", d.id.substr(0, 8), d.error));
  for (const auto& [from, to] : r.renamed)
    say(ctx, fmt::format("{} manifest {} to its content hash {}", dry_run ? "would rename" : "renamed", from.substr(0, 8),
                         to.substr(0, 8)));
  say(ctx, fmt::format("{} intact; {} damaged {}", count(r.intact, "snapshot", "snapshots"), r.removed.size(),
                       dry_run ? "would be removed" : "removed"));
}

void print_unlocked(const Context& ctx, const std::vector<LockInfo>& removed) {
  if (ctx.json) {
    Json list = Json::array();
    for (const LockInfo& l : removed) {
      const bool known = l.damaged.empty();
      list.push_back(Json{{"name", l.name},
                          {"mode", known ? Json(l.exclusive ? "exclusive" : "shared") : Json(nullptr)},
                          {"host", known ? Json(l.host) : Json(nullptr)},
                          {"pid", known ? Json(l.pid) : Json(nullptr)},
                          {"command", known ? Json(l.command) : Json(nullptr)},
                          {"created", known ? Json(rfc3339(static_cast<int64_t>(l.created) * 1000000000)) : Json(nullptr)},
                          {"refreshed",
                           known ? Json(rfc3339(static_cast<int64_t>(l.refreshed) * 1000000000)) : Json(nullptr)},
                          {"why", !known ? "damaged" : l.stale ? "stale" : l.abandoned ? "abandoned" : "forced"},
                          {"damaged", or_null(l.damaged)}});
    }
    print_json(Json{{"removed", list}});
    return;
  }
  for (const LockInfo& l : removed) say(ctx, "removed " + l.describe());
  say(ctx, fmt::format("{} removed", count(removed.size(), "lock", "locks")));
}

void print_key_slots(const Context& ctx, const std::vector<std::pair<std::string, KeySlot>>& key_slots,
                     const std::string& current) {
  Json slots = Json::array();
  for (const auto& [name, slot] : key_slots) {
    const int64_t created = static_cast<int64_t>(slot.created) * 1000000000;
    slots.push_back(Json{{"slot", name},
                         {"created", rfc3339(created)},
                         {"kdf", "argon2id"},
                         {"ops", slot.kdf.opslimit},
                         {"memory", slot.kdf.memlimit},
                         {"current", name == current}});
    if (!ctx.json)
      std::printf("%s  %s  argon2id ops=%llu memory=%s%s\n", name.c_str(), local_time(created).c_str(),
                  static_cast<unsigned long long>(slot.kdf.opslimit), format_size(slot.kdf.memlimit).c_str(),
                  name == current ? "  (this passphrase)" : "");
  }
  if (ctx.json) print_json(slots);
}

void print_copy(const Context& ctx, const CopyReport& r, const std::string& src, const std::string& dst, bool dry_run) {
  size_t copied = 0;
  for (const CopiedSnapshot& s : r.snapshots) copied += !s.present;
  if (ctx.json) {
    Json snapshots = Json::array();
    for (const CopiedSnapshot& s : r.snapshots)
      snapshots.push_back(Json{{"name", s.name}, {"id", s.id}, {"copy-id", s.copy_id}, {"present", s.present}});
    print_json(Json{{"dry-run", dry_run},
                    {"mode", r.reencrypted ? "re-encrypted" : "replica"},
                    {"source", src},
                    {"destination", dst},
                    {"snapshots", snapshots},
                    {"needed-blobs", r.needed_blobs},
                    {"missing-blobs", r.missing_blobs},
                    {"missing-bytes", r.missing_bytes},
                    {"packs", r.packs},
                    {"pack-bytes", r.pack_bytes},
                    {"adopted-packs", r.adopted_packs},
                    {"read-blobs", r.read_blobs},
                    {"read-bytes", r.read_bytes},
                    {"known-blobs", r.known_blobs},
                    {"seconds", r.seconds}});
    return;
  }
  for (const CopiedSnapshot& s : r.snapshots) {
    const bool renamed = !s.copy_id.empty() && s.copy_id != s.id;
    say(ctx, fmt::format("{} {} ({}{})", s.present ? "present" : (dry_run ? "would copy" : "copied "), s.name,
                         s.id.substr(0, 8), renamed ? " -> " + s.copy_id.substr(0, 8) : std::string()));
  }
  const std::string packs = fmt::format("{} ({})", count(r.packs, "pack", "packs"), format_size(r.pack_bytes));
  const std::string adopted =
      r.adopted_packs ? fmt::format(", {} left by an interrupted run adopted", count(r.adopted_packs, "pack", "packs"))
                      : std::string();
  if (r.reencrypted) {
    // The chunks were read and stored anew: what DST lacked is what was written.
    const std::string lacked =
        fmt::format("{} chunks ({}) read from the source{}, {} of {} blobs ({}) were missing there", r.read_blobs,
                    format_size(r.read_bytes),
                    r.known_blobs ? fmt::format(" ({} known from earlier copies)", r.known_blobs) : std::string(),
                    r.missing_blobs, r.needed_blobs, format_size(r.missing_bytes));
    if (dry_run) {
      say(ctx, fmt::format("dry run: {} of {} would go to {} re-encrypted; {}; nothing was written",
                           count(copied, "snapshot", "snapshots"), src, dst, lacked));
      return;
    }
    say(ctx, fmt::format("copied {} from {} to {} re-encrypted in {:.2f} s: {} written, {}{}",
                         count(copied, "snapshot", "snapshots"), src, dst, r.seconds, packs, lacked, adopted));
    return;
  }
  if (dry_run) {
    say(ctx, fmt::format("dry run: {} of {} would go to {} in {}; nothing was written", count(copied, "snapshot", "snapshots"),
                         src, dst, packs));
    return;
  }
  say(ctx, fmt::format("copied {} from {} to {} in {:.2f} s: {} sent, {} of {} chunks were missing there{}",
                       count(copied, "snapshot", "snapshots"), src, dst, r.seconds, packs, r.missing_blobs,
                       r.needed_blobs, adopted));
}

}  // namespace arche::cli::backup_cli
