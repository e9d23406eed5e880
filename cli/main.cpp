// The arche command line: parses arguments, calls the libraries, prints. Errors
// become one line on stderr (and a JSON object with --json) and an exit code by
// category (docs/cli.md).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/usage.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "core/json.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/version.h"

namespace {

int report_error(const arche::cli::Context& ctx, arche::ErrorCategory category, const std::string& message) {
  std::fprintf(stderr, "arche: %s\n", message.c_str());
  if (ctx.json)
    arche::print_json(arche::Json{{"error", {{"category", arche::category_name(category)}, {"message", message}}}});
  return arche::exit_code(category);
}

// "interrupted by SIGINT: disk.qcow2 left as it was, nothing written"; 128 + signal.
int report_interrupt(const arche::cli::Context& ctx, const arche::Error& e) {
  std::string message = e.what();
  if (!ctx.if_interrupted.empty()) message += ": " + ctx.if_interrupted;
  report_error(ctx, arche::ErrorCategory::interrupted, message);
  return arche::interrupt::exit_code();
}

}  // namespace

int main(int argc, char** argv) {
  arche::interrupt::install_handlers();
  arche::cli::Context ctx;
  CLI::App app{"arche: virtual machines, disk images, snapshots and encrypted backups for small servers", "arche"};
  app.set_version_flag("--version", std::string("arche ") + arche::kVersion);
  app.require_subcommand(1);
  app.fallthrough();
  bool verbose = false;
  app.add_flag("-q,--quiet", ctx.quiet, "No progress and no summaries; errors only");
  app.add_flag("-v,--verbose", verbose, "Explain what is happening");
  arche::cli::add_json_flag(&app, ctx);  // also before the command: arche --json image info x
  app.parse_complete_callback([&] {
    if (ctx.quiet) arche::set_log_level(arche::LogLevel::quiet);
    if (verbose) arche::set_log_level(arche::LogLevel::verbose);
    if (ctx.quiet) arche::Progress::set_globally_disabled(true);
  });

  arche::cli::register_image_commands(app, ctx);
  arche::cli::register_volume_commands(app, ctx);
  arche::cli::register_backup_commands(app, ctx);
  arche::cli::register_vm_commands(app, ctx);
  arche::cli::register_raid_commands(app, ctx);
  arche::cli::register_tape_commands(app, ctx);
  arche::cli::register_p2v_commands(app, ctx);
  arche::cli::register_job_commands(app, ctx);
  // (a new command group: one registration line above this comment)
  arche::cli::register_generated_docs_commands(app);
  arche::cli::apply_help_conventions(app);

  const std::vector<std::string> args(argv + 1, argv + argc);
  // Errors found before parsing are JSON too when asked for.
  ctx.json = std::find(args.begin(), std::find(args.begin(), args.end(), "--"), "--json") != args.end();
  try {
    arche::cli::check_command_words(app, args);
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::fputs(app.help().c_str(), stdout);
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    std::fputs(app.help("", CLI::AppFormatMode::All).c_str(), stdout);
    return 0;
  } catch (const CLI::CallForVersion& v) {
    std::puts(v.what());
    return 0;
  } catch (const CLI::ParseError& e) {
    return report_error(ctx, arche::ErrorCategory::usage, arche::cli::explain_parse_error(e, app));
  } catch (const arche::Error& e) {
    if (e.category() == arche::ErrorCategory::interrupted) return report_interrupt(ctx, e);
    return report_error(ctx, e.category(), e.what());
  } catch (const std::bad_alloc&) {
    return report_error(ctx, arche::ErrorCategory::no_space, "out of memory");
  } catch (const std::exception& e) {
    return report_error(ctx, arche::ErrorCategory::internal, std::string("internal error: ") + e.what());
  }
  return ctx.exit_code;
}
