// What `arche backup ls` and `arche backup restore-file` print: the lines for people
// and the JSON of --json (docs/cli.md). Volumes and entries are shown as `arche image
// ls` shows them (volume/listing.h); names are the addresses `backup ls` takes.
#pragma once

#include <string>
#include <vector>

#include "backup/browse.h"
#include "cli/command.h"

namespace arche::cli::backup_browse_output {

// The snapshot's images with their volumes, and the root of its files.
void show_snapshot(const Context& ctx, backup::SnapshotBrowser& b);
// One image's volumes.
void show_image(const Context& ctx, backup::SnapshotBrowser& b, uint32_t image);
// A directory's entries, or one file's entry, at `address` (as given).
void show_entries(const Context& ctx, backup::SnapshotBrowser& b, const backup::BrowseTarget& t,
                  const std::string& address);

void show_restored(const Context& ctx, backup::SnapshotBrowser& b, const std::string& to,
                   const volume::ExtractStats& total);

}  // namespace arche::cli::backup_browse_output
