// Snapshot manifests (snapshots/<content hash>): an encrypted object ("ARCHESNP" v1)
// whose payload is JSON: what was backed up, when, from where, and with what result.
// Images keep their chunk lists (chunk_list.h), file backups their root tree (tree.h).
// The snapshot's id is its file name.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backup/crypto.h"
#include "backup/repository.h"
#include "core/json.h"

namespace arche::backup {

// What makes an image layer "the same file as last time": if every field matches,
// its content is what the earlier snapshot recorded. ctime cannot be set from user
// space, so a file rewritten and touched back to its old mtime still differs.
struct LayerIdentity {
  std::string path;    // absolute
  std::string format;  // raw, qcow2, ...
  uint64_t virtual_size = 0;
  uint64_t file_size = 0;
  uint64_t dev = 0, ino = 0;
  int64_t mtime_ns = 0, ctime_ns = 0;
  // False for block devices (writes do not change their times) and for files that
  // changed shortly before or while they were read: never matched.
  bool trusted = false;

  bool same_file(const LayerIdentity& o) const {
    return path == o.path && format == o.format && virtual_size == o.virtual_size && file_size == o.file_size &&
           dev == o.dev && ino == o.ino && mtime_ns == o.mtime_ns && ctime_ns == o.ctime_ns;
  }
};

struct ImageRecord {
  std::string name;    // what `restore --image NAME` takes (the file name)
  std::string source;  // absolute path of the image backed up
  std::string format;
  uint64_t size = 0;  // virtual size
  uint32_t chunk_size = 0;
  uint64_t chunk_count = 0;
  std::vector<Id> lists;               // image chunk lists (chunk_list.h)
  std::vector<LayerIdentity> layers;   // the backing chain, top first
  // Statistics of this image's backup.
  uint64_t allocated_bytes = 0;  // bytes the chain holds (map)
  uint64_t bytes_read = 0;
  std::vector<uint64_t> bytes_read_per_layer;  // index = depth in the chain
  uint64_t hole_chunks = 0;      // all-zero: stored as nothing
  uint64_t reused_chunks = 0;    // taken from the earlier snapshot without reading
  uint64_t patched_chunks = 0;   // earlier chunk with the overlay's clusters laid over it
  std::string incremental_from;  // "<snapshot id> <image name> depth <n>" when incremental
};

struct SnapshotStats {
  uint64_t files = 0, dirs = 0, symlinks = 0, other = 0;
  uint64_t unchanged_files = 0;  // content taken from the parent snapshot unread
  uint64_t unreadable = 0;       // entries skipped because they could not be read
  uint64_t total_bytes = 0;      // logical size of everything in the snapshot
  uint64_t bytes_read = 0;
  uint64_t new_blobs = 0, new_bytes = 0;  // what the repository did not have
  uint64_t stored_bytes = 0;              // what this snapshot added to packs
  double seconds = 0;
};

struct Snapshot {
  std::string id;  // the file name (64 hex digits); set when loaded or written
  std::string name;
  int64_t time_ns = 0;  // unix time
  std::string host, user;
  std::vector<std::string> tags;
  std::string arche_version;
  std::string parent;              // snapshot used for unchanged files, if any
  std::vector<std::string> paths;  // file and directory paths backed up
  std::vector<Id> tree;            // root tree pieces (empty without paths)
  std::vector<ImageRecord> images;
  SnapshotStats stats;

  std::string short_id() const { return id.substr(0, 8); }
  const ImageRecord* find_image(const std::string& name) const;
};

Json snapshot_to_json(const Snapshot& s);
// Throws corrupt errors naming `what` for anything missing or of the wrong type.
Snapshot snapshot_from_json(const Json& j, const std::string& what);
std::vector<uint8_t> encode_snapshot_payload(const Snapshot& s);
Snapshot decode_snapshot_payload(std::span<const uint8_t> data, const std::string& what);

// A file in snapshots/ that is not a readable manifest (damaged, truncated, or not
// an arche manifest at all). It hides nothing else: the other snapshots list and
// restore; `repair snapshots` or `forget REPO::ID` removes it.
struct DamagedManifest {
  std::string id;     // the file name
  std::string error;  // why it cannot be read
};

// Writes the manifest (durably); sets s.id.
void write_snapshot(const Repository& repo, Snapshot& s);
Snapshot read_snapshot(const Repository& repo, const std::string& id);
// All snapshots, oldest first. Unreadable manifests are an error unless
// `damaged` is given, which then collects them.
std::vector<Snapshot> load_snapshots(const Repository& repo, std::vector<DamagedManifest>* damaged = nullptr);
// By name, "latest", or an id prefix of at least 4 digits. not_found / usage errors;
// a prefix of a damaged manifest's id is a corrupt error that says so.
const Snapshot& resolve_snapshot(const std::vector<Snapshot>& all, const std::string& ref,
                                 const std::vector<DamagedManifest>& damaged = {});
// The damaged manifest whose id starts with `ref` (at least 4 digits), or null.
const DamagedManifest* find_damaged(const std::vector<DamagedManifest>& damaged, const std::string& ref);

std::string format_time_ns(int64_t time_ns);  // local time, "2026-11-21 13:46:02"

// "REPO::NAME" -> {REPO, NAME}; throws a usage error without "::" when name_required.
std::pair<std::string, std::string> split_repo_ref(const std::string& text, bool name_required);

}  // namespace arche::backup
