// The second way of `backup copy` (copy.h): into a repository with another key.
// copy.cpp chooses it, selects the snapshots and decides which the destination has
// already; this part reads every chunk those snapshots need from the source, stores
// it into the destination through a ChunkStore (the writer of `backup create`), and
// writes their trees, chunk lists and manifests anew with the destination's ids.
//
// Each source chunk is read once per copy: a map from source id to destination id
// (64 bytes a chunk, about 100 MB for a terabyte of 1 MiB chunks) serves the
// snapshots after the first, and a directory whose tree the copy has rewritten
// already (the same source tree ids) is not walked again. The map starts with what
// earlier copies tell: a snapshot and its copy in the destination have the same
// shape (the same images, lists, directories and files, chunk for chunk), so walking
// both side by side pairs their ids without reading a chunk. The copy learns from
// the copies of each snapshot's parent and incremental base, else of the newest
// earlier snapshot of its host: a nightly copy reads only what changed. A pair whose
// shapes differ anywhere, or whose destination blobs are not all in the
// destination's index, teaches nothing. Any other chunk's destination id can only be
// known from its plaintext, so a chunk the destination holds already (from its own
// backups) is read and hashed too, but neither compressed nor written.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "backup/copy.h"
#include "backup/lock.h"
#include "backup/repository.h"
#include "backup/snapshot.h"

namespace arche::backup {

// What the parallel writes of a copy share: the bytes sent so far, which pace
// --bwlimit (one budget for all of them), and the progress callback, which is never
// called by two threads at once.
class SendMeter {
 public:
  using Clock = std::chrono::steady_clock;
  SendMeter(const CopyOptions& options, uint64_t total) : options_(options), total_(total), start_(Clock::now()) {}

  // Counts `n` bytes just sent; with a limit, returns when the copy as a whole is
  // back within it (so the pace holds however many sends run at once).
  void sent(uint64_t n);
  // Calls the progress callback with (`done`, total); `done` < 0: the bytes sent.
  void report(int64_t done = -1);

 private:
  const CopyOptions& options_;
  const uint64_t total_;
  const Clock::time_point start_;
  std::mutex mutex_;
  uint64_t sent_ = 0;
};

// The end of both ways, after the packs are durable: `packs` and the complete packs
// an interrupted copy left are listed in one index file, then `write_manifest(i)`
// writes the i-th of `manifests` snapshots (returning its id), then the packs a prune
// beside the copy took out of the index are listed again, as after a backup. A
// failure removes the manifests written: none is left that cannot be restored.
void commit_copy(Repository& dst, RepoLock& dst_lock, std::vector<PackInfo> packs, size_t manifests,
                 const std::function<std::string(size_t)>& write_manifest);

// A source snapshot and its copy in the destination.
struct CopiedPair {
  const Snapshot* source;
  const Snapshot* copy;
};

// Copies `to_copy` (source snapshots, oldest first, that the destination lacks) into
// `dst`, re-encrypted. `copied_before`: the source's snapshots the destination has
// copies of. A snapshot's parent and incremental base are named by their copies' ids
// (or dropped when not copied). Fills the blob, byte and pack counts of `report` and
// copy_id of its snapshots. Both repositories are locked by the caller; their
// indexes are loaded here.
void reencrypt_snapshots(Repository& src, Repository& dst, const std::vector<const Snapshot*>& to_copy,
                         const std::vector<CopiedPair>& copied_before, const CopyOptions& options, RepoLock& dst_lock,
                         CopyReport& report);

}  // namespace arche::backup
