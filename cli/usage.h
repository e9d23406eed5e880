// How arche talks about its own command line, the same for every command group
// (including groups added later, since all of this walks the app tree):
//   - help text names arguments in capitals, as man pages do (FILE, REPO::NAME);
//   - a word that is not a command is "unknown command 'frob'", pointing at the
//     --help of the group it was given to, even when --help follows it;
//   - CLI11's parse errors are reworded to name options and arguments exactly as
//     the help shows them, with the failing command's --help as the hint.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace arche::cli {

// Gives `app` and every command below it arche's help formatter. Call once, after
// every group has registered its commands.
void apply_help_conventions(CLI::App& app);

// Before parsing: throws a usage error for the first word that stands where a
// command must be and is none ("unknown command 'frob' (see: arche image --help)").
void check_command_words(const CLI::App& app, const std::vector<std::string>& args);

// The command being parsed when an error happened: the deepest one on the line.
const CLI::App& deepest_command(const CLI::App& app);
// "arche image info": the words that lead to `command`.
std::string command_path(const CLI::App& command);

// One line for a parse error, reworded, ending with "(see: arche image info --help)".
std::string explain_parse_error(const CLI::ParseError& error, const CLI::App& app);

// How the help names an option or argument: "-f,--format", "FILE", "PATHS".
std::string display_name(const CLI::Option& option);

}  // namespace arche::cli
