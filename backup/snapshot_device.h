// A disk image of a snapshot as a read-only BlockDevice that reads lazily: a read
// fetches only the chunk-list blob and the chunks it touches (and keeps a few of
// each), so tools that want one file out of a 100 GB image backup (partition table,
// file system reader) read a few megabytes, not the image. Holes read as zeros and
// are reported as such by layer_status, so map() of the device shows the image's
// allocation as it was backed up.
#pragma once

#include <atomic>
#include <cstdint>
#include <list>
#include <mutex>
#include <vector>

#include "backup/repository.h"
#include "backup/snapshot.h"
#include "image/block_device.h"

namespace arche::backup {

class SnapshotImageDevice final : public image::BlockDevice {
 public:
  SnapshotImageDevice(Repository& repo, const Snapshot& snapshot, const ImageRecord& image);

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

  // Chunks fetched from the repository so far (tests: "reads only what it touches").
  uint64_t chunks_fetched() const { return fetched_; }

 private:
  Id chunk_id(uint64_t chunk);
  std::vector<uint8_t> chunk_data(uint64_t chunk, const Id& id);
  [[noreturn]] void read_only() const;

  Repository& repo_;
  ImageRecord image_;
  std::string name_;
  std::mutex mutex_;
  uint64_t list_loaded_ = UINT64_MAX;
  std::vector<Id> list_;
  std::list<std::pair<uint64_t, std::vector<uint8_t>>> cache_;  // most recent first
  std::atomic<uint64_t> fetched_{0};
};

}  // namespace arche::backup
