// `arche backup copy SRC[::NAME]... DST`: snapshots into another repository on any
// store — a replica gets the packs as they are, any other repository the chunks
// re-encrypted with its key (backup/copy.h chooses). The destination's passphrase
// comes from --dst-passphrase-file/-command or $ARCHE_DST_PASSPHRASE...; without any,
// the source's passphrase is tried on it (a replica usually keeps it).
#include <fmt/format.h>

#include <memory>
#include <string>
#include <vector>

#include "backup/copy.h"
#include "backup/store.h"
#include "cli/backup_cli.h"
#include "cli/backup_print.h"
#include "core/error.h"
#include "core/progress.h"
#include "core/units.h"

namespace arche::cli::backup_cli {

using namespace arche::backup;

namespace {

struct CopyArgs {
  std::vector<std::string> targets;  // SRC[::NAME]... DST
  size_t last = 0;
  std::string bwlimit, dst_pass_file, dst_pass_command;
  bool dry_run = false;
  PassArgs pass;
};

// The source repository and the snapshots named with it ("SRC::a SRC::b", or "SRC").
std::pair<std::string, std::vector<std::string>> parse_sources(const std::vector<std::string>& sources) {
  std::string repo;
  std::vector<std::string> names;
  for (const std::string& s : sources) {
    auto [r, name] = s.find("::") == std::string::npos ? std::pair(s, std::string()) : split_target(s, true);
    if (!repo.empty() && r != repo)
      fail(ErrorCategory::usage, "backup copy takes snapshots of one source repository ('{}' and '{}')", repo, r);
    repo = r;
    if (!name.empty()) names.push_back(name);
  }
  return {repo, names};
}

std::unique_ptr<Repository> open_destination(const std::string& dst, const CopyArgs& a, const SecretBytes& src_pass) {
  std::shared_ptr<Store> store = open_store(dst);
  Repository::read_header(*store);
  PassphraseSource source = destination_passphrase_source(a.dst_pass_file, a.dst_pass_command, "passphrase for " + dst + ": ");
  if (passphrase_given(source)) return Repository::open(std::move(store), read_passphrase(source).span());
  try {
    return Repository::open(std::move(store), src_pass.span());
  } catch (const Error& e) {
    if (e.category() != ErrorCategory::crypto) throw;
    fail(ErrorCategory::crypto, "{} (the passphrase of the source was tried: give {}'s with --dst-passphrase-file, "
         "--dst-passphrase-command or $ARCHE_DST_PASSPHRASE)", e.what(), dst);
  }
}

}  // namespace

void add_copy(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("copy", "Copy snapshots into another repository (a replica, or re-encrypted)");
  auto a = std::make_shared<CopyArgs>();
  cmd->add_option("targets", a->targets, "SRC or SRC::NAME (repeatable), then DST")->required()->expected(2, -1);
  cmd->add_option("--last", a->last, "Only the newest N of the snapshots named (or of all)");
  cmd->add_option("--bwlimit", a->bwlimit, "Send at most RATE bytes per second (e.g. 20M)");
  cmd->add_flag("--dry-run", a->dry_run, "Say what would be copied; copy nothing");
  add_passphrase_options(cmd, a->pass);
  cmd->add_option("--dst-passphrase-file", a->dst_pass_file,
                  "Read DST's passphrase from FILE (default: $ARCHE_DST_PASSPHRASE_FILE, "
                  "$ARCHE_DST_PASSPHRASE_COMMAND, $ARCHE_DST_PASSPHRASE, else SRC's passphrase)");
  cmd->add_option("--dst-passphrase-command", a->dst_pass_command, "Run CMD and use its output as DST's passphrase");
  add_json_flag(cmd, ctx);
  cmd->footer("Into a replica (arche backup init DST --same-key-as SRC) the packs travel as they are, still "
              "encrypted. Into any other repository every chunk the snapshots need (but those earlier copies brought) "
              "is read from SRC and stored re-encrypted with DST's key (deduplicated against what DST holds, in its "
              "pack size and compression); "
              "the snapshots keep their names, hosts, times and paths. Snapshots DST holds already are skipped.");
  cmd->callback([&ctx, a] {
    quiet_if_json(ctx);
    const std::string dst_url = a->targets.back();
    auto [src_url, names] = parse_sources({a->targets.begin(), a->targets.end() - 1});
    CopyOptions o;
    o.snapshots = names;
    o.last = a->last;
    o.dry_run = a->dry_run;
    if (!a->bwlimit.empty()) o.bwlimit = parse_size(a->bwlimit, "bandwidth limit");
    std::shared_ptr<Store> src_store = open_store(src_url);
    Repository::read_header(*src_store);
    SecretBytes src_pass = read_passphrase(passphrase_source(a->pass, src_url));
    auto src = Repository::open(std::move(src_store), src_pass.span());
    auto dst = open_destination(dst_url, *a, src_pass);
    Progress progress("copy", 0);
    o.progress = [&progress](uint64_t done, uint64_t total) {
      progress.set_total(total);
      progress.add(done - progress.done());
    };
    CopyReport report = copy_snapshots(*src, *dst, o);
    progress.finish();
    print_copy(ctx, report, src_url, dst_url, a->dry_run);
  });
}

}  // namespace arche::cli::backup_cli
