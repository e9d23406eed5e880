// `arche backup ls | restore-file | mount`: looking into one snapshot's images and
// files without restoring them (backup/browse.h, docs/backup.md "Files out of
// backups"). The volume sandbox is started before the repository is opened: it is
// a copy of this process and must not hold the keys.
#include <fmt/format.h>

#include <memory>
#include <string>
#include <vector>

#include "backup/browse.h"
#include "backup/mount.h"
#include "cli/backup_browse_output.h"
#include "cli/backup_cli.h"
#include "core/error.h"
#include "volume/sandbox.h"

namespace arche::cli::backup_cli {

using namespace arche::backup;
namespace out = backup_browse_output;

namespace {

// Sandbox, then repository, then the snapshot under a shared lock.
struct OpenedSnapshot {
  std::unique_ptr<Repository> repo;
  std::unique_ptr<SnapshotBrowser> browser;
};

OpenedSnapshot open_snapshot(const std::string& target, const PassArgs& pass, const std::string& command) {
  std::unique_ptr<volume::Sandbox> sandbox = volume::Sandbox::start();
  auto [repo_path, name] = split_target(target, true);
  OpenedSnapshot o;
  o.repo = open_repo(repo_path, pass);
  o.browser = browse_snapshot(*o.repo, name, std::move(sandbox), command + " " + name);
  return o;
}

struct LsArgs {
  std::string target, path;
  PassArgs pass;
};

struct RestoreFileArgs {
  std::string target, to;
  std::vector<std::string> paths;
  bool overwrite = false, sync = false;
  PassArgs pass;
};

struct MountArgs {
  std::string repo, mountpoint;
  unsigned sandboxes = 8;
  PassArgs pass;
};

}  // namespace

void add_ls(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("ls", "List what a snapshot holds: images, partitions, directories, files");
  auto a = std::make_shared<LsArgs>();
  cmd->add_option("target", a->target, "REPO::NAME or ::NAME (NAME may be 'latest' or an id prefix)")->required();
  cmd->add_option("path", a->path,
                  "IMAGE, IMAGE/p1/DIR, IMAGE/VG/LV/DIR, IMAGE/DIR (whole-disk file system), or /DIR of a file "
                  "backup (without: the images and the files' root)");
  add_passphrase_options(cmd, a->pass);
  add_json_flag(cmd, ctx);
  cmd->callback([&ctx, a] {
    OpenedSnapshot o = open_snapshot(a->target, a->pass, "backup ls");
    BrowseTarget t = o.browser->resolve(a->path);
    switch (t.kind) {
      case BrowseTarget::Kind::snapshot: out::show_snapshot(ctx, *o.browser); break;
      case BrowseTarget::Kind::image: out::show_image(ctx, *o.browser, *t.image); break;
      case BrowseTarget::Kind::entry: out::show_entries(ctx, *o.browser, t, a->path); break;
    }
  });
}

void add_restore_file(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand(
      "restore-file", "Copy files or directories out of a snapshot's images or files, with mode, owner and times");
  auto a = std::make_shared<RestoreFileArgs>();
  cmd->add_option("target", a->target, "REPO::NAME or ::NAME (NAME may be 'latest' or an id prefix)")->required();
  cmd->add_option("paths", a->paths,
                  "disk.raw/p1/home/kunde/a.txt, IMAGE/VG/LV/DIR, IMAGE/DIR, /home/kunde of a file backup; "
                  "IMAGE/p1 alone: the whole file system")
      ->required();
  cmd->add_option("--to", a->to, "Directory to write into (created if missing); each PATH lands there by its base name")
      ->required();
  cmd->add_flag("--overwrite", a->overwrite, "Replace files that exist in DIR and merge into its directories");
  cmd->add_flag("--sync", a->sync, "Make every file durable (fsync) before it appears under its name");
  add_passphrase_options(cmd, a->pass);
  add_json_flag(cmd, ctx);
  cmd->footer("Exit status: 0 done, 3 done but some entries were skipped (device nodes, unsafe names, "
              "metadata that could not be set).");
  cmd->callback([&ctx, a] {
    quiet_if_json(ctx);
    OpenedSnapshot o = open_snapshot(a->target, a->pass, "backup restore-file");
    volume::ExtractOptions options;
    options.overwrite = a->overwrite;
    options.sync = a->sync;
    ctx.if_interrupted = fmt::format(
        "what was restored so far is in {}; the file being written was removed (run again with --overwrite)", a->to);
    volume::ExtractStats total = o.browser->restore(a->paths, a->to, options);
    if (total.warnings) ctx.exit_code = 3;
    out::show_restored(ctx, *o.browser, a->to, total);
  });
}

void add_mount(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand(
      "mount", "Mount the repository read-only (FUSE): snapshots, images as raw files, partitions as directories");
  auto a = std::make_shared<MountArgs>();
  cmd->add_option("repo", a->repo, "Repository")
      ->required();
  cmd->add_option("mountpoint", a->mountpoint, "An empty directory")->required();
  cmd->add_option("--sandboxes", a->sandboxes,
                  "How many snapshots' images can be looked into during this mount (one parser process each)")
      ->capture_default_str();
  add_passphrase_options(cmd, a->pass);
  cmd->footer("Runs until unmounted: fusermount3 -u MOUNTPOINT, or Ctrl-C / SIGTERM (which unmount it).");
  cmd->callback([&ctx, a] {
    // The sandboxes first: each is a copy of this process and must not hold the keys.
    std::vector<std::unique_ptr<volume::Sandbox>> sandboxes;
    for (unsigned i = 0; i < a->sandboxes; ++i) sandboxes.push_back(volume::Sandbox::start());
    const std::string repo_path = repo_or_default(a->repo);
    auto repo = open_repo(repo_path, a->pass);
    backup::MountOptions o;
    o.mountpoint = a->mountpoint;
    o.fsname = repo_path;
    o.on_mounted = [&] {
      say(ctx, fmt::format("mounted {} on {}; unmount with: fusermount3 -u {}", repo_path, a->mountpoint, a->mountpoint));
    };
    mount_repository(*repo, std::move(sandboxes), o);
  });
}

}  // namespace arche::cli::backup_cli
