// Retention: which snapshots a policy keeps (borg/restic semantics), applied to each
// group of snapshots on its own. Snapshots are grouped as restic does: by host and
// by what was backed up (paths and image sources), optionally by tags; so with two
// VMs backed up into one repository every night, --keep-daily 7 keeps seven
// snapshots of each. Filters (--host, --tag, --prefix) choose which snapshots the
// policy applies to at all; the others are left alone.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

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

// What snapshots are grouped by (--group-by host,paths,tags; "" puts all in one group).
struct GroupBy {
  bool host = true, paths = true, tags = false;
};
GroupBy parse_group_by(const std::string& text);

// Which snapshots the policy applies to.
struct SnapshotFilter {
  std::vector<std::string> hosts;  // any of them; empty: every host
  // Each entry a comma-separated set of tags the snapshot must all carry; a snapshot
  // matches when one entry matches (restic's --tag a,b --tag c). Empty: any.
  std::vector<std::string> tags;
  std::string prefix;  // of the snapshot name
  bool matches(const Snapshot& s) const;
};

// A group's key: the values of the fields grouped by (the others stay empty).
struct GroupKey {
  std::string host;
  std::vector<std::string> paths;  // sorted: paths and image sources
  std::vector<std::string> tags;   // sorted
  bool operator<(const GroupKey& o) const;
  bool operator==(const GroupKey& o) const = default;
};
GroupKey group_key(const Snapshot& s, const GroupBy& by);

struct RetentionGroup {
  GroupKey key;
  std::vector<Snapshot> kept, removed;  // newest first
  std::vector<std::vector<std::string>> kept_reasons;  // beside `kept`
};

// The decisions for every group of the snapshots the filter selects.
std::vector<RetentionGroup> apply_retention(const std::vector<Snapshot>& snapshots, const SnapshotFilter& filter,
                                            const GroupBy& by, const KeepPolicy& policy);

}  // namespace arche::backup
