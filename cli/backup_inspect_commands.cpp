// `arche backup list | info | diff`: looking into a repository (shared lock).
#include <memory>
#include <string>
#include <vector>

#include "backup/stats.h"
#include "cli/backup_cli.h"
#include "cli/backup_print.h"
#include "core/error.h"

namespace arche::cli::backup_cli {

using namespace arche::backup;

namespace {

struct RepoArgs {
  std::string repo;
  PassArgs pass;
};

struct DiffArgs {
  std::vector<std::string> refs;
  PassArgs pass;
};

}  // namespace

void add_list(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("list", "List the snapshots of a repository");
  auto a = std::make_shared<RepoArgs>();
  add_repo_argument(cmd, a->repo);
  add_passphrase_options(cmd, a->pass);
  add_json_flag(cmd, ctx);
  cmd->footer("Exit status 2: some snapshot manifests are damaged (they are listed as such).");
  cmd->callback([&ctx, a] {
    auto repo = open_repo(repo_or_default(a->repo), a->pass);
    SnapshotList list = list_snapshots(*repo);
    // A damaged manifest does not hide the others: they are listed, it is named.
    if (!list.damaged.empty()) ctx.exit_code = 2;
    print_list(ctx, list);
  });
}

void add_info(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("info", "Sizes and deduplication of a repository, or one snapshot (REPO::NAME)");
  auto a = std::make_shared<RepoArgs>();
  add_repo_argument(cmd, a->repo, "REPO or REPO::NAME (::NAME or nothing with $ARCHE_REPO)");
  add_passphrase_options(cmd, a->pass);
  add_json_flag(cmd, ctx);
  cmd->callback([&ctx, a] {
    auto [repo_path, name] = a->repo.empty() ? std::pair(repo_or_default(""), std::string()) : split_target(a->repo, false);
    auto repo = open_repo(repo_path, a->pass);
    if (!name.empty()) {
      print_snapshot_info(ctx, find_snapshot(*repo, name));
      return;
    }
    print_repository_info(ctx, *repo, repository_info(*repo));
  });
}

void add_diff(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("diff", "What changed between two snapshots: diff REPO::A B (or REPO A B)");
  auto a = std::make_shared<DiffArgs>();
  cmd->add_option("snapshots", a->refs, "REPO::A B, REPO A B, or with $ARCHE_REPO: ::A B or A B")->required();
  add_passphrase_options(cmd, a->pass);
  add_json_flag(cmd, ctx);
  cmd->callback([&ctx, a] {
    const std::vector<std::string>& refs = a->refs;
    std::string repo_path, name_a, name_b;
    if (refs[0].find("::") != std::string::npos) {
      if (refs.size() != 2) fail(ErrorCategory::usage, "diff REPO::A B: give one more snapshot");
      std::tie(repo_path, name_a) = split_target(refs[0], true);
      name_b = refs[1];
    } else if (refs.size() == 3) {
      repo_path = refs[0];
      name_a = refs[1];
      name_b = refs[2];
    } else if (refs.size() == 2) {
      repo_path = repo_or_default("");
      name_a = refs[0];
      name_b = refs[1];
    } else {
      fail(ErrorCategory::usage, "diff: give REPO::A B, or REPO A B");
    }
    auto repo = open_repo(repo_path, a->pass);
    print_diff(ctx, diff_snapshots(*repo, name_a, name_b));
  });
}

}  // namespace arche::cli::backup_cli
