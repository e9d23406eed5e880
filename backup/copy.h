// `backup copy`: snapshots from one repository into another on any store (the
// offsite copy of the nightly job, and what tape writes). Two ways, chosen by what
// the destination is:
//
// A replica — the same repository id and master secret, made by `backup init DST
// --same-key-as SRC` (Repository::init_same_key): the packs travel as they are, still
// encrypted and authenticated. The copy decrypts only the trees and chunk lists it
// walks to learn which chunks the snapshots need, and neither store ever holds
// plaintext. Order, crash-safe at every step as a backup is (create.cpp): the packs
// that hold a needed chunk the destination lacks (whole packs: a chunk the
// destination has twice costs space until its next prune, never correctness),
// verified against their trailer's CRC32C while they stream; then one index file
// listing them; then the manifests, byte for byte (a manifest is named by the hash of
// its bytes: the same snapshot has the same id in both). An interrupted copy leaves
// complete packs that the next copy (or backup) adopts instead of sending them again.
// Packs travel as many at once as the destination store takes writers (its
// capabilities().parallelism); --bwlimit is one budget for all of them.
//
// Any other repository (its own `backup init`, its own key and settings):
// re-encrypted (copy_reencrypt.h). Chunk ids are keyed by each repository's secret
// (crypto.h), so the same plaintext has another id there: every chunk the snapshots
// need is read and decrypted from the source and stored into the destination through
// its ChunkStore as a backup stores it (deduplicated against what the destination
// holds, compressed at its level, in packs of its size), and the trees, chunk lists
// and manifests that name chunks are written anew with the destination's ids. Blobs
// keep their plaintext and boundaries (an image keeps its chunk size); the copy keeps
// the source snapshot's name, host, time, paths and tags. Same order: packs, index,
// manifests.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "backup/repository.h"

namespace arche::backup {

struct CopyOptions {
  std::vector<std::string> snapshots;  // names, "latest" or id prefixes; empty: all
  size_t last = 0;                     // only the newest N of those (0: all)
  uint64_t bwlimit = 0;                // bytes per second to the destination; 0: unlimited
  bool dry_run = false;                // say what would be copied, copy nothing
  // Progress, never two calls at once. Replica: after each pack, with the bytes sent
  // so far and the total to send. Re-encrypting: after each chunk read, with the bytes
  // of the source's packs read so far and the total the snapshots need (chunks known
  // from earlier copies are not read; the last call, at the end, gives the total).
  std::function<void(uint64_t done, uint64_t total)> progress;
};

struct CopiedSnapshot {
  std::string name, id;  // id: in the source
  std::string copy_id;   // its id in the destination (a replica: the same; a dry run: empty)
  bool present = false;  // the destination had it already
};

struct CopyReport {
  bool reencrypted = false;               // false: a replica, packs as they are
  std::vector<CopiedSnapshot> snapshots;  // oldest first
  uint64_t needed_blobs = 0;              // blobs the selected snapshots need (in the source)
  // Replica: of those, the destination lacked. Re-encrypting: blobs the destination
  // lacked (chunks, and the trees and lists written anew) and their plaintext bytes.
  uint64_t missing_blobs = 0, missing_bytes = 0;
  uint64_t packs = 0, pack_bytes = 0;  // packs sent or written (a replica's dry run: that would be)
  uint64_t adopted_packs = 0;          // complete packs of an interrupted copy taken as they were
  // Re-encrypting: chunks read from the source (and their bytes there), and chunks
  // whose destination id earlier copies told, not read (copy_reencrypt.h).
  uint64_t read_blobs = 0, read_bytes = 0, known_blobs = 0;
  double seconds = 0;

  // Records `copy_id` as the destination id of the source snapshot `id`.
  void set_copy_id(const std::string& id, const std::string& copy_id) {
    for (CopiedSnapshot& s : snapshots)
      if (s.id == id) s.copy_id = copy_id;
  }
};

// A replica when `dst` has the id and master secret of `src`, else re-encrypting.
// Throws a usage/not_found error for a snapshot reference that names nothing, exists
// when the destination holds a different snapshot of the same name (re-encrypting:
// one of that name with another time or host; of the same, it is the copy: present).
// An interrupt leaves no new snapshot, at most complete packs the next copy adopts.
CopyReport copy_snapshots(Repository& src, Repository& dst, const CopyOptions& options);

}  // namespace arche::backup
