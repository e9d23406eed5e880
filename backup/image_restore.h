// Restoring a disk image from a snapshot: into a new raw or qcow2 file (sparse: holes
// and all-zero blocks are not written) or onto a block device (holes are zeroed).
// Chunks are fetched in pack order, decrypted and written by all cores. Every chunk
// is authenticated; a damaged one stops the restore with an error and the
// half-written file is removed, so a restore never yields wrong data silently.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backup/repository.h"
#include "backup/snapshot.h"

namespace arche::backup {

struct ImageRestoreOptions {
  std::string format = "raw";  // raw or qcow2 (block devices are always written raw)
  bool overwrite = false;      // replace an existing file; required for block devices
  bool sync = false;           // make the result durable before it appears under its name
  unsigned threads = 0;        // 0: one per core
};

struct ImageRestoreStats {
  uint64_t size = 0;
  uint64_t bytes_written = 0;
  uint64_t chunks = 0;
  uint64_t holes = 0;
  uint64_t removed_temporaries = 0;  // left beside the target by interrupted restores
  double seconds = 0;
};

// The chunk ids of an image, in disk order (all list blobs read).
std::vector<Id> load_image_chunks(Repository& repo, const ImageRecord& image);

ImageRestoreStats restore_image(Repository& repo, const ImageRecord& image, const std::string& target,
                                const ImageRestoreOptions& options);

}  // namespace arche::backup
