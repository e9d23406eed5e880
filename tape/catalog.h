// The catalog: which tapes exist (their labels), which media sets they form, what
// each tape file holds (every object with its record and offset), and which
// snapshots a set holds with the packs each needs. Kept on disk (CATALOG_DIR/
// catalog, a sealed record "ARCHTCAT" v1 whose payload is JSON: docs/tape.md) and at
// the end of every tape (a catalog archive describing its media set up to that
// tape), so it can be rebuilt from the tapes alone (scan.h).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/json.h"

namespace arche::tape {

struct CatalogObject {
  std::string name;  // the repository object ("data/ab/ab12…", "snapshots/…", "config", …)
  uint64_t size = 0;
  uint64_t record = 0;  // where its entry starts: record within the tape file,
  uint32_t offset = 0;  // offset in that record's payload
  bool operator==(const CatalogObject&) const = default;
};

struct CatalogFile {
  uint32_t file = 0;    // tape file number (1 = the label)
  std::string kind;     // chunk-archive, snapshot-archive
  std::string archive;  // archive uuid (parts of one archive share it)
  uint32_t part = 1;
  uint64_t records = 0;
  std::vector<CatalogObject> objects;
  bool operator==(const CatalogFile&) const = default;
};

struct CatalogTape {
  std::string uuid, label, pool;
  std::string media_set;  // "" while in no set
  uint32_t sequence = 0;  // in its set, from 1
  std::string key_fingerprint;
  int64_t labeled = 0;  // unix seconds
  uint32_t record_size = 0;
  bool full = false;  // reached its early-warning zone: nothing more is appended
  std::vector<CatalogFile> files;
  bool operator==(const CatalogTape&) const = default;
};

struct CatalogSet {
  std::string uuid, pool, repository, key_fingerprint;
  int64_t created = 0, last_written = 0;  // unix seconds
  uint32_t retention_days = 0;            // tapes may be overwritten that long after last_written
  uint64_t generation = 0;                // counts the catalog archives written for the set
  std::vector<std::string> tapes;         // uuids, by sequence
  bool operator==(const CatalogSet&) const = default;
  int64_t expires() const { return last_written + int64_t{retention_days} * 86400; }
};

struct CatalogSnapshot {
  std::string id, name, media_set, host;
  int64_t time_ns = 0;
  std::vector<std::string> paths, images;
  std::vector<std::string> packs;           // every pack the snapshot needs (hex ids)
  std::vector<std::string> metadata_packs;  // those holding its trees and chunk lists
  bool operator==(const CatalogSnapshot&) const = default;
};

// Where an object is.
struct ObjectPlace {
  const CatalogTape* tape;
  const CatalogFile* file;
  const CatalogObject* object;
};

struct Catalog {
  std::vector<CatalogTape> tapes;
  std::vector<CatalogSet> sets;
  std::vector<CatalogSnapshot> snapshots;

  bool operator==(const Catalog&) const = default;

  CatalogTape* find_tape_by_label(const std::string& label);
  CatalogTape* find_tape(const std::string& uuid);
  const CatalogTape* find_tape(const std::string& uuid) const;
  CatalogSet* find_set(const std::string& uuid);
  const CatalogSet* find_set(const std::string& uuid) const;
  // By name (the newest of that name), or id prefix (at least 4 digits); not_found.
  const CatalogSnapshot& resolve_snapshot(const std::string& ref) const;
  // Every object of a set by name (the first copy).
  std::map<std::string, ObjectPlace> objects_of_set(const std::string& set) const;
  // The set's part of the catalog: what its catalog archives carry.
  Catalog subset(const std::string& set) const;
  // Replaces the set's part with `part` (tapes, set and snapshots).
  void merge(const Catalog& part);
  // Stable order: tapes by label, sets by creation, snapshots by set and time.
  void sort();
};

Json catalog_to_json(const Catalog& c);
Catalog catalog_from_json(const Json& j, const std::string& what);
std::vector<uint8_t> encode_catalog(const Catalog& c);  // the sealed record
Catalog decode_catalog(std::span<const uint8_t> data, const std::string& what);

// The catalog directory: --catalog, else $ARCHE_TAPE_CATALOG, else
// $XDG_STATE_HOME/arche/tape, else ~/.local/state/arche/tape.
std::string default_catalog_dir();

// The catalog on disk, locked (flock on DIR/lock) while the object lives, so two
// tape commands never write it at once.
class CatalogFileStore {
 public:
  explicit CatalogFileStore(std::string dir);
  ~CatalogFileStore();
  CatalogFileStore(const CatalogFileStore&) = delete;
  CatalogFileStore& operator=(const CatalogFileStore&) = delete;
  const std::string& dir() const { return dir_; }
  // An empty catalog when there is none yet.
  Catalog load() const;
  void save(const Catalog& c) const;  // atomic and durable

 private:
  std::string dir_;
  int lock_fd_ = -1;
};

}  // namespace arche::tape
