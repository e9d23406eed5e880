// `check`: is the repository whole? Without --read-data (structure): config and key
// slots parse; every index file authenticates; every pack the index lists exists
// with the recorded size and its footer agrees with the index; every snapshot
// manifest authenticates and every tree, chunk list and chunk it refers to is in the
// index. With --read-data: additionally every chunk of every pack is read, decrypted,
// decompressed and hashed, and each damaged chunk is reported with the snapshots,
// images (and byte ranges) and files it belongs to. (Repairs: repair.h.)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backup/repository.h"

namespace arche::backup {

struct CheckOptions {
  bool read_data = false;
  // With read_data: only part `subset_part` (1..subset_parts) of the packs, chosen by
  // their id, so reading parts 1..N on N nights reads every chunk once (restic's
  // --read-data-subset n/N). 0: all packs.
  uint32_t subset_part = 0, subset_parts = 0;
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
  std::vector<std::string> temporary_files;  // named: left by interrupted runs
  std::vector<DamagedChunk> damaged;
  uint64_t snapshots = 0, packs = 0, chunks = 0, bytes_verified = 0;
  bool ok() const { return errors.empty() && damaged.empty(); }
};

CheckReport check_repository(Repository& repo, const CheckOptions& options);

}  // namespace arche::backup
