// `arche backup ...`: the encrypted, deduplicating backup repository (docs/backup.md).
// Passphrases come from ARCHE_PASSPHRASE, --passphrase-file or --passphrase-command
// (or a terminal prompt), never from the command line.
#include <fmt/format.h>

#include <climits>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backup/check.h"
#include "backup/create.h"
#include "backup/file_restore.h"
#include "backup/image_restore.h"
#include "backup/lock.h"
#include "backup/passphrase.h"
#include "backup/prune.h"
#include "backup/repository.h"
#include "backup/snapshot.h"
#include "backup/stats.h"
#include "cli/command.h"
#include "core/error.h"
#include "core/progress.h"
#include "core/units.h"

namespace arche::cli {

namespace {

// "1 file", "2 files", "1 directory", "3 directories".
std::string count(uint64_t n, std::string_view singular, std::string_view plural) {
  return fmt::format("{} {}", n, n == 1 ? singular : plural);
}

using namespace arche::backup;

// ---- shared helpers -------------------------------------------------------------

struct PassArgs {
  std::string file, command;
};

void add_passphrase_options(CLI::App* cmd, PassArgs& a) {
  cmd->add_option("--passphrase-file", a.file, "Read the passphrase from FILE (default: $ARCHE_PASSPHRASE or a prompt)");
  cmd->add_option("--passphrase-command", a.command, "Run CMD (sh -c) and use its output as the passphrase");
}

PassphraseSource source_for(const PassArgs& a, const std::string& repo) {
  PassphraseSource s;
  s.file = a.file;
  s.command = a.command;
  s.prompt = "passphrase for " + repo + ": ";
  return s;
}

std::unique_ptr<Repository> open_repo(const std::string& path, const PassArgs& a) {
  Repository::read_header(path);  // "not a repository" before asking for a passphrase
  SecretBytes pass = read_passphrase(source_for(a, path));
  return Repository::open(path, pass.span());
}

void quiet_if_json(const Context& ctx) {
  if (ctx.json) Progress::set_globally_disabled(true);
}

std::string ratio(double r) { return r > 0 ? fmt::format("{:.2f}", r) : "-"; }

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
              {"incremental-from", i.incremental_from}};
}

Json snapshot_summary_json(const Snapshot& s) {
  Json images = Json::array();
  for (const ImageRecord& i : s.images) images.push_back(i.name);
  return Json{{"id", s.id},
              {"name", s.name},
              {"time", format_time_ns(s.time_ns)},
              {"time-ns", s.time_ns},
              {"host", s.host},
              {"user", s.user},
              {"tags", s.tags},
              {"paths", s.paths},
              {"images", images},
              {"total-bytes", s.stats.total_bytes},
              {"stored-bytes", s.stats.stored_bytes}};
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

// ---- init -----------------------------------------------------------------------

struct InitArgs {
  std::string repo, chunk_size, pack_size, kdf_memory;
  int compression = 1;
  uint64_t kdf_ops = 3;
  PassArgs pass;
};

void add_init(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("init", "Create an encrypted repository");
  auto a = std::make_shared<InitArgs>();
  cmd->add_option("repo", a->repo, "Directory of the new repository")->required();
  cmd->add_option("--compression", a->compression, "Default zstd level of new chunks (-7..19)")->capture_default_str();
  cmd->add_option("--chunk-size", a->chunk_size, "Chunk size of disk images (64K..4M, default 1M)");
  cmd->add_option("--pack-size", a->pack_size, "Size at which packs are closed (1M..24M, default 16M)");
  cmd->add_option("--kdf-memory", a->kdf_memory, "Memory of argon2id per unlock (default 32M)");
  cmd->add_option("--kdf-ops", a->kdf_ops, "Passes of argon2id per unlock")->capture_default_str();
  add_passphrase_options(cmd, a->pass);
  add_json_flag(cmd, ctx);
  cmd->callback([&ctx, a] {
    InitOptions o;
    o.settings.compression_level = a->compression;
    if (!a->chunk_size.empty()) o.settings.image_chunk_size = static_cast<uint32_t>(parse_size(a->chunk_size, "chunk size"));
    if (!a->pack_size.empty()) o.settings.pack_size = static_cast<uint32_t>(parse_size(a->pack_size, "pack size"));
    if (!a->kdf_memory.empty()) o.kdf.memlimit = parse_size(a->kdf_memory, "kdf memory");
    o.kdf.opslimit = a->kdf_ops;
    validate_settings(o.settings, ErrorCategory::usage);
    SecretBytes pass = read_new_passphrase(source_for(a->pass, a->repo));
    Repository::init(a->repo, pass.span(), o);
    RepoConfigHeader h = Repository::read_header(a->repo);
    if (ctx.json) {
      print_json(Json{{"repository", a->repo}, {"id", h.repo_id.hex()}});
      return;
    }
    say(ctx, fmt::format("created repository {} (id {})", a->repo, h.repo_id.short_hex()));
    say(ctx, "Keep the passphrase safe: without it the backups cannot be read by anyone, including you.");
  });
}

// ---- create ---------------------------------------------------------------------

struct CreateArgs {
  std::string target, parent;
  std::vector<std::string> images, paths, tags, excludes;
  int compression = INT32_MIN;
  bool no_incremental = false, one_file_system = false, force_share = false;
  unsigned threads = 0;
  PassArgs pass;
};

void add_create(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("create", "Back up disk images and/or files into a new snapshot");
  auto a = std::make_shared<CreateArgs>();
  cmd->add_option("target", a->target, "REPO::NAME")->required();
  cmd->add_option("--image", a->images, "A disk image (any format arche reads) or a block device; repeatable")
      ->allow_extra_args(false);
  cmd->add_option("paths", a->paths, "Files and directories");
  cmd->add_option("--tag", a->tags, "A tag for the snapshot; repeatable")->allow_extra_args(false);
  cmd->add_option("--compression", a->compression, "zstd level of new chunks (default: the repository's)");
  cmd->add_option("--parent", a->parent, "Snapshot whose unchanged files are not read again (default: the latest)");
  cmd->add_option("--exclude", a->excludes, "Skip entries whose path or name matches this glob; repeatable")
      ->allow_extra_args(false);
  cmd->add_flag("--one-file-system", a->one_file_system, "Do not descend into other file systems");
  cmd->add_flag("--no-incremental", a->no_incremental, "Read images in full even when a backing layer is unchanged");
  cmd->add_flag("-U,--force-share", a->force_share, "Read an image another process is writing");
  cmd->add_option("-j,--threads", a->threads, "Worker threads (default: one per core)");
  add_passphrase_options(cmd, a->pass);
  add_json_flag(cmd, ctx);
  cmd->footer("Exit status 3: the snapshot was made, but some files could not be read (see the warnings).");
  cmd->callback([&ctx, a] {
    quiet_if_json(ctx);
    auto [repo_path, name] = split_repo_ref(a->target, true);
    auto repo = open_repo(repo_path, a->pass);
    backup::CreateOptions o;
    o.name = name;
    o.images = a->images;
    o.paths = a->paths;
    o.tags = a->tags;
    o.compression_level = a->compression;
    o.incremental = !a->no_incremental;
    o.parent = a->parent;
    o.files.excludes = a->excludes;
    o.files.one_file_system = a->one_file_system;
    o.force_share = a->force_share;
    o.threads = a->threads;
    Snapshot s = create_snapshot(*repo, o);
    if (s.stats.unreadable) ctx.exit_code = 3;
    if (ctx.json) {
      Json images = Json::array();
      for (const ImageRecord& i : s.images) images.push_back(image_json(i));
      print_json(Json{{"id", s.id}, {"name", s.name}, {"images", images}, {"stats", stats_json(s.stats)}});
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
                           count(s.stats.dirs, "directory", "directories"), s.stats.unchanged_files, format_size(s.stats.bytes_read - image_bytes)));
    }
    say(ctx, fmt::format("snapshot {} ({}) created in {:.2f} s: {} new data, {} added to the repository", s.name,
                         s.short_id(), s.stats.seconds, format_size(s.stats.new_bytes),
                         format_size(s.stats.stored_bytes)));
    if (s.stats.unreadable)
      say(ctx, fmt::format("warning: {} entries could not be read and are not in the snapshot", s.stats.unreadable));
  });
}

// ---- restore --------------------------------------------------------------------

struct RestoreArgs {
  std::string target, image, to, format = "raw";
  std::vector<std::string> paths;
  bool overwrite = false, sync = false;
  unsigned threads = 0;
  PassArgs pass;
};

void add_restore(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("restore", "Restore a disk image, or files, from a snapshot");
  auto a = std::make_shared<RestoreArgs>();
  cmd->add_option("target", a->target, "REPO::NAME (NAME may be 'latest' or an id prefix)")->required();
  cmd->add_option("--image", a->image, "The image to restore (its file name at backup time)");
  cmd->add_option("--to", a->to, "Image: the file or block device to write; files: the directory to restore into")
      ->required();
  cmd->add_option("-O,--output-format", a->format, "Format of a restored image: raw or qcow2")
      ->check(CLI::IsMember({"raw", "qcow2"}))
      ->capture_default_str();
  cmd->add_option("paths", a->paths,
                  "Files: restore only these paths of the snapshot (absolute, or relative to the current directory, "
                  "as create stored them)");
  cmd->add_flag("--overwrite", a->overwrite, "Replace existing files (and allow writing onto a block device)");
  cmd->add_flag("--sync", a->sync, "fsync the restored image before it appears under its name");
  cmd->add_option("-j,--threads", a->threads, "Worker threads (default: one per core)");
  add_passphrase_options(cmd, a->pass);
  add_json_flag(cmd, ctx);
  cmd->callback([&ctx, a] {
    quiet_if_json(ctx);
    auto [repo_path, name] = split_repo_ref(a->target, true);
    auto repo = open_repo(repo_path, a->pass);
    RepoLock lock(*repo, LockMode::shared, "backup restore " + name);
    repo->load_index(false);
    std::vector<Snapshot> all = load_snapshots(*repo);
    const Snapshot& s = resolve_snapshot(all, name);
    if (!a->image.empty()) {
      if (!a->paths.empty()) fail(ErrorCategory::usage, "restore: give either --image or PATHs, not both");
      const ImageRecord* image = s.find_image(a->image);
      if (!image) {
        std::string names;
        for (const ImageRecord& i : s.images) names += (names.empty() ? "" : ", ") + i.name;
        fail(ErrorCategory::not_found, "snapshot {} has no image '{}' (it has: {})", s.name, a->image,
             names.empty() ? "none" : names);
      }
      ImageRestoreOptions o;
      o.format = a->format;
      o.overwrite = a->overwrite;
      o.sync = a->sync;
      o.threads = a->threads;
      ImageRestoreStats st = restore_image(*repo, *image, a->to, o);
      if (ctx.json) {
        print_json(Json{{"image", image->name}, {"to", a->to}, {"format", a->format}, {"virtual-size", st.size},
                        {"bytes-written", st.bytes_written}, {"chunks", st.chunks}, {"holes", st.holes},
                        {"seconds", st.seconds}});
        return;
      }
      say(ctx, fmt::format("restored image {} to {} ({}, {} of data) in {:.2f} s", image->name, a->to,
                           format_size(st.size), format_size(st.bytes_written), st.seconds));
      return;
    }
    FileRestoreOptions o;
    o.paths = a->paths;
    o.overwrite = a->overwrite;
    o.threads = a->threads;
    FileRestoreStats st = restore_files(*repo, s, a->to, o);
    if (ctx.json) {
      print_json(Json{{"to", a->to}, {"files", st.files}, {"dirs", st.dirs}, {"symlinks", st.links},
                      {"other", st.other}, {"bytes", st.bytes}, {"warnings", st.warnings}, {"seconds", st.seconds}});
      return;
    }
    say(ctx, fmt::format("restored {}, {}, {} ({}) to {} in {:.2f} s", count(st.files, "file", "files"),
                         count(st.dirs, "directory", "directories"), count(st.links, "symlink", "symlinks"),
                         format_size(st.bytes), a->to, st.seconds));
  });
}

// ---- list, info, diff -------------------------------------------------------------

struct RepoArgs {
  std::string repo;
  PassArgs pass;
};

void add_list(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("list", "List the snapshots of a repository");
  auto a = std::make_shared<RepoArgs>();
  cmd->add_option("repo", a->repo, "Repository")->required();
  add_passphrase_options(cmd, a->pass);
  add_json_flag(cmd, ctx);
  cmd->callback([&ctx, a] {
    auto repo = open_repo(a->repo, a->pass);
    // A damaged manifest must not hide the others: list what is readable, say what
    // is not, and exit 2 like check.
    std::vector<std::string> damaged;
    std::vector<Snapshot> all = load_snapshots(*repo, &damaged);
    for (const std::string& d : damaged) std::fprintf(stderr, "arche: %s\n", d.c_str());
    if (!damaged.empty()) ctx.exit_code = 2;
    if (ctx.json) {
      Json list = Json::array();
      for (const Snapshot& s : all) list.push_back(snapshot_summary_json(s));
      print_json(list);
      return;
    }
    if (all.empty()) {
      say(ctx, "no snapshots");
      return;
    }
    std::printf("%-8s  %-19s  %-12s  %10s  %s\n", "ID", "TIME", "HOST", "SIZE", "NAME (CONTENT)");
    for (const Snapshot& s : all) {
      std::string content;
      for (const ImageRecord& i : s.images) content += (content.empty() ? "" : ", ") + i.name;
      for (const std::string& p : s.paths) content += (content.empty() ? "" : ", ") + p;
      std::printf("%-8s  %-19s  %-12s  %10s  %s (%s)\n", s.short_id().c_str(), format_time_ns(s.time_ns).c_str(),
                  s.host.c_str(), format_size(s.stats.total_bytes).c_str(), s.name.c_str(), content.c_str());
    }
  });
}

void add_info(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("info", "Sizes and deduplication of a repository, or one snapshot (REPO::NAME)");
  auto a = std::make_shared<RepoArgs>();
  cmd->add_option("repo", a->repo, "REPO or REPO::NAME")->required();
  add_passphrase_options(cmd, a->pass);
  add_json_flag(cmd, ctx);
  cmd->callback([&ctx, a] {
    auto [repo_path, name] = split_repo_ref(a->repo, false);
    auto repo = open_repo(repo_path, a->pass);
    if (!name.empty()) {
      std::vector<Snapshot> all = load_snapshots(*repo);
      const Snapshot& s = resolve_snapshot(all, name);
      if (ctx.json) {
        Json j = snapshot_summary_json(s);
        Json images = Json::array();
        for (const ImageRecord& i : s.images) images.push_back(image_json(i));
        j["images"] = images;
        j["parent"] = s.parent;
        j["arche-version"] = s.arche_version;
        j["stats"] = stats_json(s.stats);
        print_json(j);
        return;
      }
      std::printf("snapshot: %s (%s)\ntime: %s\nhost: %s\nuser: %s\n", s.name.c_str(), s.id.c_str(),
                  format_time_ns(s.time_ns).c_str(), s.host.c_str(), s.user.c_str());
      if (!s.tags.empty()) {
        std::string tags;
        for (const std::string& t : s.tags) tags += (tags.empty() ? "" : ", ") + t;
        std::printf("tags: %s\n", tags.c_str());
      }
      for (const ImageRecord& i : s.images)
        std::printf("image: %s (%s, %s, from %s) %s allocated, %s read%s\n", i.name.c_str(), i.format.c_str(),
                    format_size(i.size).c_str(), i.source.c_str(), format_size(i.allocated_bytes).c_str(),
                    format_size(i.bytes_read).c_str(), i.incremental_from.empty() ? "" : ", incremental");
      for (const std::string& p : s.paths) std::printf("path: %s\n", p.c_str());
      std::printf("size: %s; %llu files, %llu directories\nadded: %s new data, %s stored; took %.2f s\n",
                  format_size(s.stats.total_bytes).c_str(), static_cast<unsigned long long>(s.stats.files),
                  static_cast<unsigned long long>(s.stats.dirs), format_size(s.stats.new_bytes).c_str(),
                  format_size(s.stats.stored_bytes).c_str(), s.stats.seconds);
      return;
    }
    RepoInfo info = repository_info(*repo);
    const RepoSettings& st = repo->settings();
    if (ctx.json) {
      print_json(Json{{"repository", repo->root()},
                      {"id", repo->id().hex()},
                      {"format-version", fmt::format("{}.{}", repo->header().major, repo->header().minor)},
                      {"snapshots", info.snapshots},
                      {"packs", info.packs},
                      {"pack-bytes", info.pack_bytes},
                      {"chunks", info.chunks},
                      {"chunk-bytes", info.chunk_bytes},
                      {"logical-bytes", info.logical_bytes},
                      {"dedup-ratio", info.dedup_ratio()},
                      {"compression-ratio", info.compression_ratio()},
                      {"index-files", info.index_files},
                      {"index-ram-bytes", info.chunks * ChunkIndex::kBytesPerEntry},
                      {"key-slots", info.key_slots},
                      {"image-chunk-size", st.image_chunk_size},
                      {"file-chunk-sizes", {st.cdc_min, st.cdc_avg, st.cdc_max}},
                      {"compression-level", st.compression_level},
                      {"pack-size", st.pack_size}});
      return;
    }
    std::printf("repository: %s\nid: %s (format %u.%u)\nsnapshots: %llu\n", repo->root().c_str(),
                repo->id().hex().c_str(), repo->header().major, repo->header().minor,
                static_cast<unsigned long long>(info.snapshots));
    std::printf("original size of all snapshots: %s\nunique data: %s in %llu chunks\nstored: %s in %llu packs\n",
                format_size(info.logical_bytes).c_str(), format_size(info.chunk_bytes).c_str(),
                static_cast<unsigned long long>(info.chunks), format_size(info.pack_bytes).c_str(),
                static_cast<unsigned long long>(info.packs));
    std::printf("deduplication ratio: %s, compression ratio: %s\n", ratio(info.dedup_ratio()).c_str(),
                ratio(info.compression_ratio()).c_str());
    std::printf("chunks: images %s fixed, files %s/%s/%s (FastCDC); zstd level %d; key slots: %llu\n",
                format_size(st.image_chunk_size).c_str(), format_size(st.cdc_min).c_str(),
                format_size(st.cdc_avg).c_str(), format_size(st.cdc_max).c_str(), st.compression_level,
                static_cast<unsigned long long>(info.key_slots));
  });
}

struct DiffArgs {
  std::string first;
  std::vector<std::string> rest;
  PassArgs pass;
};

void add_diff(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("diff", "What changed between two snapshots: diff REPO::A B (or REPO A B)");
  auto a = std::make_shared<DiffArgs>();
  cmd->add_option("first", a->first, "REPO::A (or REPO)")->required();
  cmd->add_option("snapshots", a->rest, "B (or A B)")->required();
  add_passphrase_options(cmd, a->pass);
  add_json_flag(cmd, ctx);
  cmd->callback([&ctx, a] {
    std::string repo_path, name_a, name_b;
    if (a->first.find("::") != std::string::npos) {
      std::tie(repo_path, name_a) = split_repo_ref(a->first, true);
      if (a->rest.size() != 1) fail(ErrorCategory::usage, "diff REPO::A B: give one more snapshot");
      name_b = a->rest[0];
    } else {
      repo_path = a->first;
      if (a->rest.size() != 2) fail(ErrorCategory::usage, "diff REPO A B: give two snapshots");
      name_a = a->rest[0];
      name_b = a->rest[1];
    }
    auto repo = open_repo(repo_path, a->pass);
    repo->load_index(false);
    std::vector<Snapshot> all = load_snapshots(*repo);
    const Snapshot& sa = resolve_snapshot(all, name_a);
    const Snapshot& sb = resolve_snapshot(all, name_b);
    DiffResult d = diff_snapshots(*repo, sa, sb);
    if (ctx.json) {
      Json images = Json::array(), files = Json::array();
      for (const auto& i : d.images)
        images.push_back(Json{{"name", i.name}, {"change", std::string(1, i.change)}, {"chunks", i.chunks},
                              {"changed-chunks", i.changed_chunks}, {"changed-bytes", i.changed_bytes}});
      for (const auto& f : d.files) files.push_back(Json{{"change", std::string(1, f.change)}, {"path", f.path}});
      print_json(Json{{"a", sa.id}, {"b", sb.id}, {"images", images}, {"files", files}});
      return;
    }
    for (const auto& i : d.images) {
      if (i.change == 'M')
        std::printf("M image %s: %llu of %llu chunks differ (%s)\n", i.name.c_str(),
                    static_cast<unsigned long long>(i.changed_chunks), static_cast<unsigned long long>(i.chunks),
                    format_size(i.changed_bytes).c_str());
      else
        std::printf("%c image %s\n", i.change, i.name.c_str());
    }
    for (const auto& f : d.files) std::printf("%c %s\n", f.change, f.path.c_str());
  });
}

// ---- prune, forget ----------------------------------------------------------------

struct PruneArgs {
  std::string repo, within, prefix;
  int last = 0, hourly = 0, daily = 0, weekly = 0, monthly = 0, yearly = 0;
  bool dry_run = false;
  double threshold = 0.2;
  PassArgs pass;
};

void add_prune(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("prune", "Remove snapshots a retention policy does not keep, and free their space");
  auto a = std::make_shared<PruneArgs>();
  cmd->add_option("repo", a->repo, "Repository")->required();
  cmd->add_option("--keep-last", a->last, "Keep the N newest snapshots");
  cmd->add_option("--keep-hourly", a->hourly, "Keep the newest snapshot of each of the last N hours");
  cmd->add_option("--keep-daily", a->daily, "... of each of the last N days");
  cmd->add_option("--keep-weekly", a->weekly, "... of each of the last N (ISO) weeks");
  cmd->add_option("--keep-monthly", a->monthly, "... of each of the last N months");
  cmd->add_option("--keep-yearly", a->yearly, "... of each of the last N years");
  cmd->add_option("--keep-within", a->within, "Keep everything within this time of the newest snapshot (7d, 2w, 1y6m)");
  cmd->add_option("--prefix", a->prefix, "Only consider snapshots whose name starts with this");
  cmd->add_option("--repack-threshold", a->threshold, "Repack packs with more than this share unused (0..1)")
      ->capture_default_str();
  cmd->add_flag("-n,--dry-run", a->dry_run, "Only show what would be removed");
  add_passphrase_options(cmd, a->pass);
  add_json_flag(cmd, ctx);
  cmd->callback([&ctx, a] {
    quiet_if_json(ctx);
    PruneOptions o;
    o.policy = {a->last, a->hourly, a->daily, a->weekly, a->monthly, a->yearly,
                a->within.empty() ? 0 : parse_duration(a->within)};
    if (o.policy.empty()) fail(ErrorCategory::usage, "prune: give at least one --keep-... rule");
    if (a->threshold < 0 || a->threshold > 1) fail(ErrorCategory::usage, "--repack-threshold must be within 0..1");
    o.prefix = a->prefix;
    o.dry_run = a->dry_run;
    o.repack_threshold = a->threshold;
    auto repo = open_repo(a->repo, a->pass);
    PruneReport r = prune(*repo, o);
    if (ctx.json) {
      Json kept = Json::array(), removed = Json::array();
      for (size_t i = 0; i < r.kept.size(); ++i) {
        Json j = snapshot_summary_json(r.kept[i]);
        j["reasons"] = r.kept_reasons[i];
        kept.push_back(j);
      }
      for (const Snapshot& s : r.removed) removed.push_back(snapshot_summary_json(s));
      print_json(Json{{"dry-run", a->dry_run}, {"kept", kept}, {"removed", removed},
                      {"packs-deleted", r.packs_deleted}, {"packs-repacked", r.packs_repacked},
                      {"packs-written", r.packs_written}, {"bytes-freed", r.bytes_freed},
                      {"bytes-repacked", r.bytes_repacked}});
      return;
    }
    for (size_t i = 0; i < r.kept.size(); ++i) {
      std::string why;
      for (const std::string& w : r.kept_reasons[i]) why += (why.empty() ? "" : ", ") + w;
      say(ctx, fmt::format("keep    {}  {}  {} ({})", r.kept[i].short_id(), format_time_ns(r.kept[i].time_ns),
                           r.kept[i].name, why));
    }
    for (const Snapshot& s : r.removed)
      say(ctx, fmt::format("{}  {}  {}  {}", a->dry_run ? "would remove" : "remove ", s.short_id(),
                           format_time_ns(s.time_ns), s.name));
    if (a->dry_run) {
      say(ctx, fmt::format("dry run: {} would be removed, {} would be freed",
                           count(r.removed.size(), "snapshot", "snapshots"),
                           format_size(r.bytes_freed)));
      return;
    }
    say(ctx, fmt::format("removed {}; deleted {}, repacked {} ({} copied); {} freed",
                         count(r.removed.size(), "snapshot", "snapshots"), count(r.packs_deleted, "pack", "packs"), r.packs_repacked, format_size(r.bytes_repacked), format_size(r.bytes_freed)));
  });
}

struct ForgetArgs {
  std::string target;
  PassArgs pass;
};

void add_forget(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("forget", "Remove one snapshot (its space is freed by the next prune)");
  auto a = std::make_shared<ForgetArgs>();
  cmd->add_option("target", a->target, "REPO::NAME")->required();
  add_passphrase_options(cmd, a->pass);
  cmd->callback([&ctx, a] {
    auto [repo_path, name] = split_repo_ref(a->target, true);
    auto repo = open_repo(repo_path, a->pass);
    forget_snapshot(*repo, name);
    say(ctx, fmt::format("removed snapshot {} (run prune to free its space)", name));
  });
}

// ---- check, repair, unlock -------------------------------------------------------

struct CheckArgs {
  std::string repo;
  bool read_data = false;
  unsigned threads = 0;
  PassArgs pass;
};

void add_check(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("check", "Verify the repository's structure (and with --read-data every chunk)");
  auto a = std::make_shared<CheckArgs>();
  cmd->add_option("repo", a->repo, "Repository")->required();
  cmd->add_flag("--read-data", a->read_data, "Read, decrypt and verify every chunk");
  cmd->add_option("-j,--threads", a->threads, "Worker threads (default: one per core)");
  add_passphrase_options(cmd, a->pass);
  add_json_flag(cmd, ctx);
  cmd->footer("Exit status: 0 no errors, 2 errors found (damaged or missing data).");
  cmd->callback([&ctx, a] {
    quiet_if_json(ctx);
    auto repo = open_repo(a->repo, a->pass);
    CheckOptions o;
    o.read_data = a->read_data;
    o.threads = a->threads;
    CheckReport r = check_repository(*repo, o);
    ctx.exit_code = r.ok() ? 0 : 2;
    if (ctx.json) {
      Json damaged = Json::array();
      for (const DamagedChunk& d : r.damaged)
        damaged.push_back(Json{{"chunk", d.id.hex()}, {"pack", d.pack.hex()}, {"offset", d.offset},
                               {"error", d.error}, {"affects", d.affects}});
      print_json(Json{{"ok", r.ok()}, {"errors", r.errors}, {"notes", r.notes}, {"damaged-chunks", damaged},
                      {"snapshots", r.snapshots}, {"packs", r.packs}, {"chunks", r.chunks},
                      {"bytes-verified", r.bytes_verified}});
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
    std::printf("%llu snapshots, %llu packs, %llu chunks%s: %s\n", static_cast<unsigned long long>(r.snapshots),
                static_cast<unsigned long long>(r.packs), static_cast<unsigned long long>(r.chunks),
                a->read_data ? fmt::format(", {} verified", format_size(r.bytes_verified)).c_str() : "",
                r.ok() ? "no errors found" : fmt::format("{} errors", r.errors.size() + r.damaged.size()).c_str());
  });
}

void add_repair(CLI::App& group, Context& ctx) {
  auto* repair = group.add_subcommand("repair", "Repair the repository");
  repair->require_subcommand(1);
  auto* cmd = repair->add_subcommand("index", "Rebuild the index from the packs");
  auto a = std::make_shared<RepoArgs>();
  cmd->add_option("repo", a->repo, "Repository")->required();
  add_passphrase_options(cmd, a->pass);
  add_json_flag(cmd, ctx);
  cmd->callback([&ctx, a] {
    quiet_if_json(ctx);
    auto repo = open_repo(a->repo, a->pass);
    RepairReport r = repair_index(*repo);
    if (ctx.json) {
      print_json(Json{{"packs", r.packs}, {"chunks", r.chunks}, {"scanned-packs", r.scanned_packs},
                      {"unreadable-packs", r.unreadable}, {"replaced-index-files", r.replaced_index_files}});
      return;
    }
    for (const std::string& u : r.unreadable) say(ctx, "left out: " + u);
    say(ctx, fmt::format("index rebuilt: {} chunks in {} packs ({} read by scanning); {} index files replaced",
                         r.chunks, r.packs, r.scanned_packs, r.replaced_index_files));
  });
}

struct UnlockArgs {
  std::string repo;
  bool all = false;
  PassArgs pass;
};

void add_unlock(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("unlock", "Remove stale locks (of processes that are gone)");
  auto a = std::make_shared<UnlockArgs>();
  cmd->add_option("repo", a->repo, "Repository")->required();
  cmd->add_flag("--all", a->all, "Remove every lock, also of running processes (dangerous)");
  add_passphrase_options(cmd, a->pass);
  add_json_flag(cmd, ctx);
  cmd->callback([&ctx, a] {
    auto repo = open_repo(a->repo, a->pass);
    std::vector<LockInfo> removed = remove_locks(*repo, a->all);
    if (ctx.json) {
      Json list = Json::array();
      for (const LockInfo& l : removed) list.push_back(l.describe());
      print_json(Json{{"removed", list}});
      return;
    }
    for (const LockInfo& l : removed) say(ctx, "removed " + l.describe());
    say(ctx, fmt::format("{} lock{} removed", removed.size(), removed.size() == 1 ? "" : "s"));
  });
}

// ---- key ----------------------------------------------------------------------------

struct KeyArgs {
  std::string repo, slot, new_file, new_command, kdf_memory;
  uint64_t kdf_ops = 3;
  PassArgs pass;
};

PassphraseSource new_source(const KeyArgs& a) {
  PassphraseSource s;
  s.file = a.new_file;
  s.command = a.new_command;
  s.env = "ARCHE_NEW_PASSPHRASE";
  s.prompt = "new passphrase for " + a.repo + ": ";
  return s;
}

KdfParams kdf_of(const KeyArgs& a) {
  KdfParams k;
  if (!a.kdf_memory.empty()) k.memlimit = parse_size(a.kdf_memory, "kdf memory");
  k.opslimit = a.kdf_ops;
  return k;
}

void add_new_passphrase_options(CLI::App* cmd, KeyArgs& a) {
  cmd->add_option("--new-passphrase-file", a.new_file, "Read the new passphrase from FILE (or $ARCHE_NEW_PASSPHRASE)");
  cmd->add_option("--new-passphrase-command", a.new_command, "Run CMD and use its output as the new passphrase");
  cmd->add_option("--kdf-memory", a.kdf_memory, "Memory of argon2id for the new slot (default 32M)");
  cmd->add_option("--kdf-ops", a.kdf_ops, "Passes of argon2id for the new slot")->capture_default_str();
}

void add_key(CLI::App& group, Context& ctx) {
  auto* key = group.add_subcommand("key", "Manage the passphrases (key slots) of a repository");
  key->require_subcommand(1);

  auto* add = key->add_subcommand("add", "Add a passphrase (a new key slot)");
  auto aa = std::make_shared<KeyArgs>();
  add->add_option("repo", aa->repo, "Repository")->required();
  add_passphrase_options(add, aa->pass);
  add_new_passphrase_options(add, *aa);
  add->callback([&ctx, aa] {
    auto repo = open_repo(aa->repo, aa->pass);
    SecretBytes pass = read_new_passphrase(new_source(*aa));
    std::string name = repo->add_key_slot(pass.span(), kdf_of(*aa));
    say(ctx, "added key slot " + name);
  });

  auto* remove = key->add_subcommand("remove", "Remove a key slot (never the last one)");
  auto ar = std::make_shared<KeyArgs>();
  remove->add_option("repo", ar->repo, "Repository")->required();
  remove->add_option("slot", ar->slot, "The slot (arche backup key list)")->required();
  add_passphrase_options(remove, ar->pass);
  remove->callback([&ctx, ar] {
    auto repo = open_repo(ar->repo, ar->pass);
    repo->remove_key_slot(ar->slot);
    say(ctx, "removed key slot " + ar->slot);
  });

  auto* change = key->add_subcommand("change-passphrase", "Replace the passphrase that opens the repository");
  auto ac = std::make_shared<KeyArgs>();
  change->add_option("repo", ac->repo, "Repository")->required();
  add_passphrase_options(change, ac->pass);
  add_new_passphrase_options(change, *ac);
  change->callback([&ctx, ac] {
    auto repo = open_repo(ac->repo, ac->pass);
    SecretBytes pass = read_new_passphrase(new_source(*ac));
    // The new slot is durable before the old one goes: never a moment without a key.
    std::string name = repo->add_key_slot(pass.span(), kdf_of(*ac));
    repo->remove_key_slot(repo->opened_slot());
    say(ctx, fmt::format("passphrase changed (key slot {} replaced by {})", repo->opened_slot(), name));
  });

  auto* list = key->add_subcommand("list", "List the key slots");
  auto al = std::make_shared<KeyArgs>();
  list->add_option("repo", al->repo, "Repository")->required();
  add_passphrase_options(list, al->pass);
  add_json_flag(list, ctx);
  list->callback([&ctx, al] {
    auto repo = open_repo(al->repo, al->pass);
    Json slots = Json::array();
    for (const auto& [name, slot] : repo->key_slots()) {
      slots.push_back(Json{{"slot", name},
                           {"created", format_time_ns(static_cast<int64_t>(slot.created) * 1000000000)},
                           {"kdf", "argon2id"},
                           {"ops", slot.kdf.opslimit},
                           {"memory", slot.kdf.memlimit},
                           {"current", name == repo->opened_slot()}});
      if (!ctx.json)
        std::printf("%s  %s  argon2id ops=%llu memory=%s%s\n", name.c_str(),
                    format_time_ns(static_cast<int64_t>(slot.created) * 1000000000).c_str(),
                    static_cast<unsigned long long>(slot.kdf.opslimit), format_size(slot.kdf.memlimit).c_str(),
                    name == repo->opened_slot() ? "  (this passphrase)" : "");
    }
    if (ctx.json) print_json(slots);
  });
}

}  // namespace

void register_backup_commands(CLI::App& app, Context& ctx) {
  auto* group = app.add_subcommand("backup", "Encrypted, deduplicating backups of disk images and files");
  group->require_subcommand(1);
  add_init(*group, ctx);
  add_create(*group, ctx);
  add_restore(*group, ctx);
  add_list(*group, ctx);
  add_info(*group, ctx);
  add_diff(*group, ctx);
  add_prune(*group, ctx);
  add_forget(*group, ctx);
  add_check(*group, ctx);
  add_repair(*group, ctx);
  add_unlock(*group, ctx);
  add_key(*group, ctx);
}

}  // namespace arche::cli
