// What the `arche p2v` commands print: the lines for people and the JSON of
// --json (docs/cli.md, docs/p2v.md). cli/p2v_commands.cpp parses the arguments
// and calls convert/; everything shown is shaped here.
#pragma once

#include "cli/command.h"
#include "convert/p2v_image.h"

namespace arche::cli::p2v_output {

// Per volume how it was copied (used ranges, whole and why), per disk what was
// written, and that a live source wants `p2v sync`.
void show_imaged(const Context& ctx, const convert::ConversionResult& r, bool live_source);

}  // namespace arche::cli::p2v_output
