// Every blob a set of snapshots needs: their image chunk lists and chunks, trees,
// file chunk lists and file chunks. Prune keeps what this finds; tape copies the
// packs that hold it (tape/tape_backup.cpp).
#pragma once

#include <unordered_set>
#include <vector>

#include "backup/repository.h"
#include "backup/snapshot.h"

namespace arche::backup {

// Collects ids (sorted, unique on take(): 32 bytes per blob). Reads trees and chunk
// lists through the repository's index, which must be loaded.
class UsedBlobs {
 public:
  explicit UsedBlobs(Repository& repo) : repo_(repo) {}

  void add_snapshot(const Snapshot& s);
  // Sorted and unique.
  std::vector<Id> take();

 private:
  void add_tree(const Snapshot& s, const std::vector<Id>& pieces, const std::string& path);

  Repository& repo_;
  std::vector<Id> ids_;
  std::unordered_set<Id, IdHash> trees_;
  size_t last_compacted_ = 0;
};

}  // namespace arche::backup
