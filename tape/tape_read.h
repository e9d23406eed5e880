// Reading from tapes what a catalog says is there, and only that: restore of a
// snapshot into a repository (any store), restore of one path out of a file
// backup, verify and catalog rebuild (scan). The catalog names for every object
// its tape and file; only those files are read, each front to back.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "core/progress.h"
#include "tape/catalog.h"
#include "tape/library.h"
#include "tape/reader.h"

namespace arche::tape {

struct ReadReport {
  std::vector<std::string> files_read;  // "LABEL file N", in the order read
  uint64_t tapes = 0, records = 0, bytes = 0;
  std::vector<DamagedRecord> damaged;
};

using ObjectSink = std::function<void(const std::string& name, std::vector<uint8_t> bytes)>;

// Reads the tape files of `set` that hold `names` and passes each of those objects
// to `sink` once. Objects the damage made unreadable are simply not passed:
// compare. An object several files hold (config, key slots: in every snapshot
// archive) is read from `prefer` when that holds it, else from its first copy.
// `buffers`, when given, supplies the objects' buffers (ArchiveReader::set_buffers).
void read_set_objects(Library& library, const Catalog& catalog, const std::string& set,
                      const std::set<std::string>& names, const ObjectSink& sink, ReadReport& report,
                      Progress* progress = nullptr, const ObjectPlace* prefer = nullptr,
                      const ArchiveReader::Buffers& buffers = {});

struct TapeRestoreReport {
  std::string snapshot_id, snapshot_name, target;
  uint64_t objects_written = 0, objects_present = 0;
  ReadReport read;
};

// The snapshot's packs, manifest, index, config and key slots into the store at
// `target` (created when missing; an existing repository must be the same one).
// Packs first (a few written at once while the tape reads on: store_writer.h), the
// manifest only once they are all durable, config last: an interrupted restore
// leaves no snapshot that looks whole. A needed object that cannot be read is an error
// naming the damaged records, and then the manifest is not written.
TapeRestoreReport restore_snapshot(Library& library, const Catalog& catalog, const std::string& snapshot_ref,
                                   const std::string& target, Progress* progress = nullptr);

struct VerifyReport {
  std::vector<std::string> tapes;
  uint64_t files = 0, records = 0, objects = 0, bytes = 0;
  std::vector<DamagedRecord> damaged;
  std::vector<std::string> missing;  // objects the catalog lists that were not found whole
};
// Reads every tape file of every tape of the library (vtape) or of the loaded tape.
VerifyReport verify_tapes(Library& library, const Catalog& catalog, Progress* progress = nullptr);

// The catalog again from the tapes alone: their labels and the newest catalog
// archive of each media set.
Catalog rebuild_catalog(Library& library, std::vector<std::string>* notes = nullptr);

}  // namespace arche::tape
