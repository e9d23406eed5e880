// Every blob a set of snapshots needs: their trees, chunk lists and chunks, sorted
// and unique (32 bytes per blob). prune keeps these; copy and tape move them.
#pragma once

#include <unordered_set>
#include <vector>

#include "backup/repository.h"
#include "backup/snapshot.h"

namespace arche::backup {

class UsedBlobs {
 public:
  explicit UsedBlobs(Repository& repo) : repo_(repo) {}

  // Reads the snapshot's chunk lists and trees (authenticated) and notes every id.
  void add_snapshot(const Snapshot& s);
  // Sorted and unique.
  std::vector<Id> take();

 private:
  void add_tree(const Snapshot& s, const std::vector<Id>& pieces, const std::string& path);

  Repository& repo_;
  std::vector<Id> ids_;
  std::unordered_set<Id, IdHash> trees_;  // tree pieces walked already
  size_t last_compacted_ = 0;
};

}  // namespace arche::backup
