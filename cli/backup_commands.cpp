// `arche backup ...`: the encrypted, deduplicating backup repository (docs/backup.md).
// This file registers the group, holds what every backup command shares (repository
// and passphrase arguments) and the commands that move data: init, create, restore.
// Passphrases come from files, commands or the environment (backup/passphrase.h),
// never from the command line.
#include <fmt/format.h>

#include <climits>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "backup/create.h"
#include "backup/restore.h"
#include "backup/store.h"
#include "cli/backup_cli.h"
#include "cli/backup_print.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "core/progress.h"
#include "core/units.h"

namespace arche::cli {

namespace backup_cli {

using namespace arche::backup;

void add_passphrase_options(CLI::App* cmd, PassArgs& a) {
  cmd->add_option("--passphrase-file", a.file,
                  "Read the passphrase from FILE (default: $ARCHE_PASSPHRASE_FILE, $ARCHE_PASSPHRASE_COMMAND, "
                  "$ARCHE_PASSPHRASE or a prompt)");
  cmd->add_option("--passphrase-command", a.command, "Run CMD (sh -c) and use its output as the passphrase");
}

PassphraseSource passphrase_source(const PassArgs& a, const std::string& repo) {
  PassphraseSource s;
  s.file = a.file;
  s.command = a.command;
  s.prompt = "passphrase for " + repo + ": ";
  return s;
}

void add_new_passphrase_options(CLI::App* cmd, NewPassArgs& a) {
  cmd->add_option("--new-passphrase-file", a.file, "Read the new passphrase from FILE (or $ARCHE_NEW_PASSPHRASE)");
  cmd->add_option("--new-passphrase-command", a.command, "Run CMD and use its output as the new passphrase");
}

PassphraseSource new_passphrase_source(const NewPassArgs& a, const std::string& repo) {
  return backup::new_passphrase_source(a.file, a.command, "new passphrase for " + repo + ": ");
}

void add_repo_argument(CLI::App* cmd, std::string& repo, const std::string& help) {
  cmd->add_option("repo", repo, help);
}

std::string repo_or_default(const std::string& repo) {
  if (!repo.empty()) return repo;
  const char* env = std::getenv("ARCHE_REPO");
  if (!env || !*env) fail(ErrorCategory::usage, "no repository: give REPO, or set ARCHE_REPO");
  return env;
}

std::pair<std::string, std::string> split_target(const std::string& text, bool name_required) {
  if (text.compare(0, 2, "::") == 0) {
    if (name_required && text.size() == 2) fail(ErrorCategory::usage, "'{}': the snapshot name is empty", text);
    return {repo_or_default(""), text.substr(2)};
  }
  return split_repo_ref(text, name_required);
}

std::unique_ptr<Repository> open_repo(const std::string& repo, const PassArgs& a) {
  std::shared_ptr<Store> store = open_store(repo);
  Repository::read_header(*store);  // "not a repository" before asking for a passphrase
  SecretBytes pass = read_passphrase(passphrase_source(a, repo));
  return Repository::open(std::move(store), pass.span());
}

void quiet_if_json(const Context& ctx) {
  if (ctx.json) Progress::set_globally_disabled(true);
}

// ---- init -----------------------------------------------------------------------

namespace {

struct InitArgs {
  std::string repo, chunk_size, pack_size, kdf_memory;
  int compression = 1;
  uint64_t kdf_ops = 3;
  std::string same_key_as;
  PassArgs pass;
  NewPassArgs new_pass;
};

// `init REPO --same-key-as SRC`: the ordinary sources give SRC's passphrase, which the
// replica keeps unless a new one is given.
void init_replica(const std::string& repo, const std::string& src, const PassArgs& pass, const NewPassArgs& new_pass,
                  const KdfParams& kdf) {
  std::shared_ptr<Store> src_store = open_store(src);
  Repository::read_header(*src_store);
  const SecretBytes src_pass = read_passphrase(passphrase_source(pass, src));
  auto source = Repository::open(std::move(src_store), src_pass.span());
  const PassphraseSource fresh = new_passphrase_source(new_pass, repo);
  if (passphrase_given(fresh)) {
    Repository::init_same_key(*create_store(repo), *source, read_new_passphrase(fresh).span(), kdf);
  } else {
    Repository::init_same_key(*create_store(repo), *source, src_pass.span(), kdf);
  }
}

}  // namespace

void add_init(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("init", "Create an encrypted repository");
  auto a = std::make_shared<InitArgs>();
  add_repo_argument(cmd, a->repo, "Directory of the new repository (default: $ARCHE_REPO)");
  cmd->add_option("--compression", a->compression, "Default zstd level of new chunks (-7..19)")->capture_default_str();
  cmd->add_option("--chunk-size", a->chunk_size, "Chunk size of disk images (64K..4M, default 1M)");
  cmd->add_option("--pack-size", a->pack_size, "Size at which packs are closed (1M..24M, default 16M)");
  cmd->add_option("--kdf-memory", a->kdf_memory, "Memory of argon2id per unlock (default 32M)");
  cmd->add_option("--kdf-ops", a->kdf_ops, "Passes of argon2id per unlock")->capture_default_str();
  cmd->add_option("--same-key-as", a->same_key_as,
                  "Make a replica of SRC (its id, key and settings) that backup copy fills with packs as they are");
  add_passphrase_options(cmd, a->pass);
  add_new_passphrase_options(cmd, a->new_pass);
  add_json_flag(cmd, ctx);
  cmd->footer("The passphrase of the new repository: --new-passphrase-file/-command or $ARCHE_NEW_PASSPHRASE if "
              "given, else --passphrase-file/-command, $ARCHE_PASSPHRASE... or a prompt asked twice. With "
              "--same-key-as the ordinary sources give SRC's passphrase, and the new repository keeps it unless a "
              "new one is given.");
  cmd->callback([&ctx, a] {
    const std::string repo = repo_or_default(a->repo);
    InitOptions o;
    o.settings.compression_level = a->compression;
    if (!a->chunk_size.empty()) o.settings.image_chunk_size = static_cast<uint32_t>(parse_size(a->chunk_size, "chunk size"));
    if (!a->pack_size.empty()) o.settings.pack_size = static_cast<uint32_t>(parse_size(a->pack_size, "pack size"));
    if (!a->kdf_memory.empty()) o.kdf.memlimit = parse_size(a->kdf_memory, "kdf memory");
    o.kdf.opslimit = a->kdf_ops;
    validate_settings(o.settings, ErrorCategory::usage);
    if (!a->same_key_as.empty()) {
      if (!a->chunk_size.empty() || !a->pack_size.empty())
        fail(ErrorCategory::usage, "--same-key-as takes the settings of {}: no --chunk-size or --pack-size", a->same_key_as);
      init_replica(repo, a->same_key_as, a->pass, a->new_pass, o.kdf);
    } else {
      PassphraseSource source = new_passphrase_source(a->new_pass, repo);
      if (!passphrase_given(source)) {
        source = passphrase_source(a->pass, repo);
        source.prompt = "new passphrase for " + repo + ": ";
      }
      Repository::init(repo, read_new_passphrase(source).span(), o);
    }
    RepoConfigHeader h = Repository::read_header(*open_store(repo));
    if (ctx.json) {
      print_json(Json{{"repository", repo}, {"id", h.repo_id.hex()}});
      return;
    }
    say(ctx, fmt::format("created repository {} (id {})", repo, h.repo_id.short_hex()));
    say(ctx, "Keep the passphrase safe: without it the backups cannot be read by anyone, including you.");
  });
}

// ---- create ---------------------------------------------------------------------

namespace {

struct CreateArgs {
  std::string target, parent;
  std::vector<std::string> images, paths, tags, excludes;
  int compression = INT32_MIN;
  bool no_incremental = false, one_file_system = false, force_share = false, dry_run = false;
  unsigned threads = 0;
  PassArgs pass;
};

}  // namespace

void add_create(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("create", "Back up disk images and/or files into a new snapshot");
  auto a = std::make_shared<CreateArgs>();
  cmd->add_option("target", a->target,
                  "REPO::NAME (::NAME with $ARCHE_REPO); NAME may hold {now}, {now:%Y-%m-%d}, {utcnow}, {hostname}, "
                  "{user}, {image}")
      ->required();
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
  cmd->add_flag("-n,--dry-run", a->dry_run, "Read and chunk everything and say what would be added; write nothing");
  cmd->add_option("-j,--threads", a->threads, "Worker threads (default: one per core)");
  add_passphrase_options(cmd, a->pass);
  add_json_flag(cmd, ctx);
  cmd->footer("Exit status 3: the snapshot was made, but some files could not be read (see the warnings).");
  cmd->callback([&ctx, a] {
    quiet_if_json(ctx);
    auto [repo_path, name] = split_target(a->target, true);
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
    o.dry_run = a->dry_run;
    o.threads = a->threads;
    Snapshot s = create_snapshot(*repo, o);
    if (s.stats.unreadable) ctx.exit_code = 3;
    print_created(ctx, s, a->dry_run);
  });
}

// ---- restore --------------------------------------------------------------------

namespace {

struct RestoreArgs {
  std::string target, image, to, format = "raw";
  std::vector<std::string> paths;
  bool overwrite = false, sync = false;
  unsigned threads = 0;
  PassArgs pass;
};

}  // namespace

void add_restore(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("restore", "Restore a disk image, or files, from a snapshot");
  auto a = std::make_shared<RestoreArgs>();
  cmd->add_option("target", a->target, "REPO::NAME or ::NAME (NAME may be 'latest' or an id prefix)")->required();
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
    auto [repo_path, name] = split_target(a->target, true);
    auto repo = open_repo(repo_path, a->pass);
    RestoreRequest r;
    r.snapshot = name;
    r.image = a->image;
    r.to = a->to;
    r.image_options.format = a->format;
    r.image_options.overwrite = a->overwrite;
    r.image_options.sync = a->sync;
    r.image_options.threads = a->threads;
    r.file_options.paths = a->paths;
    r.file_options.overwrite = a->overwrite;
    r.file_options.threads = a->threads;
    print_restored(ctx, restore_snapshot(*repo, r), a->to, a->format);
  });
}

}  // namespace backup_cli

void register_backup_commands(CLI::App& app, Context& ctx) {
  auto* group = app.add_subcommand("backup", "Encrypted, deduplicating backups of disk images and files");
  group->require_subcommand(1);
  // Before anything else: passphrases out of the environment (and /proc/PID/environ),
  // and Ctrl-C / SIGTERM as a clean stop of the work (core/interrupt.h).
  group->preparse_callback([](std::size_t) {
    backup::capture_passphrase_environment();
    interrupt::install_handlers();
  });
  using namespace backup_cli;
  add_init(*group, ctx);
  add_create(*group, ctx);
  add_restore(*group, ctx);
  add_copy(*group, ctx);
  add_ls(*group, ctx);
  add_restore_file(*group, ctx);
  add_mount(*group, ctx);
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
