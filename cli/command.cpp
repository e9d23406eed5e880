#include "cli/command.h"

#include <cstdio>

namespace arche::cli {

void add_json_flag(CLI::App* command, Context& ctx) {
  command->add_flag("--json", ctx.json, "Print the result as JSON");
}

void say(const Context& ctx, const std::string& line) {
  if (ctx.quiet || ctx.json) return;
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
}

}  // namespace arche::cli
