// What the `arche raid` commands print: the lines for people and the JSON
// documents of --json (docs/cli.md, docs/raid.md). cli/raid_commands.cpp parses
// the arguments and calls image/mirror/; everything shown is shaped here.
#pragma once

#include <cstddef>
#include <string>

#include "cli/command.h"
#include "image/mirror/mirror_device.h"

namespace arche::cli::raid_output {

// The array's status: JSON with --json, the lines for people unless --quiet.
void show_status(const Context& ctx, const image::mirror::MirrorDevice& mirror);
void show_created(const Context& ctx, const image::mirror::MirrorDevice& mirror, size_t legs,
                  const std::string& checksum);
// Nothing when there was no leg to rebuild.
void show_rebuilt(const Context& ctx, const image::mirror::SyncRecord& r);
void show_failed(const Context& ctx, const image::mirror::MirrorDevice& mirror, const std::string& leg);
void show_removed(const Context& ctx, const image::mirror::MirrorDevice& mirror, const std::string& leg);
void show_in_sync(const Context& ctx, const image::mirror::MirrorDevice& mirror, const std::string& new_leg);
void show_scrubbed(const Context& ctx, const image::mirror::MirrorDevice& mirror, const image::mirror::ScrubRecord& r);

}  // namespace arche::cli::raid_output
