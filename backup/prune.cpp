#include "backup/prune.h"

#include <unistd.h>

#include <algorithm>
#include <boost/filesystem.hpp>
#include <ctime>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "backup/chunk_list.h"
#include "backup/chunk_store.h"
#include "backup/lock.h"
#include "backup/tree_store.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "core/log.h"
#include "core/progress.h"

namespace arche::backup {

namespace {

// Collects every blob a set of snapshots needs (sorted, unique: 32 bytes per blob).
class UsedBlobs {
 public:
  explicit UsedBlobs(Repository& repo) : repo_(repo) {}

  void add_snapshot(const Snapshot& s) {
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

  // Sorted and unique.
  std::vector<Id> take() {
    std::sort(ids_.begin(), ids_.end());
    ids_.erase(std::unique(ids_.begin(), ids_.end()), ids_.end());
    return std::move(ids_);
  }

 private:
  void add_tree(const Snapshot& s, const std::vector<Id>& pieces, const std::string& path) {
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

  Repository& repo_;
  std::vector<Id> ids_;
  std::unordered_set<Id, IdHash> trees_;
  size_t last_compacted_ = 0;
};

}  // namespace

std::string forget_snapshot(Repository& repo, const std::string& ref) {
  RepoLock lock(repo, LockMode::exclusive, "backup forget " + ref);
  std::vector<DamagedManifest> damaged;
  std::vector<Snapshot> all = load_snapshots(repo, &damaged);
  // A damaged manifest has no readable name: it is forgotten by its id.
  std::string id;
  try {
    id = resolve_snapshot(all, ref).id;
  } catch (const Error& e) {
    const DamagedManifest* d = e.category() == ErrorCategory::not_found ? find_damaged(damaged, ref) : nullptr;
    if (!d) throw;
    id = d->id;
  }
  repo.remove_file("snapshots", id);
  return id;
}

namespace {

PruneReport run_prune(Repository& repo, const PruneOptions& options) {
  if (options.policy.empty()) fail(ErrorCategory::usage, "prune: no --keep rule given (that would remove everything)");
  PruneReport report;
  RepoLock lock(repo, LockMode::exclusive, "backup prune");
  std::vector<DamagedManifest> damaged;
  std::vector<Snapshot> all = load_snapshots(repo, &damaged);
  if (!damaged.empty())
    fail(ErrorCategory::corrupt,
         "prune refuses to run while a snapshot manifest is unreadable (its data would count as unused): {}; "
         "`arche backup repair snapshots` removes it",
         damaged.front().error);

  report.groups = apply_retention(all, options.filter, options.group_by, options.policy);
  std::unordered_set<std::string> dropped;
  for (const RetentionGroup& g : report.groups)
    for (const Snapshot& s : g.removed) dropped.insert(s.id);
  std::vector<Snapshot> remaining;
  for (const Snapshot& s : all)
    if (!dropped.count(s.id)) remaining.push_back(s);

  // What stays needed, and what each pack holds.
  repo.load_index(/*adopt_unindexed=*/false);
  std::vector<std::string> index_files;
  std::vector<PackInfo> packs = repo.read_all_index_files(&index_files);
  UsedBlobs collector(repo);
  for (const Snapshot& s : remaining) collector.add_snapshot(s);
  const std::vector<Id> used = collector.take();
  auto is_used = [&](const Id& id) { return std::binary_search(used.begin(), used.end(), id); };

  std::vector<Id> present_list = repo.list_packs();
  std::unordered_set<Id, IdHash> present(present_list.begin(), present_list.end());
  std::unordered_set<Id, IdHash> seen_packs, seen_chunks;
  std::vector<const PackInfo*> keep_packs, repack_packs, delete_packs;
  for (const PackInfo& p : packs) {
    if (!seen_packs.insert(p.id).second) continue;
    if (!present.count(p.id)) {
      warn("pack {} is listed in the index but missing; leaving it out of the new index", p.id.short_hex());
      continue;
    }
    uint64_t live = 0, dead = 0;
    for (const PackEntry& e : p.entries) {
      // A chunk counts once: a second copy in another pack is as dead as an unused one.
      if (is_used(e.id) && seen_chunks.insert(e.id).second) live += e.length;
      else {
        dead += e.length;
        ++report.unused_chunks;
      }
    }
    if (live == 0) delete_packs.push_back(&p);
    else if (static_cast<double>(dead) > options.repack_threshold * static_cast<double>(live + dead))
      repack_packs.push_back(&p);
    else keep_packs.push_back(&p);
  }
  // Everything a snapshot needs must be in a pack that stays or is repacked.
  for (const Id& id : used)
    if (!seen_chunks.count(id))
      fail(ErrorCategory::corrupt,
           "chunk {} needed by a snapshot is in no pack; prune stops before changing anything (run: arche backup "
           "check)",
           id.short_hex());
  // Packs no index lists, left by interrupted backups: nothing refers to them.
  std::vector<Id> orphans;
  for (const Id& id : present_list)
    if (!seen_packs.count(id)) orphans.push_back(id);

  uint64_t freed = 0;
  for (const PackInfo* p : delete_packs) freed += p->size;
  for (const PackInfo* p : repack_packs) freed += p->size;
  for (const Id& id : orphans) freed += boost::filesystem::file_size(repo.pack_path(id));
  if (options.dry_run) {
    for (const PackInfo* p : repack_packs)
      for (const PackEntry& e : p->entries)
        if (is_used(e.id)) report.bytes_repacked += e.length;
    report.bytes_freed = freed > report.bytes_repacked ? freed - report.bytes_repacked : 0;
    report.packs_deleted = delete_packs.size() + orphans.size();
    report.packs_repacked = repack_packs.size();
    return report;
  }

  // 1. The manifests go first: from here on their data is merely unused.
  for (const RetentionGroup& g : report.groups)
    for (const Snapshot& s : g.removed) repo.remove_file("snapshots", s.id);

  // 2. Live frames of packs being repacked go into new packs, copied as they are.
  repo.reset_index();  // from here on: only the packs that stay, so live frames of the others get copied
  ChunkIndex& index = repo.index();
  for (const PackInfo* p : keep_packs) index.add_pack(*p);
  index.finalize();
  std::vector<PackInfo> written;
  if (!repack_packs.empty()) {
    uint64_t total = 0;
    for (const PackInfo* p : repack_packs) total += p->size;
    Progress progress("repack", total);
    ChunkStore store(repo, repo.settings().compression_level);
    std::vector<uint8_t> frame, copy, scratch;
    for (const PackInfo* p : repack_packs) {
      interrupt::check();
      File f = File::open(repo.pack_path(p->id), OpenMode::read_only);
      for (const PackEntry& e : p->entries) {
        if (!is_used(e.id) || index.contains(e.id)) continue;
        frame.resize(e.length);
        f.read_exact(e.offset, frame);
        // Never carry damage forward silently: the frame must authenticate.
        copy = frame;
        open_frame(repo.keys(), copy, &e.id, scratch, fmt::format("pack {} (repacking)", p->id.short_hex()));
        store.store_frame(frame, e.id, e.kind, e.raw_length);
        report.bytes_repacked += e.length;
      }
      progress.add(p->size);
    }
    written = store.finish();
    progress.finish();
  }

  // 3. One index for everything that stays, then the old index files go.
  std::vector<PackInfo> final_packs;
  for (const PackInfo* p : keep_packs) final_packs.push_back(*p);
  for (const PackInfo& p : written) final_packs.push_back(p);
  std::string new_index = final_packs.empty() ? std::string() : repo.write_index_file(final_packs);
  for (const std::string& name : index_files)
    if (name != new_index) repo.remove_file("index", name);

  // 4. Only now the packs: nothing refers to them any more.
  auto remove_pack = [&](const Id& id) {
    std::string path = repo.pack_path(id);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) throw_errno(errno, "remove " + path);
  };
  for (const PackInfo* p : delete_packs) remove_pack(p->id);
  for (const PackInfo* p : repack_packs) remove_pack(p->id);
  for (const Id& id : orphans) remove_pack(id);
  for (int i = 0; i < 256; ++i) sync_directory(repo.root() + fmt::format("/data/{:02x}", i));
  repo.remove_dead_temp_files();

  uint64_t written_bytes = 0;
  for (const PackInfo& p : written) written_bytes += p.size;
  report.packs_deleted = delete_packs.size() + orphans.size();
  report.packs_repacked = repack_packs.size();
  report.packs_written = written.size();
  report.bytes_freed = freed > written_bytes ? freed - written_bytes : 0;
  return report;
}

}  // namespace

PruneReport prune(Repository& repo, const PruneOptions& options) {
  try {
    return run_prune(repo, options);
  } catch (const Error& e) {
    if (e.category() != ErrorCategory::interrupted) throw;
    fail(ErrorCategory::interrupted,
         "{}: prune stopped; the repository is consistent (nothing a snapshot needs was removed); run prune again to "
         "finish",
         e.what());
  }
}

}  // namespace arche::backup
