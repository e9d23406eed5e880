// How volumes and directory entries are shown, in text and as JSON, so that
// `arche image ls` and `arche backup ls` print the same thing. JSON keys are
// kebab-case, times RFC 3339 (UTC) with the exact nanoseconds beside them, absent
// values null (docs/cli.md, "image ls").
#pragma once

#include <string>
#include <vector>

#include "core/json.h"
#include "volume/filesystem.h"
#include "volume/tree.h"

namespace arche::volume {

// "2026-12-01T21:01:33Z" (fractions of a second are given in the *-ns fields).
std::string rfc3339(int64_t ns);
// "drwxr-xr-x", "-rw-r--r--", "lrwxrwxrwx".
std::string mode_string(FileType type, uint32_t mode);

// One volume of the tree; `fs` (may be null) adds what the opened file system
// knows: its label and uuid (NTFS labels are not in the boot sector), size used.
Json volume_json(const Tree& tree, const VolumeInfo& v, const Filesystem* fs);
// The table of volumes for people, one line per volume, with a header line.
std::vector<std::string> volume_lines(const Tree& tree, const std::vector<const Filesystem*>& opened);

// One directory entry; `target` is the link target for symbolic links,
// `streams` the named data streams (NTFS).
Json entry_json(const DirEntry& e, const std::string& path, const std::string& target,
                const std::vector<std::string>& streams);
// What a listing of `path` shows: a directory's entries sorted by name, or the one
// entry a file is; `parent` is the directory the entries' names are relative to.
struct PathListing {
  bool directory = false;  // `path` is a directory (else the one entry is the file)
  std::string parent;
  std::vector<DirEntry> entries;
};
PathListing list_path(Filesystem& fs, const std::string& path);

// "drwxr-xr-x  1000:1000      4096  2026-12-01 21:01  name -> target"
std::string entry_line(const DirEntry& e, const std::string& target);

}  // namespace arche::volume
