// Restoring files and directories from a snapshot into a directory, with their
// metadata: mode, owner (numeric ids; as root), times, extended attributes, hard
// links (recreated as links), symlinks, FIFOs and device nodes (as root).
// Contents are fetched and written by all cores, each file under a temporary name
// beside its destination that is renamed into place when the file is complete
// (temporary files that killed restores left are removed by the next restore into
// the same directory); metadata is applied afterwards, directories deepest first, so
// writing into them does not disturb their times.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backup/repository.h"
#include "backup/snapshot.h"

namespace arche::backup {

struct FileRestoreOptions {
  // Paths inside the snapshot ("/home/kunde"; a relative one is taken from the
  // current directory, as create took it); empty: everything.
  std::vector<std::string> paths;
  bool overwrite = false;  // replace existing files in the target
  unsigned threads = 0;
};

struct FileRestoreStats {
  uint64_t files = 0, dirs = 0, links = 0, other = 0;
  uint64_t bytes = 0;
  uint64_t warnings = 0;  // metadata that could not be applied (e.g. owner as non-root)
  uint64_t removed_temporaries = 0;  // left by interrupted restores in the target
  double seconds = 0;
};

// Restores below `target` (created if missing), each entry at its full snapshot path.
FileRestoreStats restore_files(Repository& repo, const Snapshot& snapshot, const std::string& target,
                               const FileRestoreOptions& options);

}  // namespace arche::backup
