#include "tape/tape_backup.h"

#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>

#include "backup/lock.h"
#include "backup/pack.h"
#include "backup/snapshot.h"
#include "backup/used_blobs.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "core/thread_pool.h"
#include "tape/buffers.h"

namespace arche::tape {

namespace {

struct SnapshotPacks {
  std::vector<backup::PackInfo> packs;      // every pack it needs
  std::vector<std::string> metadata_packs;  // those holding trees or chunk lists
};

SnapshotPacks packs_of(backup::Repository& repo, const backup::Snapshot& s,
                       const std::map<backup::Id, const backup::PackInfo*>& packs_by_id) {
  backup::UsedBlobs used(repo);
  used.add_snapshot(s);
  std::set<backup::Id> ids;
  for (const backup::Id& blob : used.take()) {
    std::optional<backup::ChunkIndex::Location> at = repo.index().find(blob);
    if (!at) repo.fail_missing_chunk(blob, "snapshot " + s.name);
    ids.insert(repo.index().pack_id(at->pack));
  }
  SnapshotPacks out;
  for (const backup::Id& id : ids) {
    auto it = packs_by_id.find(id);
    if (it == packs_by_id.end())
      fail(ErrorCategory::corrupt, "pack {} is in the index but in no index file", id.short_hex());
    out.packs.push_back(*it->second);
    if (std::any_of(it->second->entries.begin(), it->second->entries.end(),
                    [](const backup::PackEntry& e) { return e.kind != backup::BlobKind::data; }))
      out.metadata_packs.push_back(id.hex());
  }
  return out;
}

// Reads the packs to copy one ahead, on a thread of its own (double buffering): the
// next pack comes off the store while the current one is cut into records. Two
// buffers go round, so the pages are not allocated (and zeroed) again per pack.
class PackPrefetch {
 public:
  PackPrefetch(backup::Store& store, const std::vector<std::string>& names) : store_(store), names_(names) {
    if (!names_.empty()) start(0, {});
  }
  // The next pack's bytes, valid until the next call; rethrows the store's error.
  std::span<const uint8_t> next() {
    std::vector<uint8_t> done = std::move(current_);
    current_ = pending_.get();
    if (++index_ < names_.size()) start(index_, std::move(done));
    return current_;
  }

 private:
  void start(size_t i, std::vector<uint8_t> buffer) {
    pending_ = reader_.submit([this, i, b = std::move(buffer)]() mutable {
      std::unique_ptr<backup::ObjectReader> r = store_.open(names_[i]);
      reserve_buffer(b, r->size());
      b.resize(r->size());
      r->read(0, b);
      return std::move(b);
    });
  }

  backup::Store& store_;
  const std::vector<std::string>& names_;
  size_t index_ = 0;
  std::vector<uint8_t> current_;
  std::future<std::vector<uint8_t>> pending_;
  ThreadPool reader_{1};  // last: joined before the members its task uses go
};

}  // namespace

TapeBackupReport tape_backup(backup::Repository& repo, const std::vector<std::string>& snapshot_refs, Library& library,
                             Catalog& catalog, const CatalogFileStore& disk, TapeBackupOptions options,
                             Progress* progress) {
  backup::RepoLock lock(repo, backup::LockMode::shared, "tape backup");
  repo.load_index(false);
  std::vector<backup::DamagedManifest> damaged;
  const std::vector<backup::Snapshot> all = backup::load_snapshots(repo, &damaged);
  std::vector<backup::Snapshot> chosen;
  for (const std::string& ref : snapshot_refs) chosen.push_back(backup::resolve_snapshot(all, ref, damaged));
  std::vector<backup::PackInfo> index_packs = repo.read_all_index_files();
  std::map<backup::Id, const backup::PackInfo*> packs_by_id;
  for (const backup::PackInfo& p : index_packs) packs_by_id.emplace(p.id, &p);

  options.set.repository = repo.id().hex();
  options.set.key_fingerprint = key_fingerprint(repo.keys());
  SetWriter writer(library, catalog, options.set);
  TapeBackupReport report;
  report.media_set = writer.set_uuid();

  // What every snapshot archive carries besides its manifest: config and key slots.
  std::vector<std::pair<std::string, std::vector<uint8_t>>> common;
  common.emplace_back("config", repo.store().read("config"));
  for (const std::string& slot : repo.list_files("keys"))
    common.emplace_back("keys/" + slot, repo.read_file("keys", slot));

  for (const backup::Snapshot& s : chosen) {
    SnapshotPacks needed = packs_of(repo, s, packs_by_id);
    std::map<std::string, ObjectPlace> on_set = catalog.objects_of_set(writer.set_uuid());
    std::vector<std::string> to_copy;
    for (const backup::PackInfo& p : needed.packs) {
      const std::string name = backup::pack_relative_path(p.id);
      if (on_set.count(name)) ++report.packs_on_set;
      else to_copy.push_back(name);
    }
    // Chunk archives: an archive continues as its next part on the next tape.
    Uuid archive = random_uuid();
    uint32_t part = 1;
    uint64_t in_archive = 0;
    bool open = false;
    const Json meta = {{"repository", repo.id().hex()}, {"snapshot", s.id}};
    PackPrefetch prefetch(repo.store(), to_copy);
    for (const std::string& name : to_copy) {
      interrupt::check();
      if (open && in_archive >= options.archive_size) {
        writer.end_file();
        open = false;
        archive = random_uuid();
        part = 1;
        in_archive = 0;
      }
      if (!open) {
        writer.begin_file(ContentType::chunk_archive, archive, part, meta);
        open = true;
      }
      const std::span<const uint8_t> bytes = prefetch.next();
      in_archive += bytes.size();
      ++report.packs_written;
      if (progress) progress->add(bytes.size());
      if (!writer.add(name, bytes)) {
        writer.end_file();
        open = false;
        writer.next_tape();
        ++part;
      }
    }
    if (open) writer.end_file();

    // The snapshot archive (never split: it is small).
    writer.begin_file(ContentType::snapshot_archive, random_uuid(), 1, meta);
    for (const auto& [name, bytes] : common) writer.add(name, bytes);
    writer.add("snapshots/" + s.id, repo.read_file("snapshots", s.id));
    const std::vector<uint8_t> index = repo.seal_index_file(needed.packs);
    writer.add("index/" + backup::content_hash(index).hex(), index);
    writer.end_file();

    CatalogSnapshot entry;
    entry.id = s.id;
    entry.name = s.name;
    entry.media_set = writer.set_uuid();
    entry.host = s.host;
    entry.time_ns = s.time_ns;
    entry.paths = s.paths;
    for (const backup::ImageRecord& i : s.images) entry.images.push_back(i.name);
    for (const backup::PackInfo& p : needed.packs) entry.packs.push_back(p.id.hex());
    entry.metadata_packs = needed.metadata_packs;
    std::erase_if(catalog.snapshots,
                  [&](const CatalogSnapshot& x) { return x.id == s.id && x.media_set == entry.media_set; });
    catalog.snapshots.push_back(std::move(entry));
    report.snapshots.push_back(s.id);
  }
  writer.finish();
  catalog.sort();
  disk.save(catalog);
  report.tapes = writer.tapes_used();
  report.bytes_written = writer.bytes_written();
  return report;
}

}  // namespace arche::tape
