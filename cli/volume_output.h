// What `arche image ls` and `arche image extract` print: the lines for people and
// the JSON documents of --json (docs/cli.md). cli/volume_commands.cpp parses the
// arguments and reads the tree; everything shown is shaped here.
#pragma once

#include <string>
#include <vector>

#include "cli/command.h"
#include "volume/extract.h"
#include "volume/filesystem.h"
#include "volume/tree.h"

namespace arche::cli::volume_output {

// The disk's volumes; opened[i] is the file system of volume i when it could be
// opened, open_errors[i] why not (empty: no error).
void show_volumes(const Context& ctx, volume::Tree& tree, const std::string& file,
                  const std::vector<const volume::Filesystem*>& opened, const std::vector<std::string>& open_errors);

// One entry of a listing, with what was read besides its stat.
struct ListedEntry {
  volume::DirEntry entry;
  std::string path;                  // inside the file system
  std::string target;                // of a symlink ("? (why)" when it could not be read)
  std::vector<std::string> streams;  // NTFS named data streams (JSON only)
};

// A directory's entries, or the one entry of a file, at `address` (as given).
void show_listing(const Context& ctx, const std::string& file, const std::string& address, const std::string& volume,
                  const std::string& fs_type, bool directory, const std::vector<ListedEntry>& entries);

void show_extracted(const Context& ctx, const std::string& to, const volume::ExtractStats& total);

}  // namespace arche::cli::volume_output
