#include "tape/file_restore.h"

#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "backup/pack.h"
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

}  // namespace

TapeFileRestoreReport restore_file_from_tape(Library& library, const Catalog& catalog, const std::string& snapshot_ref,
                                             const std::string& path, const std::string& target,
                                             std::span<const uint8_t> passphrase, Progress* progress) {
  const CatalogSnapshot& snap = catalog.resolve_snapshot(snapshot_ref);
  const std::map<std::string, ObjectPlace> places = catalog.objects_of_set(snap.media_set);
  auto manifest = places.find("snapshots/" + snap.id);
  if (manifest == places.end())
    fail(ErrorCategory::corrupt, "the catalog puts snapshot {}'s manifest on no tape", snap.name);
  TapeFileRestoreReport report;
  report.snapshot_id = snap.id;
  report.snapshot_name = snap.name;
  report.path = path;
  report.target = target;
  for (const CatalogTape& t : catalog.tapes)
    if (t.media_set == snap.media_set) report.set_files += t.files.size();

  ScratchDir scratch;
  const std::string repo_dir = scratch.path + "/repo";
  std::shared_ptr<backup::Store> store = backup::create_store(repo_dir);
  std::string index_name;
  std::vector<uint8_t> index_bytes;
  auto sink = [&](const std::string& name, std::vector<uint8_t> bytes) {
    if (name.rfind("index/", 0) == 0) {
      index_name = name;
      index_bytes = std::move(bytes);
    } else {
      store->write(name, bytes, backup::WriteMode::create);
    }
  };
  auto check_all = [&](const std::set<std::string>& names, const ReadReport& r) {
    for (const std::string& n : names)
      if (!store->stat(n) && n != index_name)
        fail(ErrorCategory::corrupt, "{} could not be read whole from tape{}{}", n, r.damaged.empty() ? "" : ": ",
             r.damaged.empty() ? "" : r.damaged.front().text());
  };

  // Pass 1: the snapshot archive and the metadata packs.
  std::set<std::string> first;
  for (const CatalogObject& o : manifest->second.file->objects) first.insert(o.name);
  for (const std::string& p : snap.metadata_packs)
    first.insert(backup::pack_relative_path(backup::Id::from_hex(p, "pack")));
  read_set_objects(library, catalog, snap.media_set, first, sink, report.first, progress, &manifest->second);
  check_all(first, report.first);
  if (index_name.empty()) fail(ErrorCategory::corrupt, "snapshot {}'s archive on tape holds no index", snap.name);

  std::unique_ptr<backup::Repository> repo = backup::Repository::open(store, passphrase);
  repo->load_index(true);  // the metadata packs, from their footers
  // Which pack holds which blob, from the index that came with the snapshot.
  store->write(index_name, index_bytes, backup::WriteMode::create);
  const std::vector<backup::PackInfo> all = repo->read_index_file(index_name.substr(6));
  store->remove(index_name);
  std::map<backup::Id, backup::Id> pack_of;
  for (const backup::PackInfo& p : all)
    for (const backup::PackEntry& e : p.entries) pack_of.emplace(e.id, p.id);

  // Walk to PATH.
  const backup::Snapshot s = backup::read_snapshot(*repo, snap.id);
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
        backup::load_tree(*repo, node.subtree, "snapshot " + snap.name + ": " + (where.empty() ? "/" : where));
    auto it =
        std::find_if(t.nodes.begin(), t.nodes.end(), [&](const backup::Node& n) { return n.name == part.string(); });
    where += "/" + part.string();
    if (it == t.nodes.end()) fail(ErrorCategory::not_found, "{} is not in snapshot {}", where, snap.name);
    node = *it;
  }
  std::vector<backup::Id> blobs;
  collect(*repo, node, "snapshot " + snap.name + ": " + where, blobs);

  // Pass 2: the packs of those blobs that pass 1 did not bring.
  std::set<std::string> second;
  std::set<backup::Id> needed;
  for (const backup::Id& b : blobs) {
    auto it = pack_of.find(b);
    if (it == pack_of.end())
      fail(ErrorCategory::corrupt, "blob {} of {} is in no pack of the snapshot's index", b.short_hex(), where);
    needed.insert(it->second);
    const std::string name = backup::pack_relative_path(it->second);
    if (!store->stat(name)) second.insert(name);
  }
  report.packs_needed = needed.size();
  if (!second.empty()) {
    read_set_objects(library, catalog, snap.media_set, second, sink, report.second, progress);
    check_all(second, report.second);
  }
  // An index of the packs now here, and backup's own restore.
  std::vector<backup::PackInfo> present;
  for (const backup::PackInfo& p : all)
    if (store->stat(backup::pack_relative_path(p.id))) present.push_back(p);
  repo->write_index_file(present);
  repo->reset_index();
  repo->load_index(false);
  backup::FileRestoreOptions o;
  o.paths = {where.empty() ? "/" : where};
  report.stats = backup::restore_files(*repo, s, target, o);
  return report;
}

}  // namespace arche::tape
