// Backing up a disk image (any BlockDevice arche opens: raw, qcow2 with its backing
// chain, a block device) in fixed-size chunks aligned to the disk.
//
// Only what the chain's map() says holds data is read; chunks that are all zero
// become holes and are not stored. When an earlier snapshot recorded one of the
// layers of the chain as its top layer, unchanged (same path, size, inode, mtime and
// ctime), everything below that layer is taken from the earlier chunk list: only the
// clusters of the layers above it are read, laid over the earlier chunk where they
// cover part of one (docs/backup.md, "Incremental image backups").
#pragma once

#include <string>
#include <vector>

#include "backup/chunk_store.h"
#include "backup/pipeline.h"
#include "backup/snapshot.h"
#include "core/progress.h"
#include "image/block_device.h"

namespace arche::backup {

struct ImageBackupOptions {
  std::string name;          // empty: the file name of the image
  bool incremental = true;   // false: read everything even when an earlier layer matches
  bool force_share = false;  // read an image another process is writing
};

// The identity of a layer's files as recorded; `now_ns` decides `trusted`.
LayerIdentity identify_layer(const image::BlockDevice& layer, int64_t now_ns);

ImageRecord backup_image(ChunkStore& store, Pipeline& pipeline, const std::string& path,
                         const ImageBackupOptions& options, const std::vector<Snapshot>& history,
                         Progress* progress);

}  // namespace arche::backup
