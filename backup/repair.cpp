#include "backup/repair.h"

#include <algorithm>

#include "backup/chunk_store.h"
#include "backup/lock.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "core/log.h"

namespace arche::backup {

RepairReport repair_index(Repository& repo) {
  RepairReport report;
  RepoLock lock(repo, LockMode::exclusive, "backup repair index");
  repo.remove_dead_temp_files();
  std::vector<std::string> old_files = repo.list_files("index");
  std::vector<PackInfo> packs;
  std::vector<Id> salvage;
  for (const PackObject& p : repo.list_packs()) {
    interrupt::check();
    try {
      std::unique_ptr<ObjectReader> reader = repo.open_pack_object(p.id);
      packs.push_back(read_pack_index(*reader, p.id, repo.id(), repo.keys()));
    } catch (const Error& e) {
      if (e.category() == ErrorCategory::interrupted) throw;
      salvage.push_back(p.id);  // footer damaged: find its frames by scanning
    }
  }
  ChunkIndex& index = repo.index();
  for (const PackInfo& p : packs) index.add_pack(p);
  index.finalize();

  // Frames of packs whose footer is damaged go into new packs with sound footers.
  std::vector<Id> replaced;
  if (!salvage.empty()) {
    ChunkStore store(repo, repo.settings().compression_level);
    for (const Id& id : salvage) {
      interrupt::check();
      size_t found = 0;
      try {
        std::unique_ptr<ObjectReader> f = repo.open_pack_object(id);
        std::vector<uint8_t> header(kPackHeaderSize);
        f->read(0, header);
        check_pack_header(header, repo.id(), "pack " + id.short_hex());
        std::vector<uint8_t> copy, scratch;
        scan_pack_frames(*f, "pack " + id.short_hex(), [&](const FrameHeader& h, uint64_t, std::span<uint8_t> frame) {
          copy.assign(frame.begin(), frame.end());
          try {
            std::span<const uint8_t> plain = open_frame(repo.keys(), copy, &h.id, scratch, "salvage");
            if (repo.keys().chunk_id(plain) != h.id) return;
            store.store_frame(frame, h.id, h.kind, static_cast<uint32_t>(plain.size()));
            ++found;
          } catch (const Error&) {
            // a damaged frame: nothing to salvage
          }
        });
      } catch (const Error& e) {
        report.unreadable.push_back(fmt::format("pack {}: {}", id.short_hex(), e.what()));
        continue;
      }
      ++report.scanned_packs;
      replaced.push_back(id);
      if (!found) report.unreadable.push_back(fmt::format("pack {}: no readable chunks", id.short_hex()));
    }
    for (PackInfo& p : store.finish()) packs.push_back(std::move(p));
  }
  for (const PackInfo& p : packs) report.chunks += p.entries.size();
  report.packs = packs.size();
  std::string written = packs.empty() ? std::string() : repo.write_index_file(packs);
  for (const std::string& name : old_files)
    if (name != written) {
      repo.remove_file("index", name);
      ++report.replaced_index_files;
    }
  // Every pack is in the index now: what prunes marked for deletion is back in use
  // until the next prune looks again.
  for (const std::string& name : repo.list_files("deletions")) repo.remove_file("deletions", name);
  // The damaged packs' good frames live on in the new packs now.
  for (const Id& id : replaced) repo.remove_pack(id);
  return report;
}

SnapshotRepairReport repair_snapshots(Repository& repo, bool dry_run) {
  SnapshotRepairReport report;
  RepoLock lock(repo, LockMode::maintain, "backup repair snapshots");
  std::vector<DamagedManifest> damaged;
  std::vector<Snapshot> intact = load_snapshots(repo, &damaged);
  report.intact = intact.size();
  for (const Snapshot& s : intact) {
    std::vector<uint8_t> bytes = repo.read_file("snapshots", s.id);
    const std::string hash = content_hash(bytes).hex();
    if (hash == s.id) continue;
    if (!dry_run) {
      repo.write_content_file("snapshots", bytes);
      repo.remove_file("snapshots", s.id);
    }
    report.renamed.emplace_back(s.id, hash);
  }
  for (const DamagedManifest& d : damaged) {
    if (!dry_run) repo.remove_file("snapshots", d.id);
    report.removed.push_back(d);
  }
  return report;
}

}  // namespace arche::backup
