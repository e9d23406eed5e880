// What the `arche p2v` commands print: the lines for people and the JSON of
// --json (docs/cli.md, docs/p2v.md). cli/p2v_commands.cpp parses the arguments
// and calls convert/; everything shown is shaped here.
#pragma once

#include "cli/command.h"
#include "convert/p2v_image.h"
#include "convert/p2v_network.h"

namespace arche::cli::p2v_output {

// Per volume how it was copied (used ranges, whole and why), per disk what was
// written, and that a live source wants `p2v sync`.
void show_imaged(const Context& ctx, const convert::ConversionResult& r, bool live_source);
// The volumes as for `image`, then per disk what was sent and where it resumed.
void show_sent(const Context& ctx, const convert::SendResult& r, const std::string& to);
// The address and the one-time token (flushed: a script reads them while the
// receiver runs); with --json one JSON line {"listen", "token"}.
void show_listening(const Context& ctx, const std::string& address, const std::string& token);
void show_received(const Context& ctx, const convert::ReceiveResult& r);

}  // namespace arche::cli::p2v_output
