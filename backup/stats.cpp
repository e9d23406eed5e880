#include "backup/stats.h"

#include <algorithm>
#include <unordered_set>

#include "backup/chunk_list.h"
#include "backup/image_restore.h"
#include "backup/lock.h"
#include "backup/tree_store.h"
#include "core/error.h"

namespace arche::backup {

RepoInfo repository_info(Repository& repo) {
  RepoLock lock(repo, LockMode::shared, "backup info");
  RepoInfo info;
  std::vector<std::string> names;
  std::vector<PackInfo> packs = repo.read_all_index_files(&names);
  info.index_files = names.size();
  std::unordered_set<Id, IdHash> packs_seen, chunks_seen;
  for (const PackInfo& p : packs) {
    if (!packs_seen.insert(p.id).second) continue;
    ++info.packs;
    info.pack_bytes += p.size;
    for (const PackEntry& e : p.entries)
      if (chunks_seen.insert(e.id).second) {
        ++info.chunks;
        info.chunk_bytes += e.raw_length;
      }
  }
  std::vector<DamagedManifest> damaged;
  for (const Snapshot& s : load_snapshots(repo, &damaged)) {
    ++info.snapshots;
    info.logical_bytes += s.stats.total_bytes;
  }
  info.damaged_snapshots = damaged.size();
  info.key_slots = repo.list_files("keys").size();
  return info;
}

SnapshotList list_snapshots(Repository& repo) {
  RepoLock lock(repo, LockMode::shared, "backup list");
  SnapshotList list;
  list.snapshots = load_snapshots(repo, &list.damaged);
  return list;
}

Snapshot find_snapshot(Repository& repo, const std::string& ref) {
  RepoLock lock(repo, LockMode::shared, "backup info " + ref);
  std::vector<DamagedManifest> damaged;
  std::vector<Snapshot> all = load_snapshots(repo, &damaged);
  return resolve_snapshot(all, ref, damaged);
}

namespace {

bool same_content(const Node& a, const Node& b) {
  return a.size == b.size && a.chunk_count == b.chunk_count && a.chunks == b.chunks && a.chunk_lists == b.chunk_lists;
}

void diff_trees(Repository& repo, const std::vector<Id>* a, const std::vector<Id>* b, const std::string& path,
                DiffResult& out) {
  if (a && b && *a == *b) return;  // identical directories encode identically
  Tree ta, tb;
  if (a) ta = load_tree(repo, *a, "directory " + (path.empty() ? "/" : path));
  if (b) tb = load_tree(repo, *b, "directory " + (path.empty() ? "/" : path));
  size_t i = 0, j = 0;
  auto added = [&](const Node& n, char change) {
    out.files.push_back({change, path + "/" + n.name});
    if (n.type == NodeType::dir) {
      if (change == '+') diff_trees(repo, nullptr, &n.subtree, path + "/" + n.name, out);
      else diff_trees(repo, &n.subtree, nullptr, path + "/" + n.name, out);
    }
  };
  while (i < ta.nodes.size() || j < tb.nodes.size()) {
    if (j == tb.nodes.size() || (i < ta.nodes.size() && ta.nodes[i].name < tb.nodes[j].name)) {
      added(ta.nodes[i++], '-');
    } else if (i == ta.nodes.size() || tb.nodes[j].name < ta.nodes[i].name) {
      added(tb.nodes[j++], '+');
    } else {
      const Node &x = ta.nodes[i++], &y = tb.nodes[j++];
      const std::string child = path + "/" + x.name;
      if (x.type != y.type) {
        out.files.push_back({'T', child});
      } else if (x.type == NodeType::dir) {
        if (!x.same_metadata(y)) out.files.push_back({'U', child});
        diff_trees(repo, &x.subtree, &y.subtree, child, out);
      } else if (x.type == NodeType::file && !same_content(x, y)) {
        out.files.push_back({'M', child});
      } else if (!x.same_metadata(y)) {
        out.files.push_back({'U', child});
      }
    }
  }
}

}  // namespace

DiffResult diff_snapshots(Repository& repo, const Snapshot& a, const Snapshot& b) {
  DiffResult out;
  for (const ImageRecord& ia : a.images) {
    const ImageRecord* ib = b.find_image(ia.name);
    if (!ib) {
      out.images.push_back({ia.name, '-', ia.chunk_count, 0, 0});
      continue;
    }
    DiffResult::ImageChange c{ia.name, '=', ib->chunk_count, 0, 0};
    if (ia.lists != ib->lists || ia.size != ib->size) {
      std::vector<Id> ca = load_image_chunks(repo, ia), cb = load_image_chunks(repo, *ib);
      const size_t n = std::max(ca.size(), cb.size());
      for (size_t k = 0; k < n; ++k) {
        const bool differ = k >= ca.size() || k >= cb.size() || ca[k] != cb[k];
        if (!differ) continue;
        ++c.changed_chunks;
        const uint64_t end = std::max(ia.size, ib->size);
        c.changed_bytes += std::min<uint64_t>(ib->chunk_size, end - k * ib->chunk_size);
      }
      c.change = c.changed_chunks ? 'M' : '=';
    }
    out.images.push_back(c);
  }
  for (const ImageRecord& ib : b.images)
    if (!a.find_image(ib.name)) out.images.push_back({ib.name, '+', ib.chunk_count, ib.chunk_count, ib.size});
  if (!a.tree.empty() || !b.tree.empty())
    diff_trees(repo, a.tree.empty() ? nullptr : &a.tree, b.tree.empty() ? nullptr : &b.tree, "", out);
  return out;
}

SnapshotDiff diff_snapshots(Repository& repo, const std::string& a, const std::string& b) {
  RepoLock lock(repo, LockMode::shared, "backup diff " + a + " " + b);
  repo.load_index(/*adopt_unindexed=*/false);
  std::vector<DamagedManifest> damaged;
  std::vector<Snapshot> all = load_snapshots(repo, &damaged);
  SnapshotDiff d;
  d.a = resolve_snapshot(all, a, damaged);
  d.b = resolve_snapshot(all, b, damaged);
  d.changes = diff_snapshots(repo, d.a, d.b);
  return d;
}

}  // namespace arche::backup
