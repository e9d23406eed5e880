#include "backup/check.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "backup/chunk_list.h"
#include "backup/chunk_store.h"
#include "backup/deletions.h"
#include "backup/lock.h"
#include "backup/pipeline.h"
#include "backup/snapshot.h"
#include "backup/tree_store.h"
#include "core/crc32c.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/units.h"

namespace arche::backup {

namespace {

using IdSet = std::unordered_set<Id, IdHash>;

// Walks every snapshot and calls back for what it references. Trees already seen
// are skipped unless `every_path` (then each snapshot is walked in full, so damage
// can be attributed to every file it affects).
class SnapshotWalker {
 public:
  struct Callbacks {
    // A blob the snapshot needs (chunk, tree piece, list); `where` describes it.
    std::function<void(const Snapshot&, const Id&, const std::function<std::string()>& where)> blob;
    // Something could not be read at all.
    std::function<void(const Snapshot&, const std::string& what, const std::string& error)> unreadable;
  };

  SnapshotWalker(Repository& repo, Callbacks cb, bool every_path) : repo_(repo), cb_(std::move(cb)), every_(every_path) {}

  void walk(const Snapshot& s) {
    for (const ImageRecord& image : s.images) walk_image(s, image);
    if (!s.tree.empty()) walk_tree(s, s.tree, "");
  }

 private:
  void walk_image(const Snapshot& s, const ImageRecord& image) {
    for (size_t b = 0; b < image.lists.size(); ++b) {
      interrupt::check();
      const uint64_t first = b * kImageListEntries;
      auto where_list = [&] {
        return fmt::format("image {}: chunk list {} (bytes {:#x}-{:#x})", image.name, b, first * image.chunk_size,
                           std::min(image.size, (first + kImageListEntries) * image.chunk_size));
      };
      cb_.blob(s, image.lists[b], where_list);
      std::vector<Id> ids;
      try {
        ids = decode_image_list(repo_.read_blob(image.lists[b], where_list()), where_list());
      } catch (const Error& e) {
        cb_.unreadable(s, where_list(), e.what());
        continue;
      }
      for (size_t i = 0; i < ids.size(); ++i) {
        if (ids[i].is_zero()) continue;
        const uint64_t offset = (first + i) * image.chunk_size;
        cb_.blob(s, ids[i], [&] {
          return fmt::format("image {} bytes {:#x}-{:#x}", image.name, offset,
                             std::min<uint64_t>(image.size, offset + image.chunk_size));
        });
      }
    }
  }

  void walk_tree(const Snapshot& s, const std::vector<Id>& pieces, const std::string& path) {
    interrupt::check();
    const std::string shown = path.empty() ? "/" : path;
    for (const Id& id : pieces) cb_.blob(s, id, [&] { return "directory listing of " + shown; });
    if (!every_) {
      bool all_seen = true;
      for (const Id& id : pieces) all_seen &= !seen_trees_.insert(id).second;
      if (all_seen) return;  // identical to a tree walked before
    }
    Tree tree;
    try {
      tree = load_tree(repo_, pieces, "directory " + shown);
    } catch (const Error& e) {
      cb_.unreadable(s, "directory " + shown, e.what());
      return;
    }
    for (const Node& n : tree.nodes) {
      const std::string child = path + "/" + n.name;
      if (n.type == NodeType::dir) {
        walk_tree(s, n.subtree, child);
        continue;
      }
      if (n.type != NodeType::file) continue;
      for (const Id& id : n.chunk_lists) cb_.blob(s, id, [&] { return "file " + child + " (its chunk list)"; });
      std::vector<ChunkRef> chunks;
      try {
        chunks = load_file_chunks(repo_, n, "file " + child);
      } catch (const Error& e) {
        cb_.unreadable(s, "file " + child, e.what());
        continue;
      }
      for (const ChunkRef& c : chunks)
        if (!c.is_hole()) cb_.blob(s, c.id, [&] { return "file " + child; });
    }
  }

  Repository& repo_;
  Callbacks cb_;
  bool every_;
  IdSet seen_trees_;
};

std::string snapshot_label(const Snapshot& s) { return fmt::format("snapshot {} ({})", s.name, s.short_id()); }

// Reads every frame of a pack in order, verifying each chunk, and the pack checksum.
void verify_pack(Repository& repo, const PackInfo& pack, std::vector<DamagedChunk>& damaged, std::mutex& mutex,
                 std::atomic<uint64_t>& verified, std::vector<std::string>& errors, Progress& progress) {
  // The whole pack in one read: one request to a remote store, and the checksum
  // below is over the very bytes the frames were verified from.
  std::vector<uint8_t> data;
  try {
    data = repo.store().read(pack_relative_path(pack.id));
  } catch (const Error& e) {
    std::lock_guard lock(mutex);
    errors.push_back(fmt::format("pack {}: {}", pack.id.short_hex(), e.what()));
    return;
  }
  std::vector<PackEntry> entries = pack.entries;
  std::sort(entries.begin(), entries.end(), [](const PackEntry& a, const PackEntry& b) { return a.offset < b.offset; });
  std::vector<uint8_t> frame, scratch;
  for (const PackEntry& e : entries) {
    if (interrupt::pending_signal()) return;  // the pipeline reports the interrupt
    std::string error;
    try {
      if (!range_within(e.offset, e.length, data.size()))
        fail(ErrorCategory::corrupt, "pack {}: frame at {} beyond its {} bytes (truncated)", pack.id.short_hex(),
             e.offset, data.size());
      frame.assign(data.begin() + e.offset, data.begin() + e.offset + e.length);
      std::span<const uint8_t> plain =
          open_frame(repo.keys(), frame, &e.id, scratch, fmt::format("pack {}", pack.id.short_hex()));
      if (plain.size() != e.raw_length)
        error = fmt::format("decrypts to {} bytes, the index says {}", plain.size(), e.raw_length);
      else if (repo.keys().chunk_id(plain) != e.id)
        error = "content does not hash to its id";
    } catch (const Error& ex) {
      error = ex.what();
    }
    verified += e.length;
    progress.add(e.length);
    if (!error.empty()) {
      std::lock_guard lock(mutex);
      damaged.push_back({e.id, pack.id, e.offset, error, {}});
    }
  }
  // The checksum over the whole file also covers header and footer.
  try {
    const uint64_t size = data.size();
    if (size < kPackHeaderSize + kPackTrailerSize)
      fail(ErrorCategory::corrupt, "pack {}: {} bytes is no pack (truncated)", pack.id.short_hex(), size);
    PackTrailer t = decode_pack_trailer(std::span(data).subspan(size - kPackTrailerSize), size,
                                        "pack " + pack.id.short_hex());
    const uint32_t crc = crc32c(data.data(), size - kPackTrailerSize);
    if (crc != t.crc) {
      std::lock_guard lock(mutex);
      errors.push_back(fmt::format("pack {}: checksum mismatch (damaged bytes{})", pack.id.short_hex(),
                                   damaged.empty() ? " outside the chunks" : ""));
    }
  } catch (const Error& ex) {
    std::lock_guard lock(mutex);
    errors.push_back(fmt::format("pack {}: {}", pack.id.short_hex(), ex.what()));
  }
}

}  // namespace

namespace {

CheckReport run_check(Repository& repo, const CheckOptions& options) {
  CheckReport r;
  RepoLock lock(repo, LockMode::exclusive, "backup check");

  // Key slots.
  for (const std::string& name : repo.list_files("keys")) {
    try {
      decode_key_slot(repo.read_file("keys", name), "key slot " + name);
    } catch (const Error& e) {
      r.errors.push_back(e.what());
    }
  }

  // Leftovers of interrupted runs: harmless, but worth knowing, by name.
  for (const ObjectInfo& t : repo.store().list_temporaries()) r.temporary_files.push_back(t.name);
  if (!r.temporary_files.empty())
    r.notes.push_back(fmt::format("{} temporary file{} of interrupted runs (removed by the next backup or prune): {}",
                                  r.temporary_files.size(), r.temporary_files.size() == 1 ? "" : "s",
                                  fmt::join(r.temporary_files, ", ")));

  // Index files, and the packs they list. Each file on its own: one damaged file
  // does not hide what the others say.
  std::map<Id, PackInfo> packs;
  for (const std::string& name : repo.list_files("index")) {
    const std::string what = "index/" + name.substr(0, 8);
    try {
      if (content_hash(repo.read_file("index", name)).hex() != name) {
        r.errors.push_back(what + ": content does not match its name (damaged)");
        continue;
      }
      for (PackInfo& p : repo.read_index_file(name)) packs.emplace(p.id, std::move(p));
    } catch (const Error& e) {
      r.errors.push_back(e.what());
    }
  }
  std::unordered_map<Id, uint64_t, IdHash> present;
  for (const PackObject& p : repo.list_packs()) present.emplace(p.id, p.size);
  // Packs an earlier prune marked for deletion wait for the backups that ran beside it.
  std::unordered_set<Id, IdHash> marked;
  for (const DeletionMark& m : load_deletion_marks(repo)) marked.insert(m.packs.begin(), m.packs.end());
  size_t unindexed = 0, waiting = 0;
  for (const auto& [id, size] : present) {
    if (packs.count(id)) continue;
    (marked.count(id) ? waiting : unindexed) += 1;
  }
  if (unindexed)
    r.notes.push_back(fmt::format("{} pack{} not in the index (left by an interrupted backup: the next backup reuses "
                                  "them, repair index adds them, prune deletes them when unused)",
                                  unindexed, unindexed == 1 ? " is" : "s are"));
  if (waiting)
    r.notes.push_back(fmt::format("{} pack{} marked for deletion by a prune (deleted by the next prune once the "
                                  "backups that ran beside it have ended)",
                                  waiting, waiting == 1 ? " is" : "s are"));

  ChunkIndex& index = repo.index();
  std::vector<PackInfo> good;
  for (auto& [id, p] : packs) {
    const std::string what = "pack " + id.short_hex();
    if (!present.count(id)) {
      r.errors.push_back(what + ": listed in the index but missing");
      continue;
    }
    try {
      if (present.at(id) != p.size)
        r.errors.push_back(fmt::format("{}: {} bytes, the index says {} (truncated?)", what, present.at(id), p.size));
      std::unique_ptr<ObjectReader> reader = repo.open_pack_object(id);
      PackInfo footer = read_pack_index(*reader, id, repo.id(), repo.keys());
      auto key = [](const PackEntry& e) { return std::make_tuple(e.offset, e.id, e.length, e.raw_length); };
      std::vector<PackEntry> a = p.entries, b = footer.entries;
      auto by = [&](const PackEntry& x, const PackEntry& y) { return key(x) < key(y); };
      std::sort(a.begin(), a.end(), by);
      std::sort(b.begin(), b.end(), by);
      if (a.size() != b.size() || !std::equal(a.begin(), a.end(), b.begin(), [&](const PackEntry& x, const PackEntry& y) {
            return key(x) == key(y);
          }))
        r.errors.push_back(what + ": the pack's own index disagrees with the repository index");
    } catch (const Error& e) {
      r.errors.push_back(e.what());
    }
    index.add_pack(p);
    r.chunks += p.entries.size();
    good.push_back(p);
  }
  index.finalize();
  r.packs = packs.size();

  // Snapshots: everything they reference must be in the index and readable.
  std::vector<DamagedManifest> damaged_manifests;
  std::vector<Snapshot> snapshots = load_snapshots(repo, &damaged_manifests);
  for (const DamagedManifest& d : damaged_manifests)
    r.errors.push_back(fmt::format("{} (arche backup repair snapshots removes it)", d.error));
  for (const Snapshot& s : snapshots) {
    std::vector<uint8_t> bytes;
    try {
      bytes = repo.read_file("snapshots", s.id);
    } catch (const Error&) {
      continue;
    }
    if (content_hash(bytes).hex() != s.id)
      r.errors.push_back("snapshot file " + s.short_id() +
                         ": content does not match its name (arche backup repair snapshots renames it)");
  }
  r.snapshots = snapshots.size();
  size_t missing_reported = 0;
  SnapshotWalker::Callbacks cb;
  cb.blob = [&](const Snapshot& s, const Id& id, const std::function<std::string()>& where) {
    if (index.contains(id)) return;
    if (++missing_reported <= 100)
      r.errors.push_back(fmt::format("{}: {}: chunk {} is missing", snapshot_label(s), where(), id.short_hex()));
  };
  cb.unreadable = [&](const Snapshot& s, const std::string& what, const std::string& error) {
    r.errors.push_back(fmt::format("{}: {} unreadable: {}", snapshot_label(s), what, error));
  };
  {
    SnapshotWalker walker(repo, cb, false);
    for (const Snapshot& s : snapshots) walker.walk(s);
  }
  if (missing_reported > 100) r.errors.push_back(fmt::format("... {} missing chunks in all", missing_reported));

  if (!options.read_data) return r;

  // Every chunk (or those of one part of the packs): read, decrypt, decompress, hash.
  if (options.subset_parts) {
    if (options.subset_part < 1 || options.subset_part > options.subset_parts)
      fail(ErrorCategory::usage, "read-data subset {}/{}: the part must be between 1 and {}", options.subset_part,
           options.subset_parts, options.subset_parts);
    // Pack ids are random: their first four bytes spread the packs evenly over the parts.
    std::erase_if(good, [&](const PackInfo& p) {
      const uint32_t v = uint32_t(p.id.bytes[0]) << 24 | uint32_t(p.id.bytes[1]) << 16 | uint32_t(p.id.bytes[2]) << 8 |
                         p.id.bytes[3];
      return v % options.subset_parts != options.subset_part - 1;
    });
  }
  uint64_t total = 0;
  for (const PackInfo& p : good) total += p.size;
  Progress progress("check data", total);
  std::mutex mutex;
  std::atomic<uint64_t> verified{0};
  std::vector<std::string> pack_errors;
  {
    Pipeline pipeline(options.threads, 2 * (options.threads ? options.threads : ThreadPool::default_threads()));
    for (const PackInfo& p : good)
      pipeline.submit([&, p] { verify_pack(repo, p, r.damaged, mutex, verified, pack_errors, progress); });
    pipeline.wait();
  }
  progress.finish();
  r.bytes_verified = verified;
  for (std::string& e : pack_errors) r.errors.push_back(std::move(e));
  if (r.damaged.empty()) return r;

  // Which snapshots, images and files the damage touches.
  std::unordered_map<Id, size_t, IdHash> which;
  for (size_t i = 0; i < r.damaged.size(); ++i) which[r.damaged[i].id] = i;
  SnapshotWalker::Callbacks attribute;
  attribute.blob = [&](const Snapshot& s, const Id& id, const std::function<std::string()>& where) {
    auto it = which.find(id);
    if (it == which.end()) return;
    std::vector<std::string>& affects = r.damaged[it->second].affects;
    std::string line = snapshot_label(s) + ": " + where();
    if (affects.size() < 1000 && (affects.empty() || affects.back() != line)) affects.push_back(std::move(line));
  };
  attribute.unreadable = [](const Snapshot&, const std::string&, const std::string&) {};
  SnapshotWalker walker(repo, attribute, true);
  for (const Snapshot& s : snapshots) walker.walk(s);
  return r;
}

}  // namespace

CheckReport check_repository(Repository& repo, const CheckOptions& options) {
  try {
    return run_check(repo, options);
  } catch (const Error& e) {
    if (e.category() != ErrorCategory::interrupted) throw;
    fail(ErrorCategory::interrupted, "{}: check stopped before the end; it changed nothing", e.what());
  }
}

}  // namespace arche::backup
