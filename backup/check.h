// `check`: is the repository whole? Without --read-data (structure): config and key
// slots parse; every index file authenticates; every pack the index lists exists
// with the recorded size and its footer agrees with the index; every snapshot
// manifest authenticates and every tree, chunk list and chunk it refers to is in the
// index. With --read-data: additionally every chunk of every pack is read, decrypted,
// decompressed and hashed, and each damaged chunk is reported with the snapshots,
// images (and byte ranges) and files it belongs to.
//
// `repair index`: rebuilds the index from the packs themselves (their footers, or a
// front-to-back scan of the frames when a footer is damaged) and replaces all index
// files with one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backup/repository.h"

namespace arche::backup {

struct CheckOptions {
  bool read_data = false;
  unsigned threads = 0;
};

struct DamagedChunk {
  Id id;
  Id pack;
  uint32_t offset = 0;
  std::string error;
  std::vector<std::string> affects;  // "snapshot NAME (ID): image X bytes A-B", "... file /path"
};

struct CheckReport {
  std::vector<std::string> errors;
  std::vector<std::string> notes;  // harmless findings (leftovers of interrupted runs)
  std::vector<DamagedChunk> damaged;
  uint64_t snapshots = 0, packs = 0, chunks = 0, bytes_verified = 0;
  bool ok() const { return errors.empty() && damaged.empty(); }
};

CheckReport check_repository(Repository& repo, const CheckOptions& options);

struct RepairReport {
  uint64_t packs = 0, chunks = 0;
  uint64_t scanned_packs = 0;  // footer damaged: frames found by scanning
  std::vector<std::string> unreadable;  // packs left out
  uint64_t replaced_index_files = 0;
};

RepairReport repair_index(Repository& repo);

}  // namespace arche::backup
