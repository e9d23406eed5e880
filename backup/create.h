// `arche backup create`: one snapshot of images and/or files, from start to finish:
// lock (shared), load the index (adopting packs an interrupted backup left), back up,
// make the packs durable, write the index file, and only then the snapshot manifest.
// A crash at any point leaves the repository as it was plus, at most, complete packs
// that the next backup adopts.
#pragma once

#include <string>
#include <vector>

#include "backup/file_backup.h"
#include "backup/image_backup.h"
#include "backup/repository.h"
#include "backup/snapshot.h"

namespace arche::backup {

struct CreateOptions {
  std::string name;  // may hold placeholders (expand_snapshot_name)
  std::vector<std::string> images;  // image files (or block devices)
  std::vector<std::string> paths;   // files and directories
  std::vector<std::string> tags;
  // The snapshot's host and time; empty / 0: this machine and now. A job names each
  // VM's snapshots after the VM (so prune keeps its own per VM); tests simulate dates.
  std::string host;
  int64_t time_ns = 0;
  int compression_level = INT32_MIN;  // INT32_MIN: the repository's setting
  bool incremental = true;            // false: read images in full even when a layer is unchanged
  std::string parent;                 // snapshot for unchanged files; empty: the latest with these paths
  FileBackupOptions files;
  bool force_share = false;
  bool dry_run = false;  // read, chunk and look up everything; write nothing
  unsigned threads = 0;
};

// The snapshot made (with dry_run: what it would be; its id is then empty). An
// interrupt (SIGINT, SIGTERM) leaves no snapshot and says what was kept.
Snapshot create_snapshot(Repository& repo, const CreateOptions& options);

// Placeholders in snapshot names, as borg has them: {now} (local time,
// 2026-11-21T13:46:02), {now:FORMAT} (strftime), {utcnow}, {utcnow:FORMAT},
// {hostname}, {user}, {image} (the file name of the one --image). "{{" and "}}"
// stand for braces. Unknown placeholders are a usage error.
std::string expand_snapshot_name(const std::string& pattern, const std::vector<std::string>& images,
                                 int64_t now_seconds);

// Snapshot names: printable, no "::", not "latest", at most 255 bytes.
void validate_snapshot_name(const std::string& name);

}  // namespace arche::backup
