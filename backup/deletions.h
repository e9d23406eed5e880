// Deletion marks (deletions/<random id>): the packs a prune took out of the index
// and will delete once no backup that was running beside it can still refer to
// them (docs/storage.md "Prune beside backups"). A sealed object ("ARCHEDEL" v1):
//
//   created (u64 unix s) | prune lock (u16 length + name) | flags (u8, bit 0: the
//   locks below were recorded) | lock count (u32) | per lock: u16 length + name
//   | pack count (u32) | per pack: id (32)
//
// The locks are those present just after the mark became visible, apart from the
// prune's own: when all of them are gone (or stale), every backup that might have
// loaded an index listing these packs has ended and its snapshot is visible, and the
// next prune deletes the packs no snapshot needs (and gives the others an index
// entry again). Backups do not adopt marked packs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backup/repository.h"

namespace arche::backup {

struct DeletionMark {
  std::string name;  // under deletions/
  uint64_t created = 0;
  std::string prune_lock;
  bool locks_recorded = false;
  std::vector<std::string> locks;  // lock names present when the mark became visible
  std::vector<Id> packs;
};

std::vector<uint8_t> encode_deletion_payload(const DeletionMark& m);
DeletionMark decode_deletion_payload(std::span<const uint8_t> data, const std::string& what);

// Every readable mark; damaged ones are reported (warn) and left out, unless
// `damaged` collects their names.
std::vector<DeletionMark> load_deletion_marks(const Repository& repo, std::vector<std::string>* damaged = nullptr);
// Writes (or, with replace, rewrites) the mark; a new one gets a random name.
void write_deletion_mark(const Repository& repo, DeletionMark& mark, bool replace);

}  // namespace arche::backup
