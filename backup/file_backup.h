// Backing up files and directories: regular files (content-defined chunks, FastCDC),
// directories, symlinks, hard links, FIFOs and device nodes, with mode, owner, times
// and extended attributes (ACLs and SELinux labels are xattrs too).
//
// One thread walks the tree in order; file contents are hashed, compressed and
// encrypted by the pipeline's workers (a small file is one job, a large one a job per
// chunk). A file whose size, mtime, ctime and inode match the parent snapshot keeps
// its chunks from there without being read. Directories are encoded once everything
// below them is stored, in the order the walk finished them.
#pragma once

#include <string>
#include <vector>

#include "backup/chunk_store.h"
#include "backup/pipeline.h"
#include "backup/snapshot.h"

namespace arche::backup {

struct FileBackupOptions {
  // fnmatch(3) patterns; an entry is skipped when one matches its full path or its name.
  std::vector<std::string> excludes;
  bool one_file_system = false;  // do not descend into other file systems
};

// Absolute, normalised, without trailing slashes, duplicates removed; each must exist.
std::vector<std::string> normalize_backup_paths(const std::vector<std::string>& paths);

// Returns the root tree's pieces. `parent` (may be null) supplies unchanged files.
std::vector<Id> backup_files(ChunkStore& store, Pipeline& pipeline, const std::vector<std::string>& paths,
                             const Snapshot* parent, const FileBackupOptions& options, SnapshotStats& stats);

}  // namespace arche::backup
