// `backup copy`: snapshots from one repository into another on any store (the
// offsite copy of the nightly job, and what tape writes). The destination is a
// replica of the source — the same repository id and master secret, made by
// `backup init DST --same-key-as SRC` (Repository::init_same_key) — so the packs
// travel as they are, still encrypted and authenticated: the copy decrypts only the
// trees and chunk lists it walks to learn which chunks the snapshots need, and
// neither store ever holds plaintext.
//
// Order, crash-safe at every step as a backup is (create.cpp): the packs that hold a
// needed chunk the destination lacks (whole packs: a chunk the destination has twice
// costs space until its next prune, never correctness), verified against their
// trailer's CRC32C while they stream; then one index file listing them; then the
// manifests, byte for byte (a manifest is named by the hash of its bytes: the same
// snapshot has the same id in both). An interrupted copy leaves complete packs that
// the next copy (or backup) adopts instead of sending them again. Packs travel as many
// at once as the destination store takes writers (its capabilities().parallelism);
// --bwlimit is one budget for all of them.
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
  // Called after each pack with the bytes sent so far and the total to send (packs
  // travel several at once; the calls never overlap).
  std::function<void(uint64_t done, uint64_t total)> progress;
};

struct CopiedSnapshot {
  std::string name, id;
  bool present = false;  // the destination had it already
};

struct CopyReport {
  std::vector<CopiedSnapshot> snapshots;  // oldest first
  uint64_t needed_blobs = 0;              // blobs the selected snapshots need
  uint64_t missing_blobs = 0;             // of those, the destination lacked
  uint64_t packs = 0, pack_bytes = 0;     // packs sent (or that would be)
  uint64_t adopted_packs = 0;             // complete packs of an interrupted copy taken as they were
  double seconds = 0;
};

// Throws unsupported when `dst` is not a replica of `src` (another id or key), a
// usage/not_found error for a snapshot reference that names nothing, exists when the
// destination holds a different snapshot of the same name.
CopyReport copy_snapshots(Repository& src, Repository& dst, const CopyOptions& options);

}  // namespace arche::backup
