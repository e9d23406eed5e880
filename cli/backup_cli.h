// What the files of `arche backup ...` share: how a repository and a passphrase are
// named on the command line, and the registration of each part. The commands parse
// arguments and call backup/; what they print is in backup_print.h.
#pragma once

#include <memory>
#include <string>
#include <utility>

#include "backup/passphrase.h"
#include "backup/repository.h"
#include "cli/command.h"

namespace arche::cli::backup_cli {

// --passphrase-file / --passphrase-command as given.
struct PassArgs {
  std::string file, command;
};
void add_passphrase_options(CLI::App* cmd, PassArgs& a);
backup::PassphraseSource passphrase_source(const PassArgs& a, const std::string& repo);

// --new-passphrase-file / --new-passphrase-command (init, key add, change-passphrase).
struct NewPassArgs {
  std::string file, command;
};
void add_new_passphrase_options(CLI::App* cmd, NewPassArgs& a);
backup::PassphraseSource new_passphrase_source(const NewPassArgs& a, const std::string& repo);

// The optional REPO argument: $ARCHE_REPO when it is left out.
void add_repo_argument(CLI::App* cmd, std::string& repo, const std::string& help = "Repository (default: $ARCHE_REPO)");
std::string repo_or_default(const std::string& repo);
// "REPO::NAME" -> {REPO, NAME}; "::NAME" takes REPO from $ARCHE_REPO.
std::pair<std::string, std::string> split_target(const std::string& text, bool name_required);

// Opens a repository: "not a repository" is said before a passphrase is asked for.
std::unique_ptr<backup::Repository> open_repo(const std::string& repo, const PassArgs& a);

// With --json, progress lines would only be noise on stderr.
void quiet_if_json(const Context& ctx);

void add_init(CLI::App& group, Context& ctx);
void add_create(CLI::App& group, Context& ctx);
void add_restore(CLI::App& group, Context& ctx);
void add_copy(CLI::App& group, Context& ctx);
void add_list(CLI::App& group, Context& ctx);
void add_info(CLI::App& group, Context& ctx);
void add_diff(CLI::App& group, Context& ctx);
void add_prune(CLI::App& group, Context& ctx);
void add_forget(CLI::App& group, Context& ctx);
void add_check(CLI::App& group, Context& ctx);
void add_repair(CLI::App& group, Context& ctx);
void add_unlock(CLI::App& group, Context& ctx);
void add_key(CLI::App& group, Context& ctx);
// Looking into one snapshot (backup_browse_commands.cpp).
void add_ls(CLI::App& group, Context& ctx);
void add_restore_file(CLI::App& group, Context& ctx);
void add_mount(CLI::App& group, Context& ctx);

}  // namespace arche::cli::backup_cli
