// A VirtualBox VDI image (static or dynamic) as a BlockDevice. The block map lives
// in memory; a new block is appended after the last one, and with barriers its data
// reaches the disk before the map entry and the header's allocation count. Zeroing
// an allocated block punches a hole into it instead of freeing it: VDI has no way
// to give a block back without compacting, and a hole costs no space.
#pragma once

#include <memory>
#include <shared_mutex>
#include <vector>

#include "core/file.h"
#include "image/format.h"
#include "image/vdi/vdi_format.h"

namespace arche::image::vdi {

class VdiDevice final : public BlockDevice {
 public:
  static std::unique_ptr<VdiDevice> open(const std::string& path, const OpenOptions& options);
  ~VdiDevice() override;

  uint64_t size() const override { return size_; }
  bool writable() const override { return file_.writable(); }
  std::string format() const override { return "vdi"; }
  std::string filename() const override { return file_.path(); }

  void read(uint64_t offset, std::span<uint8_t> out) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;
  void write_zeroes(uint64_t offset, uint64_t length, bool may_unmap) override;
  void discard(uint64_t offset, uint64_t length) override;
  void flush() override;
  LayerStatus layer_status(uint64_t offset, uint64_t max_length) override;
  uint64_t granularity() const override { return header_.block_size; }
  ImageInfo info() const override;

  const Header& header() const { return header_; }
  void close();

 private:
  VdiDevice(File file, const OpenOptions& options);
  bool allocated(uint64_t block) const { return map_[block] < kBlockZero; }
  uint64_t host(uint64_t block) const {
    return header_.data_offset + uint64_t{map_[block]} * (uint64_t{header_.block_size} + header_.block_extra) +
           header_.block_extra;
  }
  void begin_change();
  void write_block_locked(uint64_t block, uint64_t in, std::span<const uint8_t> data);
  void mark_dirty(uint64_t block);
  void write_metadata();
  void barrier();
  void require_writable(const char* op) const;

  File file_;
  Header header_;
  uint64_t size_ = 0;
  bool barriers_;
  std::vector<uint32_t> map_;
  uint32_t next_index_ = 0;  // host index of the next new block
  bool header_dirty_ = false;
  bool modified_ = false;
  uint64_t map_dirty_begin_ = UINT64_MAX, map_dirty_end_ = 0;
  mutable std::shared_mutex lock_;
  bool closed_ = false;
};

}  // namespace arche::image::vdi
