// `arche backup restore`: from start to finish, under a shared lock: load the index,
// find the snapshot (damaged manifests of other snapshots do not stand in the way),
// then restore one image (image_restore.h) or files (file_restore.h).
#pragma once

#include <optional>
#include <string>

#include "backup/file_restore.h"
#include "backup/image_restore.h"
#include "backup/repository.h"
#include "backup/snapshot.h"

namespace arche::backup {

struct RestoreRequest {
  std::string snapshot;  // name, "latest" or id prefix
  std::string image;     // the image to restore; empty: files
  std::string to;        // image: the file or block device; files: the directory
  ImageRestoreOptions image_options;
  FileRestoreOptions file_options;  // its paths must be empty for an image
};

struct RestoreResult {
  Snapshot snapshot;
  std::optional<ImageRecord> image;  // set for an image restore
  ImageRestoreStats image_stats;
  FileRestoreStats file_stats;
};

RestoreResult restore_snapshot(Repository& repo, const RestoreRequest& request);

}  // namespace arche::backup
