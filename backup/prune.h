// Retention: which snapshots a policy keeps (borg/restic semantics), and prune:
// remove the others, then free the space only they used. Packs nobody needs are
// deleted; packs of which more than a threshold is unused are repacked (their live
// frames copied as they are into new packs: no decryption needed) and then deleted.
//
// Order (crash-safe at every step): snapshot manifests removed; new packs written
// and made durable; one new index for everything that stays written; old index files
// removed; unused packs deleted. Prune takes the exclusive lock.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backup/repository.h"
#include "backup/snapshot.h"

namespace arche::backup {

struct KeepPolicy {
  int last = 0, hourly = 0, daily = 0, weekly = 0, monthly = 0, yearly = 0;
  int64_t within_ns = 0;  // keep everything this close to the newest snapshot
  bool empty() const {
    return !last && !hourly && !daily && !weekly && !monthly && !yearly && !within_ns;
  }
};

// "12h", "7d", "2w", "6m" (months of 31 days), "1y" (365 days); combinations "1y6m".
int64_t parse_duration(const std::string& text);

struct KeepDecision {
  size_t index;  // into the snapshots given
  bool keep = false;
  std::vector<std::string> reasons;  // "last", "daily", "within", ...
};

// `snapshots` in any order; decisions in the same order. Buckets (hour, day, ISO
// week, month, year) are taken in local time. For each rule, going from the newest
// snapshot back, the newest snapshot of each not yet seen bucket is kept until the
// rule's count is reached.
std::vector<KeepDecision> apply_policy(const std::vector<Snapshot>& snapshots, const KeepPolicy& policy);

struct PruneOptions {
  KeepPolicy policy;
  std::string prefix;            // apply only to snapshots whose name starts with this
  bool dry_run = false;
  double repack_threshold = 0.2;  // repack packs with more than this share unused
  unsigned threads = 0;
};

struct PruneReport {
  std::vector<Snapshot> kept, removed;
  std::vector<std::vector<std::string>> kept_reasons;
  uint64_t packs_deleted = 0, packs_repacked = 0, packs_written = 0;
  uint64_t bytes_freed = 0;    // pack bytes deleted minus pack bytes written
  uint64_t bytes_repacked = 0; // live bytes copied
  uint64_t unused_chunks = 0;
};

PruneReport prune(Repository& repo, const PruneOptions& options);

// Removes one snapshot manifest (the space is freed by the next prune).
void forget_snapshot(Repository& repo, const std::string& ref);

}  // namespace arche::backup
