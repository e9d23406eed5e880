// Raw images: a plain file or a block device holding the disk byte for byte.
// Sparse-aware: holes (SEEK_DATA/SEEK_HOLE) are reported as zero, discards punch
// holes, zero writes deallocate where the file system can.
#pragma once

#include "core/file.h"
#include "image/format.h"

namespace arche::image {

class RawDevice final : public BlockDevice {
 public:
  explicit RawDevice(File file);

  uint64_t size() const override { return size_; }
  bool writable() const override { return file_.writable(); }
  std::string format() const override { return "raw"; }
  std::string filename() const override { return file_.path(); }

  void read(uint64_t offset, std::span<uint8_t> out) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;
  void write_zeroes(uint64_t offset, uint64_t length, bool may_unmap) override;
  void discard(uint64_t offset, uint64_t length) override;
  void flush() override;
  LayerStatus layer_status(uint64_t offset, uint64_t max_length) override;
  uint64_t granularity() const override { return kGranularity; }
  bool clone_from(uint64_t offset, const File& source, uint64_t source_offset, uint64_t length) override;
  void resize(uint64_t new_size) override;
  ImageInfo info() const override;

 private:
  static constexpr uint64_t kGranularity = 4096;
  void require_writable(const char* op) const;
  void write_zero_bytes(uint64_t offset, uint64_t length);

  File file_;
  uint64_t size_;
  bool sparse_queries_ = true;  // SEEK_DATA works on this file
};

const FormatDriver& raw_driver();

}  // namespace arche::image
