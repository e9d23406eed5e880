// Prune: remove the snapshots a retention policy does not keep (retention.h), then
// free the space only they used. Packs nobody needs are deleted; packs of which more
// than a threshold is unused are repacked (their live frames copied as they are into
// new packs: no decryption needed) and then deleted.
//
// Prune runs beside backups (a maintenance lock: shared locks allowed, no second
// prune), so it deletes in two phases (docs/storage.md "Prune beside backups"): it
// takes packs out of the index and marks them for deletion (deletions.h), and
// deletes them only when no backup that was running when the mark appeared still
// runs: at once when none was, else at a later prune. Even then a marked pack that a
// snapshot needs is indexed again instead.
//
// Order (crash-safe at every step): snapshot manifests removed; new packs written
// and made durable; one new index for everything that stays written; old index files
// removed; the mark written; due packs deleted; their marks removed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backup/repository.h"
#include "backup/retention.h"
#include "backup/snapshot.h"

namespace arche::backup {

struct PruneOptions {
  KeepPolicy policy;
  SnapshotFilter filter;  // which snapshots the policy applies to
  GroupBy group_by;       // applied to each group on its own
  bool dry_run = false;
  double repack_threshold = 0.2;  // repack packs with more than this share unused
  unsigned threads = 0;
};

struct PruneReport {
  std::vector<RetentionGroup> groups;
  uint64_t packs_deleted = 0, packs_repacked = 0, packs_written = 0;
  uint64_t packs_waiting = 0, bytes_waiting = 0;  // marked, deleted by a later prune
  uint64_t packs_revived = 0;  // unindexed or marked, but a snapshot needs them: indexed again
  uint64_t bytes_freed = 0;    // pack bytes deleted minus pack bytes written
  uint64_t bytes_repacked = 0; // live bytes copied
  uint64_t unused_chunks = 0;
};

PruneReport prune(Repository& repo, const PruneOptions& options);

// Removes one snapshot manifest (the space is freed by the next prune): by name,
// "latest" or id prefix; a damaged manifest by its id prefix. Returns the id.
std::string forget_snapshot(Repository& repo, const std::string& ref);

}  // namespace arche::backup
