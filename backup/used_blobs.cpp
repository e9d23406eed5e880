#include "backup/used_blobs.h"

#include <algorithm>

#include "backup/chunk_list.h"
#include "backup/tree_store.h"
#include "core/interrupt.h"

namespace arche::backup {

void UsedBlobs::add_snapshot(const Snapshot& s) {
  for (const ImageRecord& image : s.images) {
    for (size_t b = 0; b < image.lists.size(); ++b) {
      const std::string what = fmt::format("snapshot {}: image {}: chunk list {}", s.name, image.name, b);
      ids_.push_back(image.lists[b]);
      for (const Id& id : decode_image_list(repo_.read_blob(image.lists[b], what), what))
        if (!id.is_zero()) ids_.push_back(id);
    }
  }
  if (!s.tree.empty()) add_tree(s, s.tree, "");
}

std::vector<Id> UsedBlobs::take() {
  std::sort(ids_.begin(), ids_.end());
  ids_.erase(std::unique(ids_.begin(), ids_.end()), ids_.end());
  return std::move(ids_);
}

void UsedBlobs::add_tree(const Snapshot& s, const std::vector<Id>& pieces, const std::string& path) {
  interrupt::check();
  bool all_seen = true;
  for (const Id& id : pieces) {
    ids_.push_back(id);
    all_seen &= !trees_.insert(id).second;
  }
  if (all_seen) return;  // an identical directory was walked already
  Tree tree = load_tree(repo_, pieces, fmt::format("snapshot {}: directory {}", s.name, path.empty() ? "/" : path));
  for (const Node& n : tree.nodes) {
    if (n.type == NodeType::dir) {
      add_tree(s, n.subtree, path + "/" + n.name);
    } else if (n.type == NodeType::file) {
      for (const Id& id : n.chunk_lists) ids_.push_back(id);
      for (const ChunkRef& c : load_file_chunks(repo_, n, "snapshot " + s.name + ": file " + path + "/" + n.name))
        if (!c.is_hole()) ids_.push_back(c.id);
    }
  }
  // Keep the vector from growing far beyond the set it stands for.
  if (ids_.size() > 2 * last_compacted_ + (1u << 20)) {
    std::sort(ids_.begin(), ids_.end());
    ids_.erase(std::unique(ids_.begin(), ids_.end()), ids_.end());
    last_compacted_ = ids_.size();
  }
}

}  // namespace arche::backup
