// `arche backup prune | forget | check | repair | unlock`: keeping a repository
// small and sound.
#include <fmt/format.h>

#include <memory>
#include <string>
#include <vector>

#include "backup/check.h"
#include "backup/lock.h"
#include "backup/prune.h"
#include "backup/repair.h"
#include "cli/backup_cli.h"
#include "cli/backup_print.h"
#include "core/error.h"

namespace arche::cli::backup_cli {

using namespace arche::backup;

namespace {

struct PruneArgs {
  std::string repo, within, prefix, group_by = "host,paths";
  std::vector<std::string> hosts, tags;
  int last = 0, hourly = 0, daily = 0, weekly = 0, monthly = 0, yearly = 0;
  bool dry_run = false;
  double threshold = 0.2;
  PassArgs pass;
};

struct ForgetArgs {
  std::string target;
  PassArgs pass;
};

struct CheckArgs {
  std::string repo;
  bool read_data = false;
  unsigned threads = 0;
  PassArgs pass;
};

struct RepairArgs {
  std::string repo;
  bool dry_run = false;
  PassArgs pass;
};

struct UnlockArgs {
  std::string repo;
  bool all = false;
  PassArgs pass;
};

}  // namespace

void add_prune(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("prune", "Remove snapshots a retention policy does not keep, and free their space");
  auto a = std::make_shared<PruneArgs>();
  add_repo_argument(cmd, a->repo);
  cmd->add_option("--keep-last", a->last, "Keep the N newest snapshots (of each group)");
  cmd->add_option("--keep-hourly", a->hourly, "Keep the newest snapshot of each of the last N hours");
  cmd->add_option("--keep-daily", a->daily, "... of each of the last N days");
  cmd->add_option("--keep-weekly", a->weekly, "... of each of the last N (ISO) weeks");
  cmd->add_option("--keep-monthly", a->monthly, "... of each of the last N months");
  cmd->add_option("--keep-yearly", a->yearly, "... of each of the last N years");
  cmd->add_option("--keep-within", a->within, "Keep everything within this time of the newest snapshot (7d, 2w, 1y6m)");
  cmd->add_option("--group-by", a->group_by,
                  "Apply the policy to each group of snapshots with equal host, paths (and images) and/or tags; "
                  "'' for one group")
      ->capture_default_str();
  cmd->add_option("--host", a->hosts, "Only consider snapshots of this host; repeatable")->allow_extra_args(false);
  cmd->add_option("--tag", a->tags, "Only consider snapshots with these tags (T1,T2: both); repeatable (either)")
      ->allow_extra_args(false);
  cmd->add_option("--prefix", a->prefix, "Only consider snapshots whose name starts with this");
  cmd->add_option("--repack-threshold", a->threshold, "Repack packs with more than this share unused (0..1)")
      ->capture_default_str();
  cmd->add_flag("-n,--dry-run", a->dry_run, "Only show the groups and what would be removed");
  add_passphrase_options(cmd, a->pass);
  add_json_flag(cmd, ctx);
  cmd->callback([&ctx, a] {
    quiet_if_json(ctx);
    PruneOptions o;
    o.policy = {a->last, a->hourly, a->daily, a->weekly, a->monthly, a->yearly,
                a->within.empty() ? 0 : parse_duration(a->within)};
    if (o.policy.empty()) fail(ErrorCategory::usage, "prune: give at least one --keep-... rule");
    if (a->threshold < 0 || a->threshold > 1) fail(ErrorCategory::usage, "--repack-threshold must be within 0..1");
    o.filter.hosts = a->hosts;
    o.filter.tags = a->tags;
    o.filter.prefix = a->prefix;
    o.group_by = parse_group_by(a->group_by);
    o.dry_run = a->dry_run;
    o.repack_threshold = a->threshold;
    auto repo = open_repo(repo_or_default(a->repo), a->pass);
    print_prune(ctx, prune(*repo, o), a->dry_run);
  });
}

void add_forget(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("forget", "Remove one snapshot (its space is freed by the next prune)");
  auto a = std::make_shared<ForgetArgs>();
  cmd->add_option("target", a->target, "REPO::NAME or ::NAME (NAME: a name, 'latest' or an id prefix)")->required();
  add_passphrase_options(cmd, a->pass);
  add_json_flag(cmd, ctx);
  cmd->callback([&ctx, a] {
    auto [repo_path, name] = split_target(a->target, true);
    auto repo = open_repo(repo_path, a->pass);
    const std::string id = forget_snapshot(*repo, name);
    if (ctx.json) {
      print_json(Json{{"removed", id}});
      return;
    }
    say(ctx, fmt::format("removed snapshot {} ({}; run prune to free its space)", name, id.substr(0, 8)));
  });
}

void add_check(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("check", "Verify the repository's structure (and with --read-data every chunk)");
  auto a = std::make_shared<CheckArgs>();
  add_repo_argument(cmd, a->repo);
  cmd->add_flag("--read-data", a->read_data, "Read, decrypt and verify every chunk");
  cmd->add_option("-j,--threads", a->threads, "Worker threads (default: one per core)");
  add_passphrase_options(cmd, a->pass);
  add_json_flag(cmd, ctx);
  cmd->footer("Exit status: 0 no errors, 2 errors found (damaged or missing data).");
  cmd->callback([&ctx, a] {
    quiet_if_json(ctx);
    auto repo = open_repo(repo_or_default(a->repo), a->pass);
    CheckOptions o;
    o.read_data = a->read_data;
    o.threads = a->threads;
    CheckReport r = check_repository(*repo, o);
    ctx.exit_code = r.ok() ? 0 : 2;
    print_check(ctx, r, a->read_data);
  });
}

void add_repair(CLI::App& group, Context& ctx) {
  auto* repair = group.add_subcommand("repair", "Repair the repository");
  repair->require_subcommand(1);

  auto* index = repair->add_subcommand("index", "Rebuild the index from the packs");
  auto ai = std::make_shared<RepairArgs>();
  add_repo_argument(index, ai->repo);
  add_passphrase_options(index, ai->pass);
  add_json_flag(index, ctx);
  index->callback([&ctx, ai] {
    quiet_if_json(ctx);
    auto repo = open_repo(repo_or_default(ai->repo), ai->pass);
    print_repair_index(ctx, repair_index(*repo));
  });

  auto* snapshots = repair->add_subcommand("snapshots", "Remove snapshot manifests that are damaged");
  auto as = std::make_shared<RepairArgs>();
  add_repo_argument(snapshots, as->repo);
  snapshots->add_flag("-n,--dry-run", as->dry_run, "Only show what would be removed");
  add_passphrase_options(snapshots, as->pass);
  add_json_flag(snapshots, ctx);
  snapshots->callback([&ctx, as] {
    auto repo = open_repo(repo_or_default(as->repo), as->pass);
    print_repair_snapshots(ctx, repair_snapshots(*repo, as->dry_run), as->dry_run);
  });
}

void add_unlock(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("unlock", "Remove stale and damaged locks (of processes that are gone)");
  auto a = std::make_shared<UnlockArgs>();
  add_repo_argument(cmd, a->repo);
  cmd->add_flag("--all", a->all, "Remove every lock, also of running processes (dangerous)");
  add_passphrase_options(cmd, a->pass);
  add_json_flag(cmd, ctx);
  cmd->callback([&ctx, a] {
    auto repo = open_repo(repo_or_default(a->repo), a->pass);
    print_unlocked(ctx, remove_locks(*repo, a->all));
  });
}

}  // namespace arche::cli::backup_cli
