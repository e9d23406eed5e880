// What every command group shares: the --json switch, the exit code a command
// reports (compare/check have result codes besides success), and printing helpers.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "core/json.h"

namespace arche::cli {

struct Context {
  bool json = false;   // the running command prints JSON
  bool quiet = false;  // -q: no progress, no summaries
  int exit_code = 0;
  // What an interruption (Ctrl-C, SIGTERM) leaves behind, said after "interrupted by
  // SIGINT: ". A command that changes files sets it before it starts the work.
  std::string if_interrupted;
};

// Adds --json to a command that lists or reports.
void add_json_flag(CLI::App* command, Context& ctx);

// Prints a line for people on stdout, unless --quiet or --json.
void say(const Context& ctx, const std::string& line);

// Registration of the command groups (one file each).
void register_image_commands(CLI::App& app, Context& ctx);
void register_backup_commands(CLI::App& app, Context& ctx);
void register_vm_commands(CLI::App& app, Context& ctx);
void register_volume_commands(CLI::App& app, Context& ctx);  // adds ls/extract to the image group
void register_raid_commands(CLI::App& app, Context& ctx);
void register_tape_commands(CLI::App& app, Context& ctx);
void register_p2v_commands(CLI::App& app, Context& ctx);
void register_job_commands(CLI::App& app, Context& ctx);  // job and schedule
// Hidden commands that describe the whole command tree for the build: `arche
// completion bash|zsh` and `arche manpage DIR` (cli/generated_docs.cpp).
void register_generated_docs_commands(CLI::App& app);

}  // namespace arche::cli
