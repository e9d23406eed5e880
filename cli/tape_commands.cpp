// `arche tape ...`: archiving backup snapshots to tapes (tape/, docs/tape.md). A
// DEVICE is /dev/nstN or vtape:DIR. This file parses the arguments and calls tape/;
// what is printed is in cli/tape_output.cpp.
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "backup/passphrase.h"
#include "cli/backup_cli.h"
#include "cli/command.h"
#include "cli/tape_output.h"
#include "core/error.h"
#include "core/progress.h"
#include "core/units.h"
#include "tape/catalog.h"
#include "tape/file_restore.h"
#include "tape/labelling.h"
#include "tape/library.h"
#include "tape/tape_backup.h"
#include "tape/tape_read.h"

namespace arche::cli {

namespace {

namespace out = tape_output;
using backup_cli::PassArgs;

// What every tape command takes besides its own options.
struct Common {
  std::string device, catalog, changer;
};

void add_common(CLI::App* cmd, Common& c, bool device_option) {
  if (device_option) cmd->add_option("--device", c.device, "/dev/nstN or vtape:DIR")->required();
  cmd->add_option("--catalog", c.catalog,
                  "Catalog directory (default $ARCHE_TAPE_CATALOG or ~/.local/state/arche/tape)");
  cmd->add_option("--changer-command", c.changer,
                  "Run to load the next tape into a real drive (sh -c; $ARCHE_TAPE_LABEL names the tape, empty: any)");
}

std::string catalog_dir(const Common& c) { return c.catalog.empty() ? tape::default_catalog_dir() : c.catalog; }
std::unique_ptr<tape::Library> library(const Common& c) { return tape::open_library(c.device, c.changer); }
int64_t now() { return static_cast<int64_t>(std::time(nullptr)); }

void add_label(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("label", "Write a media label on a tape (vtape: make the cartridge)");
  auto c = std::make_shared<Common>();
  auto r = std::make_shared<tape::LabelRequest>();
  auto capacity = std::make_shared<std::string>(), warning = std::make_shared<std::string>(),
       record = std::make_shared<std::string>();
  cmd->add_option("device", c->device, "/dev/nstN or vtape:DIR")->required();
  cmd->add_option("--pool", r->pool, "The media pool the tape belongs to")->required();
  cmd->add_option("--label", r->label, "The tape's label (vtape: the cartridge's name)")->required();
  cmd->add_option("--capacity", *capacity, "vtape: the cartridge's capacity (default 1T)");
  cmd->add_option("--early-warning", *warning, "vtape: the early-warning zone before its end (default 1G)");
  cmd->add_option("--record-size", *record, "Bytes per tape record (default 256K)");
  cmd->add_flag("--force", r->force, "Overwrite a tape whose media set has not expired");
  add_common(cmd, *c, false);
  add_json_flag(cmd, ctx);
  cmd->callback([&ctx, c, r, capacity, warning, record] {
    if (!capacity->empty()) r->cartridge.capacity = parse_size(*capacity, "capacity");
    if (!warning->empty()) r->cartridge.early_warning = parse_size(*warning, "early warning");
    if (!record->empty()) r->record_size = static_cast<uint32_t>(parse_size(*record, "record size"));
    r->now = now();
    tape::CatalogFileStore disk(catalog_dir(*c));
    tape::Catalog catalog = disk.load();
    auto lib = library(*c);
    const tape::MediaLabel l = tape::label_tape(*lib, catalog, *r);
    disk.save(catalog);
    out::show_labelled(ctx, l, c->device);
  });
}

void add_status(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("status", "Show the drive, its tape's label and what the catalog knows of it");
  auto c = std::make_shared<Common>();
  cmd->add_option("device", c->device, "/dev/nstN or vtape:DIR")->required();
  add_common(cmd, *c, false);
  add_json_flag(cmd, ctx);
  cmd->callback([&ctx, c] {
    tape::CatalogFileStore disk(catalog_dir(*c));
    const tape::Catalog catalog = disk.load();
    auto lib = library(*c);
    out::show_status(ctx, tape::tape_status(*lib, catalog));
  });
}

void add_backup(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("backup", "Copy snapshots of a repository to a media set of a pool");
  auto c = std::make_shared<Common>();
  auto targets = std::make_shared<std::vector<std::string>>();
  auto o = std::make_shared<tape::TapeBackupOptions>();
  auto archive = std::make_shared<std::string>(), record = std::make_shared<std::string>(),
       every = std::make_shared<std::string>();
  auto pass = std::make_shared<PassArgs>();
  cmd->add_option("snapshots", *targets, "REPO::NAME (name, latest or id prefix), one or more of one repository")
      ->required();
  cmd->add_option("--pool", o->set.pool, "The media pool")->required();
  cmd->add_flag("--new-set", o->set.new_set, "Start a new media set (default: continue the pool's current one)");
  cmd->add_option("--new-set-every", *every,
                  "Start a new media set with the first backup of each day, week (from Monday) or month")
      ->check(CLI::IsMember({"day", "week", "month"}));
  cmd->add_option("--retention", o->set.retention_days,
                  "Days after its last write before a new set's tapes may be overwritten")
      ->capture_default_str();
  cmd->add_option("--archive-size", *archive, "Close a chunk archive (tape file) after this many bytes (default 4G)");
  cmd->add_option("--record-size", *record, "Bytes per tape record of a new set (default 256K)");
  add_common(cmd, *c, true);
  backup_cli::add_passphrase_options(cmd, *pass);
  add_json_flag(cmd, ctx);
  cmd->callback([&ctx, c, targets, o, archive, record, every, pass] {
    backup_cli::quiet_if_json(ctx);
    std::string repo_url;
    std::vector<std::string> names;
    for (const std::string& t : *targets) {
      auto [repo, name] = backup_cli::split_target(t, true);
      if (!repo_url.empty() && repo != repo_url) fail(ErrorCategory::usage, "all snapshots must be of one repository");
      repo_url = repo;
      names.push_back(name);
    }
    if (!archive->empty()) o->archive_size = parse_size(*archive, "archive size");
    if (!every->empty()) o->set.new_set_every = tape::parse_new_set_every(*every);
    if (!record->empty()) o->set.record_size = static_cast<uint32_t>(parse_size(*record, "record size"));
    o->set.now = now();
    auto repo = backup_cli::open_repo(repo_url, *pass);
    tape::CatalogFileStore disk(catalog_dir(*c));
    tape::Catalog catalog = disk.load();
    auto lib = library(*c);
    ctx.if_interrupted = "the tape holds what was written so far without its catalog; the catalog on disk is unchanged";
    Progress progress("tape backup", 0);
    const tape::TapeBackupReport r = tape::tape_backup(*repo, names, *lib, catalog, disk, *o, &progress);
    progress.finish();
    out::show_backup(ctx, r);
  });
}

void add_list(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("list", "List the snapshots on tape (from the catalog)");
  auto c = std::make_shared<Common>();
  auto pool = std::make_shared<std::string>();
  cmd->add_option("--pool", *pool, "Only this pool's");
  cmd->add_option("--catalog", c->catalog,
                  "Catalog directory (default $ARCHE_TAPE_CATALOG or ~/.local/state/arche/tape)");
  add_json_flag(cmd, ctx);
  cmd->callback([&ctx, c, pool] {
    tape::CatalogFileStore disk(catalog_dir(*c));
    out::show_list(ctx, disk.load(), *pool);
  });
}

void add_restore(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("restore", "Restore a snapshot from tape into a repository (any store)");
  auto c = std::make_shared<Common>();
  auto snapshot = std::make_shared<std::string>(), to = std::make_shared<std::string>();
  cmd->add_option("--snapshot", *snapshot, "Name (the newest of that name) or id prefix")->required();
  cmd->add_option("--to", *to, "Repository to restore into (created when missing; else the same repository)")
      ->required();
  add_common(cmd, *c, true);
  add_json_flag(cmd, ctx);
  cmd->callback([&ctx, c, snapshot, to] {
    backup_cli::quiet_if_json(ctx);
    tape::CatalogFileStore disk(catalog_dir(*c));
    const tape::Catalog catalog = disk.load();
    auto lib = library(*c);
    ctx.if_interrupted = "the packs restored so far are in the target, unindexed; the snapshot is not";
    Progress progress("tape restore", 0);
    const tape::TapeRestoreReport r = tape::restore_snapshot(*lib, catalog, *snapshot, *to, &progress);
    progress.finish();
    out::show_restored(ctx, r);
  });
}

void add_restore_file(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("restore-file",
                                   "Restore one path of a file backup from tape, reading only the tape files it needs");
  auto c = std::make_shared<Common>();
  auto snapshot = std::make_shared<std::string>(), path = std::make_shared<std::string>(),
       to = std::make_shared<std::string>();
  auto pass = std::make_shared<PassArgs>();
  cmd->add_option("--snapshot", *snapshot, "Name (the newest of that name) or id prefix")->required();
  cmd->add_option("path", *path, "The path in the snapshot (a file or a directory)")->required();
  cmd->add_option("--to", *to, "Directory to restore below (the path is recreated inside it)")->required();
  add_common(cmd, *c, true);
  backup_cli::add_passphrase_options(cmd, *pass);
  add_json_flag(cmd, ctx);
  cmd->callback([&ctx, c, snapshot, path, to, pass] {
    backup_cli::quiet_if_json(ctx);
    tape::CatalogFileStore disk(catalog_dir(*c));
    const tape::Catalog catalog = disk.load();
    auto lib = library(*c);
    backup::SecretBytes secret =
        backup::read_passphrase(backup_cli::passphrase_source(*pass, "tape snapshot " + *snapshot));
    Progress progress("tape restore-file", 0);
    const tape::TapeFileRestoreReport r =
        tape::restore_file_from_tape(*lib, catalog, *snapshot, *path, *to, secret.span(), &progress);
    progress.finish();
    out::show_file_restored(ctx, r);
  });
}

void add_restore_image(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand(
      "restore-image", "Restore one image of an image backup from tape to a file, reading only the tape files it needs");
  struct Args {
    Common c;
    std::string snapshot, image, to;
    backup::ImageRestoreOptions options;
    PassArgs pass;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--snapshot", a->snapshot, "Name (the newest of that name) or id prefix")->required();
  cmd->add_option("--image", a->image, "The image to restore (its file name at backup time; default: the only one)");
  cmd->add_option("--to", a->to, "The file (or, with --overwrite, block device) to write")->required();
  cmd->add_option("-O,--output-format", a->options.format, "Format of the restored image: raw or qcow2")
      ->check(CLI::IsMember({"raw", "qcow2"}))
      ->capture_default_str();
  cmd->add_flag("--overwrite", a->options.overwrite, "Replace an existing file (and allow writing onto a block device)");
  cmd->add_flag("--sync", a->options.sync, "fsync the restored image before it appears under its name");
  add_common(cmd, a->c, true);
  backup_cli::add_passphrase_options(cmd, a->pass);
  add_json_flag(cmd, ctx);
  cmd->callback([&ctx, a] {
    backup_cli::quiet_if_json(ctx);
    tape::CatalogFileStore disk(catalog_dir(a->c));
    const tape::Catalog catalog = disk.load();
    auto lib = library(a->c);
    backup::SecretBytes secret =
        backup::read_passphrase(backup_cli::passphrase_source(a->pass, "tape snapshot " + a->snapshot));
    Progress progress("tape restore-image", 0);
    const tape::TapeImageRestoreReport r = tape::restore_image_from_tape(*lib, catalog, a->snapshot, a->image, a->to,
                                                                         a->options, secret.span(), &progress);
    progress.finish();
    out::show_image_restored(ctx, r, a->options.format);
  });
}

void add_catalog(CLI::App& group, Context& ctx) {
  auto* cat = group.add_subcommand("catalog", "The tape catalog");
  cat->require_subcommand(1);
  auto* cmd = cat->add_subcommand("rebuild", "Rebuild the catalog from the tapes alone (vtape: every cartridge)");
  auto c = std::make_shared<Common>();
  add_common(cmd, *c, true);
  add_json_flag(cmd, ctx);
  cmd->callback([&ctx, c] {
    tape::CatalogFileStore disk(catalog_dir(*c));
    tape::Catalog catalog = disk.load();
    auto lib = library(*c);
    std::vector<std::string> notes;
    const tape::Catalog rebuilt = tape::rebuild_catalog(*lib, &notes);
    catalog.merge(rebuilt);
    disk.save(catalog);
    out::show_rebuilt(ctx, catalog, disk.dir(), notes);
  });
}

void add_verify(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("verify", "Read every record of the tapes and check it (CRC32C, sequence, catalog)");
  auto c = std::make_shared<Common>();
  add_common(cmd, *c, true);
  add_json_flag(cmd, ctx);
  cmd->footer("Exit status: 0 all good, 2 damaged records or objects missing.");
  cmd->callback([&ctx, c] {
    backup_cli::quiet_if_json(ctx);
    tape::CatalogFileStore disk(catalog_dir(*c));
    const tape::Catalog catalog = disk.load();
    auto lib = library(*c);
    Progress progress("tape verify", 0);
    const tape::VerifyReport r = tape::verify_tapes(*lib, catalog, &progress);
    progress.finish();
    ctx.exit_code = r.damaged.empty() && r.missing.empty() ? 0 : 2;
    out::show_verified(ctx, r);
  });
}

}  // namespace

void register_tape_commands(CLI::App& app, Context& ctx) {
  CLI::App* group =
      app.add_subcommand("tape", "Tapes: label, status, backup, list, restore, restore-file, restore-image, catalog rebuild, verify");
  group->require_subcommand(1);
  add_label(*group, ctx);
  add_status(*group, ctx);
  add_backup(*group, ctx);
  add_list(*group, ctx);
  add_restore(*group, ctx);
  add_restore_file(*group, ctx);
  add_restore_image(*group, ctx);
  add_catalog(*group, ctx);
  add_verify(*group, ctx);
}

}  // namespace arche::cli
