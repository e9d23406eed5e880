// `arche backup key add | remove | change-passphrase | list`: the passphrases (key
// slots) that open a repository.
#include <fmt/format.h>

#include <memory>
#include <string>

#include "cli/backup_cli.h"
#include "cli/backup_print.h"
#include "core/error.h"
#include "core/units.h"

namespace arche::cli::backup_cli {

using namespace arche::backup;

namespace {

struct KeyArgs {
  std::string repo, slot, kdf_memory;
  uint64_t kdf_ops = 3;
  PassArgs pass;
  NewPassArgs new_pass;
};

KdfParams kdf_of(const KeyArgs& a) {
  KdfParams k;
  if (!a.kdf_memory.empty()) k.memlimit = parse_size(a.kdf_memory, "kdf memory");
  k.opslimit = a.kdf_ops;
  return k;
}

void add_new_slot_options(CLI::App* cmd, KeyArgs& a) {
  add_new_passphrase_options(cmd, a.new_pass);
  cmd->add_option("--kdf-memory", a.kdf_memory, "Memory of argon2id for the new slot (default 32M)");
  cmd->add_option("--kdf-ops", a.kdf_ops, "Passes of argon2id for the new slot")->capture_default_str();
}

}  // namespace

void add_key(CLI::App& group, Context& ctx) {
  auto* key = group.add_subcommand("key", "Manage the passphrases (key slots) of a repository");
  key->require_subcommand(1);

  auto* add = key->add_subcommand("add", "Add a passphrase (a new key slot)");
  auto aa = std::make_shared<KeyArgs>();
  add_repo_argument(add, aa->repo);
  add_passphrase_options(add, aa->pass);
  add_new_slot_options(add, *aa);
  add_json_flag(add, ctx);
  add->callback([&ctx, aa] {
    const std::string repo_path = repo_or_default(aa->repo);
    auto repo = open_repo(repo_path, aa->pass);
    SecretBytes pass = read_new_passphrase(new_passphrase_source(aa->new_pass, repo_path));
    std::string name = repo->add_key_slot(pass.span(), kdf_of(*aa));
    if (ctx.json) {
      print_json(Json{{"added", name}});
      return;
    }
    say(ctx, "added key slot " + name);
  });

  auto* remove = key->add_subcommand("remove", "Remove a key slot (never the last one)");
  auto ar = std::make_shared<KeyArgs>();
  remove->add_option("repo", ar->repo, "Repository (may be left out with $ARCHE_REPO)");
  remove->add_option("slot", ar->slot, "The slot (arche backup key list)");
  add_passphrase_options(remove, ar->pass);
  add_json_flag(remove, ctx);
  remove->callback([&ctx, ar] {
    if (ar->slot.empty()) std::swap(ar->slot, ar->repo);  // `key remove SLOT` with $ARCHE_REPO
    if (ar->slot.empty()) fail(ErrorCategory::usage, "key remove: give the SLOT to remove (arche backup key list)");
    auto repo = open_repo(repo_or_default(ar->repo), ar->pass);
    repo->remove_key_slot(ar->slot);
    if (ctx.json) {
      print_json(Json{{"removed", ar->slot}});
      return;
    }
    say(ctx, "removed key slot " + ar->slot);
  });

  auto* change = key->add_subcommand("change-passphrase", "Replace the passphrase that opens the repository");
  auto ac = std::make_shared<KeyArgs>();
  add_repo_argument(change, ac->repo);
  add_passphrase_options(change, ac->pass);
  add_new_slot_options(change, *ac);
  add_json_flag(change, ctx);
  change->callback([&ctx, ac] {
    const std::string repo_path = repo_or_default(ac->repo);
    auto repo = open_repo(repo_path, ac->pass);
    SecretBytes pass = read_new_passphrase(new_passphrase_source(ac->new_pass, repo_path));
    // The new slot is durable before the old one goes: never a moment without a key.
    std::string name = repo->add_key_slot(pass.span(), kdf_of(*ac));
    repo->remove_key_slot(repo->opened_slot());
    if (ctx.json) {
      print_json(Json{{"added", name}, {"removed", repo->opened_slot()}});
      return;
    }
    say(ctx, fmt::format("passphrase changed (key slot {} replaced by {})", repo->opened_slot(), name));
  });

  auto* list = key->add_subcommand("list", "List the key slots");
  auto al = std::make_shared<KeyArgs>();
  add_repo_argument(list, al->repo);
  add_passphrase_options(list, al->pass);
  add_json_flag(list, ctx);
  list->callback([&ctx, al] {
    auto repo = open_repo(repo_or_default(al->repo), al->pass);
    print_key_slots(ctx, repo->key_slots(), repo->opened_slot());
  });
}

}  // namespace arche::cli::backup_cli
