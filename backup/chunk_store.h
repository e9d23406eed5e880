// Writing blobs into a repository: hash, look up, compress, encrypt, append to a
// pack. Thread-safe: the workers of a backup all call store(); appends to the open
// pack are serialised, and full packs are finished (footer, fsync, rename) in the
// background while the next one fills.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "backup/frame.h"
#include "backup/pack.h"
#include "backup/repository.h"

namespace arche::backup {

struct StoreStats {
  std::atomic<uint64_t> blobs{0};        // blobs offered
  std::atomic<uint64_t> bytes{0};        // their plaintext bytes
  std::atomic<uint64_t> new_blobs{0};    // blobs the repository did not have
  std::atomic<uint64_t> new_bytes{0};    // their plaintext bytes
  std::atomic<uint64_t> stored_bytes{0}; // bytes written to packs for them
};

class ChunkStore {
 public:
  // dry_run: blobs are hashed and looked up, new ones counted, nothing is written.
  ChunkStore(Repository& repo, int compression_level, bool dry_run = false);
  // Without finish(): the open pack is discarded; finished packs stay on disk,
  // unindexed, for the next backup to adopt.
  ~ChunkStore();
  ChunkStore(const ChunkStore&) = delete;
  ChunkStore& operator=(const ChunkStore&) = delete;

  Id store(BlobKind kind, std::span<const uint8_t> data);
  // Appends a frame that is already encoded (prune's repacking copies frames as they are).
  void store_frame(std::span<const uint8_t> frame, const Id& id, BlobKind kind, uint32_t raw_length);
  // Finishes the open pack and waits until every pack is durable; returns them all.
  std::vector<PackInfo> finish();
  // After a failure: drops the open pack, waits for those being finished and returns
  // the complete ones (unindexed: the next backup adopts them).
  std::vector<PackInfo> abandon() noexcept;

  const StoreStats& stats() const { return stats_; }
  Repository& repository() { return repo_; }

 private:
  void append(std::span<const uint8_t> frame, const Id& id, BlobKind kind, uint32_t raw_length);
  void rotate_locked();
  void collect_locked(size_t keep);

  Repository& repo_;
  const int level_;
  const bool dry_run_;
  const size_t max_finishing_;
  StoreStats stats_;
  std::mutex mutex_;
  std::unique_ptr<PackWriter> current_;
  uint32_t current_number_ = 0;
  std::deque<std::future<PackInfo>> finishing_;
  std::vector<PackInfo> done_;
};

}  // namespace arche::backup
