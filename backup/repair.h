// Repairs, each under the exclusive lock:
//
// `repair index`: rebuilds the index from the packs themselves (their footers, or a
// front-to-back scan of the frames when a footer is damaged) and replaces all index
// files with one.
//
// `repair snapshots`: removes the files in snapshots/ that are not readable
// manifests (a flipped byte, a truncated or stray file), so nothing else has to work
// around them; a manifest that reads fine but is stored under another name than its
// content hash is stored again under its right name.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backup/repository.h"
#include "backup/snapshot.h"

namespace arche::backup {

struct RepairReport {
  uint64_t packs = 0, chunks = 0;
  uint64_t scanned_packs = 0;  // footer damaged: frames found by scanning
  std::vector<std::string> unreadable;  // packs left out
  uint64_t replaced_index_files = 0;
};

RepairReport repair_index(Repository& repo);

struct SnapshotRepairReport {
  std::vector<DamagedManifest> removed;
  std::vector<std::pair<std::string, std::string>> renamed;  // old name -> content hash
  uint64_t intact = 0;
};

SnapshotRepairReport repair_snapshots(Repository& repo, bool dry_run);

}  // namespace arche::backup
