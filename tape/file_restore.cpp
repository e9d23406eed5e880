#include "tape/file_restore.h"

#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "backup/pack.h"
#include "backup/restore.h"
#include "backup/snapshot.h"
#include "backup/store.h"
#include "backup/tree_store.h"
#include "core/error.h"

namespace arche::tape {

namespace fs = std::filesystem;

namespace {

// Removes the scratch repository however the restore ends.
struct ScratchDir {
  std::string path;
  ScratchDir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/var/tmp") + "/arche-tape-XXXXXX";
    if (!::mkdtemp(pattern.data())) fail(ErrorCategory::io, "cannot make a scratch directory in {}", pattern);
    path = pattern;
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// Every chunk and list blob below `pieces` (a directory) or of one file node.
void collect(backup::Repository& repo, const backup::Node& node, const std::string& where,
             std::vector<backup::Id>& out) {
  if (node.type == backup::NodeType::file) {
    for (const backup::Id& id : node.chunk_lists) out.push_back(id);
    for (const backup::ChunkRef& c : backup::load_file_chunks(repo, node, where))
      if (!c.is_hole()) out.push_back(c.id);
  } else if (node.type == backup::NodeType::dir) {
    backup::Tree t = backup::load_tree(repo, node.subtree, where);
    for (const backup::Node& n : t.nodes) collect(repo, n, where + "/" + n.name, out);
  }
}

// The scratch repository of a restore from tape, and the two passes that fill it.
class ScratchRestore {
 public:
  // Pass 1: the snapshot archive and the metadata packs; opens the repository.
  ScratchRestore(Library& library, const Catalog& catalog, const CatalogSnapshot& snap,
                 std::span<const uint8_t> passphrase, Progress* progress)
      : library_(library), catalog_(catalog), snap_(snap), progress_(progress) {
    const std::map<std::string, ObjectPlace> places = catalog.objects_of_set(snap.media_set);
    auto manifest = places.find("snapshots/" + snap.id);
    if (manifest == places.end())
      fail(ErrorCategory::corrupt, "the catalog puts snapshot {}'s manifest on no tape", snap.name);
    for (const CatalogTape& t : catalog.tapes)
      if (t.media_set == snap.media_set) reads.set_files += t.files.size();
    store_ = backup::create_store(scratch_.path + "/repo");
    std::set<std::string> names;
    for (const CatalogObject& o : manifest->second.file->objects) names.insert(o.name);
    for (const std::string& p : snap.metadata_packs)
      names.insert(backup::pack_relative_path(backup::Id::from_hex(p, "pack")));
    read(names, reads.first, &manifest->second);
    if (index_name_.empty()) fail(ErrorCategory::corrupt, "snapshot {}'s archive on tape holds no index", snap.name);
    repo_ = backup::Repository::open(store_, passphrase);
    repo_->load_index(true);  // the metadata packs, from their footers
    // Which pack holds which blob, from the index that came with the snapshot.
    store_->write(index_name_, index_bytes_, backup::WriteMode::create);
    all_ = repo_->read_index_file(index_name_.substr(6));
    store_->remove(index_name_);
    for (const backup::PackInfo& p : all_)
      for (const backup::PackEntry& e : p.entries) pack_of_.emplace(e.id, p.id);
  }

  backup::Repository& repo() { return *repo_; }

  // Pass 2: the packs of `blobs` (zero ids are holes) that pass 1 did not bring;
  // then an index of the packs here, so that backup's restore finds them.
  void fetch(const std::vector<backup::Id>& blobs, const std::string& what) {
    std::set<std::string> names;
    std::set<backup::Id> needed;
    for (const backup::Id& b : blobs) {
      if (b.is_zero()) continue;
      auto it = pack_of_.find(b);
      if (it == pack_of_.end())
        fail(ErrorCategory::corrupt, "blob {} of {} is in no pack of the snapshot's index", b.short_hex(), what);
      if (!needed.insert(it->second).second) continue;
      const std::string name = backup::pack_relative_path(it->second);
      if (!store_->stat(name)) names.insert(name);
    }
    reads.packs_needed = needed.size();
    if (!names.empty()) read(names, reads.second, nullptr);
    std::vector<backup::PackInfo> present;
    for (const backup::PackInfo& p : all_)
      if (store_->stat(backup::pack_relative_path(p.id))) present.push_back(p);
    repo_->write_index_file(present);
    repo_->reset_index();
    repo_->load_index(false);
  }

  TapeReads reads;

 private:
  void read(const std::set<std::string>& names, ReadReport& report, const ObjectPlace* prefer) {
    auto sink = [&](const std::string& name, std::vector<uint8_t> bytes) {
      if (name.rfind("index/", 0) == 0) {
        index_name_ = name;
        index_bytes_ = std::move(bytes);
      } else {
        store_->write(name, bytes, backup::WriteMode::create);
      }
    };
    read_set_objects(library_, catalog_, snap_.media_set, names, sink, report, progress_, prefer);
    for (const std::string& n : names)
      if (!store_->stat(n) && n != index_name_)
        fail(ErrorCategory::corrupt, "{} could not be read whole from tape{}{}", n, report.damaged.empty() ? "" : ": ",
             report.damaged.empty() ? "" : report.damaged.front().text());
  }

  Library& library_;
  const Catalog& catalog_;
  const CatalogSnapshot& snap_;
  Progress* progress_;
  ScratchDir scratch_;
  std::shared_ptr<backup::Store> store_;
  std::unique_ptr<backup::Repository> repo_;
  std::string index_name_;
  std::vector<uint8_t> index_bytes_;
  std::vector<backup::PackInfo> all_;
  std::map<backup::Id, backup::Id> pack_of_;
};

}  // namespace

TapeFileRestoreReport restore_file_from_tape(Library& library, const Catalog& catalog, const std::string& snapshot_ref,
                                             const std::string& path, const std::string& target,
                                             std::span<const uint8_t> passphrase, Progress* progress) {
  const CatalogSnapshot& snap = catalog.resolve_snapshot(snapshot_ref);
  TapeFileRestoreReport report;
  report.snapshot_id = snap.id;
  report.snapshot_name = snap.name;
  report.path = path;
  report.target = target;
  ScratchRestore scratch(library, catalog, snap, passphrase, progress);
  backup::Repository& repo = scratch.repo();

  // Walk to PATH.
  const backup::Snapshot s = backup::read_snapshot(repo, snap.id);
  if (s.tree.empty()) fail(ErrorCategory::not_found, "snapshot {} holds no files", snap.name);
  backup::Node node;
  node.type = backup::NodeType::dir;
  node.subtree = s.tree;
  std::string where;
  for (const fs::path& part : fs::path(path).lexically_normal().relative_path()) {
    if (part.empty() || part == ".") continue;
    if (node.type != backup::NodeType::dir)
      fail(ErrorCategory::not_found, "{} is not in snapshot {} ({} is not a directory)", path, snap.name, where);
    backup::Tree t =
        backup::load_tree(repo, node.subtree, "snapshot " + snap.name + ": " + (where.empty() ? "/" : where));
    auto it =
        std::find_if(t.nodes.begin(), t.nodes.end(), [&](const backup::Node& n) { return n.name == part.string(); });
    where += "/" + part.string();
    if (it == t.nodes.end()) fail(ErrorCategory::not_found, "{} is not in snapshot {}", where, snap.name);
    node = *it;
  }
  std::vector<backup::Id> blobs;
  collect(repo, node, "snapshot " + snap.name + ": " + where, blobs);
  scratch.fetch(blobs, where);
  backup::FileRestoreOptions o;
  o.paths = {where.empty() ? "/" : where};
  report.stats = backup::restore_files(repo, s, target, o);
  report.reads = std::move(scratch.reads);
  return report;
}

TapeImageRestoreReport restore_image_from_tape(Library& library, const Catalog& catalog,
                                               const std::string& snapshot_ref, const std::string& image,
                                               const std::string& target,
                                               const backup::ImageRestoreOptions& options,
                                               std::span<const uint8_t> passphrase, Progress* progress) {
  const CatalogSnapshot& snap = catalog.resolve_snapshot(snapshot_ref);
  std::string wanted = image;
  if (wanted.empty()) {
    if (snap.images.size() != 1)
      fail(ErrorCategory::usage, "snapshot {} holds {} images: name one with --image", snap.name, snap.images.size());
    wanted = snap.images.front();
  }
  TapeImageRestoreReport report;
  report.snapshot_id = snap.id;
  report.snapshot_name = snap.name;
  report.target = target;
  ScratchRestore scratch(library, catalog, snap, passphrase, progress);
  backup::Repository& repo = scratch.repo();
  const backup::Snapshot s = backup::read_snapshot(repo, snap.id);
  const backup::ImageRecord* record = s.find_image(wanted);
  if (!record) {
    std::string names;
    for (const backup::ImageRecord& i : s.images) names += (names.empty() ? "" : ", ") + i.name;
    fail(ErrorCategory::not_found, "snapshot {} has no image '{}' (it has: {})", snap.name, wanted,
         names.empty() ? "none" : names);
  }
  report.image = record->name;
  scratch.fetch(backup::load_image_chunks(repo, *record), "image " + record->name);
  backup::RestoreRequest r;
  r.snapshot = snap.id;
  r.image = record->name;
  r.to = target;
  r.image_options = options;
  report.stats = backup::restore_snapshot(repo, r).image_stats;
  report.reads = std::move(scratch.reads);
  return report;
}

}  // namespace arche::tape
