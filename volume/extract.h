// Copies files out of a file system (any Filesystem: in-process or sandboxed)
// into a directory of the host, with mode, owner (when run as root) and times.
// Used by `arche image extract` and by single-file restore from backups.
//
//   extract(fs, "/home/kunde", "/restore")  ->  /restore/kunde/...   (by base name)
//   extract(fs, "/", "/restore")            ->  /restore/home/...    (the root's contents)
//
// Files are written under a temporary name and renamed into place when complete
// (PendingFile), so an interrupted run leaves no half file under a real name.
// Nothing is written through a symbolic link: every directory on the way is one
// that extract made (or, with `overwrite`, a real directory that was there), and
// names from the file system that could climb out ("..", "a/b", "") are refused.
// Holes stay holes: runs of zeros are not written. Hard links (same inode) are
// recreated as links. Device nodes and sockets are not extracted (a warning each).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "volume/filesystem.h"

namespace arche::volume {

struct ExtractOptions {
  bool overwrite = false;  // replace existing files and links; merge into existing directories
  bool sync = false;       // fsync each file (and its directory) before it appears
};

struct ExtractStats {
  uint64_t files = 0, dirs = 0, links = 0, other = 0;
  uint64_t bytes = 0;     // file data written
  uint64_t warnings = 0;  // entries not extracted or metadata not set (each one printed as a warning)
};

// `path` is a path inside `fs` ("/" for its root). `target_dir` is created if missing.
ExtractStats extract(Filesystem& fs, std::string_view path, const std::string& target_dir,
                     const ExtractOptions& options = {});

}  // namespace arche::volume
