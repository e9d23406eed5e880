#include "backup/prune.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <map>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "backup/chunk_list.h"
#include "backup/chunk_store.h"
#include "backup/deletions.h"
#include "backup/lock.h"
#include "backup/tree_store.h"
#include "backup/used_blobs.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/units.h"

namespace arche::backup {

std::string forget_snapshot(Repository& repo, const std::string& ref) {
  RepoLock lock(repo, LockMode::maintain, "backup forget " + ref);
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

// The names of the locks of other processes that may still be at work: not this
// one's, not stale, not abandoned (a process that could not refresh its lock for so
// long stops before it writes: lock.h). A damaged lock may be anyone's: it counts.
std::unordered_set<std::string> live_locks(const Repository& repo, const RepoLock& mine) {
  std::unordered_set<std::string> out;
  for (const LockInfo& l : list_locks(repo))
    if (l.name != mine.name() && !l.stale && !l.abandoned) out.insert(l.name);
  return out;
}

void wait_for_listings(const Repository& repo) {
  const StoreCapabilities caps = repo.store().capabilities();
  if (!caps.consistent_listing && caps.listing_delay_ms)
    std::this_thread::sleep_for(std::chrono::milliseconds(caps.listing_delay_ms));
}

PackInfo footer_of(Repository& repo, const Id& id) {
  return read_pack_index(*repo.open_pack_object(id), id, repo.id(), repo.keys());
}

class Pruner {
 public:
  Pruner(Repository& repo, const PruneOptions& options)
      : repo_(repo), options_(options), lock_(repo, LockMode::maintain, "backup prune") {}

  PruneReport run() {
    // Earlier marks are due once every lock that was there beside them has gone;
    // judged before the snapshots are read, so those backups' snapshots are read too.
    const std::unordered_set<std::string> live = live_locks(repo_, lock_);
    for (const DeletionMark& m : load_deletion_marks(repo_)) {
      const bool due = m.locks_recorded ? std::none_of(m.locks.begin(), m.locks.end(),
                                                       [&](const std::string& l) { return live.count(l) != 0; })
                                        : live.empty();
      for (const Id& id : m.packs) (due ? due_ : waiting_).insert(id);
      if (due) due_marks_.push_back(m.name);
    }
    for (const Id& id : waiting_) due_.erase(id);  // in a due and a waiting mark: it waits

    std::vector<DamagedManifest> damaged;
    all_ = load_snapshots(repo_, &damaged);
    if (!damaged.empty())
      fail(ErrorCategory::corrupt,
           "prune refuses to run while a snapshot manifest is unreadable (its data would count as unused): {}; "
           "`arche backup repair snapshots` removes it",
           damaged.front().error);
    report_.groups = apply_retention(all_, options_.filter, options_.group_by, options_.policy);
    std::unordered_set<std::string> dropped;
    for (const RetentionGroup& g : report_.groups)
      for (const Snapshot& s : g.removed) dropped.insert(s.id);

    repo_.load_index(/*adopt_unindexed=*/false);
    read_unindexed_packs_too();
    UsedBlobs collector(repo_);
    for (const Snapshot& s : all_)
      if (!dropped.count(s.id)) collector.add_snapshot(s);
    used_ = collector.take();
    plan();
    if (options_.dry_run) return dry_run_report();

    // 1. The manifests go first: from here on their data is merely unused.
    for (const Snapshot& s : all_)
      if (dropped.count(s.id)) repo_.remove_file("snapshots", s.id);
    // 2. Live frames of partly used packs are copied into new packs; 3. one index
    // for what stays replaces the old index files.
    std::vector<PackInfo> written = repack();
    write_new_index(written);
    // 4. The rest is marked, and deleted once no backup can still refer to it.
    delete_due();
    if (lock_.only_local_holders()) repo_.remove_dead_temp_files();
    uint64_t written_bytes = 0;
    for (const PackInfo& p : written) written_bytes += p.size;
    report_.packs_repacked = repack_packs_.size();
    report_.packs_written = written.size();
    report_.bytes_freed = deleted_bytes_ > written_bytes ? deleted_bytes_ - written_bytes : 0;
    return report_;
  }

 private:
  bool is_used(const Id& id) const { return std::binary_search(used_.begin(), used_.end(), id); }

  // A backup beside an earlier prune writes its manifest while the packs it relies on
  // may be in no index file (that prune took them out; the backup indexes them again
  // right after its manifest). Its trees must still be walked, so the chunks of packs
  // no index file lists are made readable too; plan() then indexes again the packs
  // holding what a snapshot needs.
  void read_unindexed_packs_too() {
    ChunkIndex& index = repo_.index();
    std::unordered_set<Id, IdHash> indexed;
    for (size_t n = 0; n < index.pack_count(); ++n) indexed.insert(index.pack_id(static_cast<uint32_t>(n)));
    bool added = false;
    for (const PackObject& p : repo_.list_packs()) {
      if (indexed.count(p.id)) continue;
      interrupt::check();
      try {
        index.add_pack(footer_of(repo_, p.id));
        added = true;
      } catch (const Error& e) {
        if (e.category() == ErrorCategory::interrupted) throw;  // unreadable or deleted meanwhile: not needed here
      }
    }
    if (added) index.finalize();
  }

  // Which indexed packs stay, are repacked or go; which unindexed ones snapshots need.
  void plan() {
    for (const std::string& name : repo_.list_files("index")) {
      std::vector<PackInfo> listed = repo_.read_index_file(name);
      std::vector<Id>& ids = index_files_[name];
      for (PackInfo& p : listed) {
        ids.push_back(p.id);
        packs_.push_back(std::move(p));
      }
    }
    for (const PackObject& p : repo_.list_packs()) sizes_.emplace(p.id, p.size);
    std::unordered_set<Id, IdHash> seen_packs;
    for (const PackInfo& p : packs_) {
      if (!seen_packs.insert(p.id).second) continue;
      if (!sizes_.count(p.id)) {
        warn("pack {} is listed in the index but missing; leaving it out of the new index", p.id.short_hex());
        continue;
      }
      uint64_t live = 0, dead = 0;
      for (const PackEntry& e : p.entries) {
        // A chunk counts once: a second copy in another pack is as dead as an unused one.
        if (is_used(e.id) && seen_chunks_.insert(e.id).second) live += e.length;
        else {
          dead += e.length;
          ++report_.unused_chunks;
        }
      }
      if (live == 0) delete_packs_.push_back(&p);
      else if (static_cast<double>(dead) > options_.repack_threshold * static_cast<double>(live + dead))
        repack_packs_.push_back(&p);
      else keep_packs_.push_back(&p);
    }
    // A marked pack an index lists again (a backup relied on it) is judged afresh.
    for (const Id& id : seen_packs) {
      due_.erase(id);
      waiting_.erase(id);
    }
    // Packs no index lists: marked by an earlier prune, or left by interrupted (or
    // still running) backups.
    for (const auto& [id, size] : sizes_)
      if (!seen_packs.count(id)) unindexed_.push_back(id);
    // Everything a snapshot needs must be in a pack that stays: unindexed ones
    // holding such chunks are indexed again.
    std::unordered_set<Id, IdHash> missing;
    for (const Id& id : used_)
      if (!seen_chunks_.count(id)) missing.insert(id);
    if (!missing.empty()) {
      for (const Id& id : unindexed_) {
        PackInfo info;
        try {
          info = footer_of(repo_, id);
        } catch (const Error& e) {
          if (e.category() == ErrorCategory::interrupted) throw;
          continue;
        }
        if (std::none_of(info.entries.begin(), info.entries.end(), [&](const PackEntry& e) { return missing.count(e.id); }))
          continue;
        for (const PackEntry& e : info.entries) missing.erase(e.id);
        revived_.push_back(std::move(info));
      }
      for (const PackInfo& p : revived_) {
        unindexed_.erase(std::find(unindexed_.begin(), unindexed_.end(), p.id));
        due_.erase(p.id);
        waiting_.erase(p.id);
      }
      report_.packs_revived = revived_.size();
    }
    if (!missing.empty())
      fail(ErrorCategory::corrupt,
           "chunk {} needed by a snapshot is in no pack; prune stops before changing anything (run: arche backup "
           "check)",
           missing.begin()->short_hex());
  }

  PruneReport dry_run_report() {
    uint64_t freed = 0;
    for (const PackInfo* p : delete_packs_) freed += p->size;
    for (const PackInfo* p : repack_packs_) {
      freed += p->size;
      for (const PackEntry& e : p->entries)
        if (is_used(e.id)) report_.bytes_repacked += e.length;
    }
    for (const Id& id : unindexed_) freed += sizes_[id];
    report_.bytes_freed = freed > report_.bytes_repacked ? freed - report_.bytes_repacked : 0;
    report_.packs_deleted = delete_packs_.size() + unindexed_.size();
    report_.packs_repacked = repack_packs_.size();
    return report_;
  }

  std::vector<PackInfo> repack() {
    repo_.reset_index();  // from here on: only the packs that stay, so live frames of the others get copied
    ChunkIndex& index = repo_.index();
    for (const PackInfo* p : keep_packs_) index.add_pack(*p);
    for (const PackInfo& p : revived_) index.add_pack(p);
    index.finalize();
    if (repack_packs_.empty()) return {};
    uint64_t total = 0;
    for (const PackInfo* p : repack_packs_) total += p->size;
    Progress progress("repack", total);
    ChunkStore store(repo_, repo_.settings().compression_level);
    std::vector<uint8_t> frame, copy, scratch;
    for (const PackInfo* p : repack_packs_) {
      interrupt::check();
      const std::vector<uint8_t> data = repo_.store().read(pack_relative_path(p->id));
      for (const PackEntry& e : p->entries) {
        if (!is_used(e.id) || index.contains(e.id)) continue;
        if (!range_within(e.offset, e.length, data.size()))
          fail(ErrorCategory::corrupt, "pack {} (repacking): frame at {} beyond its end", p->id.short_hex(), e.offset);
        frame.assign(data.begin() + e.offset, data.begin() + e.offset + e.length);
        // Never carry damage forward silently: the frame must authenticate.
        copy = frame;
        open_frame(repo_.keys(), copy, &e.id, scratch, fmt::format("pack {} (repacking)", p->id.short_hex()));
        store.store_frame(frame, e.id, e.kind, e.raw_length);
        report_.bytes_repacked += e.length;
      }
      progress.add(p->size);
    }
    std::vector<PackInfo> written = store.finish();
    progress.finish();
    return written;
  }

  void write_new_index(const std::vector<PackInfo>& written) {
    std::vector<PackInfo> final_packs;
    for (const PackInfo* p : keep_packs_) final_packs.push_back(*p);
    for (const PackInfo& p : revived_) final_packs.push_back(p);
    for (const PackInfo& p : written) final_packs.push_back(p);
    std::string new_index;
    if (!final_packs.empty()) {
      new_index = repo_.write_index_file(final_packs);
      std::vector<Id> ids;
      for (const PackInfo& p : final_packs) ids.push_back(p.id);
      index_files_[new_index] = std::move(ids);
    }
    for (auto it = index_files_.begin(); it != index_files_.end();) {
      if (it->first == new_index) {
        ++it;
        continue;
      }
      repo_.remove_file("index", it->first);
      it = index_files_.erase(it);
    }
  }

  // Every pack the index files list now (those this prune knows are not read again):
  // a backup beside it that relied on a marked pack has indexed it again.
  std::unordered_set<Id, IdHash> indexed_now() {
    std::unordered_set<Id, IdHash> out;
    for (const std::string& name : repo_.list_files("index")) {
      auto it = index_files_.find(name);
      if (it == index_files_.end()) {
        std::vector<Id> ids;
        for (const PackInfo& p : repo_.read_index_file(name)) ids.push_back(p.id);
        it = index_files_.emplace(name, std::move(ids)).first;
      }
      out.insert(it->second.begin(), it->second.end());
    }
    return out;
  }

  // Marks what goes, then deletes what is due: earlier marks whose backups have
  // ended, and this mark if no backup ran beside it.
  void delete_due() {
    DeletionMark mark;
    mark.created = static_cast<uint64_t>(std::time(nullptr));
    mark.prune_lock = lock_.name();
    for (const PackInfo* p : delete_packs_) mark.packs.push_back(p->id);
    for (const PackInfo* p : repack_packs_) mark.packs.push_back(p->id);
    for (const Id& id : unindexed_)
      if (!due_.count(id) && !waiting_.count(id)) mark.packs.push_back(id);
    bool at_once = false;
    if (!mark.packs.empty()) {
      // Visible before the locks are looked at: a backup that starts later sees the
      // mark and adopts none of these packs, and one that is not seen started later.
      write_deletion_mark(repo_, mark, false);
      wait_for_listings(repo_);
      const std::unordered_set<std::string> live = live_locks(repo_, lock_);
      mark.locks.assign(live.begin(), live.end());
      std::sort(mark.locks.begin(), mark.locks.end());
      mark.locks_recorded = true;
      write_deletion_mark(repo_, mark, true);
      at_once = live.empty();
      if (at_once) catch_up_with_new_snapshots(mark.packs);
      for (const Id& id : mark.packs)
        if (!waiting_.count(id)) (at_once ? due_ : waiting_).insert(id);
    }
    const std::unordered_set<Id, IdHash> indexed = indexed_now();
    lock_.ensure_fresh();
    for (const Id& id : due_) {
      if (indexed.count(id)) continue;
      repo_.remove_pack(id);
      ++report_.packs_deleted;
      deleted_bytes_ += sizes_.count(id) ? sizes_[id] : 0;
    }
    for (const std::string& name : due_marks_) repo_.remove_file("deletions", name);
    if (at_once) repo_.remove_file("deletions", mark.name);
    for (const Id& id : waiting_) {
      if (indexed.count(id)) continue;
      ++report_.packs_waiting;
      report_.bytes_waiting += sizes_.count(id) ? sizes_[id] : 0;
    }
  }

  // With no backup beside it this prune deletes at once; but a backup may have ended
  // while it ran, having relied on packs marked now. Its snapshot is visible: the
  // marked packs holding what it needs are indexed again (and not deleted).
  void catch_up_with_new_snapshots(const std::vector<Id>& marked) {
    std::unordered_set<std::string> known;
    for (const Snapshot& s : all_) known.insert(s.id);
    std::vector<Snapshot> fresh;
    for (Snapshot& s : load_snapshots(repo_))
      if (!known.count(s.id)) fresh.push_back(std::move(s));
    if (fresh.empty()) return;
    // Read them with everything there is: the index files and the marked packs.
    repo_.load_index(/*adopt_unindexed=*/false);
    std::unordered_set<Id, IdHash> indexed_chunks;
    for (const PackInfo& p : repo_.read_all_index_files())
      for (const PackEntry& e : p.entries) indexed_chunks.insert(e.id);
    std::vector<PackInfo> marked_packs;
    for (const Id& id : marked) {
      try {
        marked_packs.push_back(footer_of(repo_, id));
        repo_.index().add_pack(marked_packs.back());
      } catch (const Error& e) {
        if (e.category() == ErrorCategory::interrupted) throw;
      }
    }
    repo_.index().finalize();
    UsedBlobs collector(repo_);
    for (const Snapshot& s : fresh) collector.add_snapshot(s);
    std::unordered_set<Id, IdHash> needed;
    for (const Id& id : collector.take())
      if (!indexed_chunks.count(id)) needed.insert(id);
    std::vector<PackInfo> again;
    for (PackInfo& p : marked_packs)
      if (std::any_of(p.entries.begin(), p.entries.end(), [&](const PackEntry& e) { return needed.count(e.id); }))
        again.push_back(std::move(p));
    if (again.empty()) return;
    for (const PackInfo& p : again) waiting_.insert(p.id);  // never deleted by this run
    repo_.write_index_file(again);
    report_.packs_revived += again.size();
  }

  Repository& repo_;
  const PruneOptions& options_;
  RepoLock lock_;
  PruneReport report_;
  std::vector<Snapshot> all_;
  std::vector<Id> used_;
  std::map<std::string, std::vector<Id>> index_files_;  // index files this prune knows -> their packs
  std::vector<PackInfo> packs_;
  std::vector<const PackInfo*> keep_packs_, repack_packs_, delete_packs_;
  std::vector<PackInfo> revived_;
  std::vector<Id> unindexed_;  // present, in no index file
  std::unordered_map<Id, uint64_t, IdHash> sizes_;  // every pack present
  std::unordered_set<Id, IdHash> seen_chunks_;
  std::unordered_set<Id, IdHash> due_, waiting_;
  std::vector<std::string> due_marks_;
  uint64_t deleted_bytes_ = 0;
};

PruneReport run_prune(Repository& repo, const PruneOptions& options) {
  if (options.policy.empty()) fail(ErrorCategory::usage, "prune: no --keep rule given (that would remove everything)");
  Pruner pruner(repo, options);
  return pruner.run();
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
