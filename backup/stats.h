// What `list`, `info` and `diff` show, each under a shared lock: the snapshots,
// repository figures, one snapshot, the changes between two snapshots.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backup/repository.h"
#include "backup/snapshot.h"
#include "core/json.h"

namespace arche::backup {

struct RepoInfo {
  uint64_t snapshots = 0;
  uint64_t damaged_snapshots = 0;           // manifests that do not read
  uint64_t packs = 0, pack_bytes = 0;       // on disk
  uint64_t chunks = 0, chunk_bytes = 0;     // plaintext of every stored chunk
  uint64_t logical_bytes = 0;               // sum of what the snapshots hold
  uint64_t key_slots = 0;
  uint64_t index_files = 0;
  double dedup_ratio() const { return chunk_bytes ? double(logical_bytes) / double(chunk_bytes) : 0; }
  double compression_ratio() const { return pack_bytes ? double(chunk_bytes) / double(pack_bytes) : 0; }
};

RepoInfo repository_info(Repository& repo);

struct SnapshotList {
  std::vector<Snapshot> snapshots;        // oldest first
  std::vector<DamagedManifest> damaged;   // files in snapshots/ that do not read
};
SnapshotList list_snapshots(Repository& repo);
// One snapshot by name, "latest" or id prefix.
Snapshot find_snapshot(Repository& repo, const std::string& ref);

struct DiffResult {
  struct FileChange {
    char change;  // '+' added, '-' removed, 'M' content changed, 'T' type changed, 'U' metadata only
    std::string path;
  };
  struct ImageChange {
    std::string name;
    char change;  // '+', '-', 'M' (some chunks differ), '=' identical
    uint64_t chunks = 0, changed_chunks = 0, changed_bytes = 0;
  };
  std::vector<FileChange> files;
  std::vector<ImageChange> images;
};

DiffResult diff_snapshots(Repository& repo, const Snapshot& a, const Snapshot& b);

struct SnapshotDiff {
  Snapshot a, b;
  DiffResult changes;
};
SnapshotDiff diff_snapshots(Repository& repo, const std::string& a, const std::string& b);

}  // namespace arche::backup
