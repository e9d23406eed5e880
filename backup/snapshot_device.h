// A disk image of a snapshot as a read-only BlockDevice that reads lazily: a read
// fetches only the chunk-list blob and the chunks it touches, so tools that want
// one file out of a 100 GB image backup (partition table, file system reader, FUSE
// mount) read a few megabytes, not the image. Holes read as zeros and are reported
// as such by layer_status, so map() of the device shows the image's allocation as
// it was backed up.
//
// Decrypted chunks and chunk lists are kept in caches (shared_fetch_cache.h) that
// hand out shared buffers: a hit copies only the bytes asked for. Fetching and
// decrypting run outside the caches' locks, so readers of different chunks (FUSE
// threads) do not wait for each other. A reader that goes on sequentially into the
// next chunk makes the device read ahead on a background thread: 1 chunk, then 2,
// 4, up to `max_read_ahead` while the run lasts; a jump ends the run.
//
// bytes_fetched() counts what was read from the repository (encrypted frames of
// chunks and chunk lists, read-ahead included): the "reads < 1 % of the repository"
// figure of bench/file-restore.sh.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "backup/repository.h"
#include "backup/shared_fetch_cache.h"
#include "backup/snapshot.h"
#include "image/block_device.h"

namespace arche::backup {

struct SnapshotDeviceOptions {
  size_t cached_chunks = 32;   // decrypted chunks kept (chunk_size bytes each)
  size_t cached_lists = 4;     // chunk-list blobs kept (4096 chunks each)
  unsigned max_read_ahead = 8;  // chunks fetched ahead of a sequential reader; 0: none
};

class SnapshotImageDevice final : public image::BlockDevice {
 public:
  // `repo` must have its index loaded and outlive the device.
  SnapshotImageDevice(Repository& repo, const Snapshot& snapshot, const ImageRecord& image,
                      SnapshotDeviceOptions options = {});
  ~SnapshotImageDevice() override;

  uint64_t size() const override { return image_.size; }
  bool writable() const override { return false; }
  std::string format() const override { return "arche-snapshot"; }
  std::string filename() const override { return name_; }
  void read(uint64_t offset, std::span<uint8_t> out) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;
  void write_zeroes(uint64_t offset, uint64_t length, bool may_unmap) override;
  void discard(uint64_t offset, uint64_t length) override;
  void flush() override {}
  image::LayerStatus layer_status(uint64_t offset, uint64_t max_length) override;
  uint64_t granularity() const override { return image_.chunk_size; }
  image::ImageInfo info() const override;

  // Data chunks fetched from the repository so far (read-ahead included).
  uint64_t chunks_fetched() const { return fetched_chunks_; }
  // Bytes read from the repository so far: chunk and chunk-list frames as stored.
  uint64_t bytes_fetched() const { return fetched_bytes_; }
  // Waits until the read-ahead queued so far is done (tests and benches: counts settle).
  void settle_read_ahead();

 private:
  using Buffer = std::vector<uint8_t>;
  using IdList = std::vector<Id>;

  Id chunk_id(uint64_t chunk);
  std::shared_ptr<const Buffer> chunk_data(uint64_t chunk, const Id& id);
  std::shared_ptr<const Buffer> fetch_chunk(uint64_t chunk, const Id& id);
  void note_access(uint64_t offset, uint64_t length);
  void read_ahead_loop();
  [[noreturn]] void read_only() const;

  Repository& repo_;
  ImageRecord image_;
  std::string name_;
  SnapshotDeviceOptions options_;
  SharedFetchCache<IdList> lists_;
  SharedFetchCache<Buffer> chunks_;
  std::atomic<uint64_t> fetched_chunks_{0}, fetched_bytes_{0};

  // Sequential-run detection and the read-ahead thread (started on first use).
  std::mutex ahead_mutex_;
  std::condition_variable ahead_wake_, ahead_idle_;
  uint64_t next_offset_ = UINT64_MAX;  // where a sequential reader reads next
  uint64_t run_chunk_ = 0;             // the last chunk of the run so far
  uint64_t window_ = 0;                // chunks read ahead at the last step of the run
  uint64_t queued_until_ = 0;          // read ahead up to (excluding) this chunk
  std::deque<uint64_t> ahead_queue_;
  bool ahead_busy_ = false, stopping_ = false;
  std::thread ahead_thread_;
};

}  // namespace arche::backup
