// A VHD ("vpc") image as a BlockDevice: fixed disks (the data, then the footer),
// dynamic disks (footer copy, dynamic header, BAT, blocks of sector bitmap + data)
// and differencing disks (a dynamic disk whose clear bitmap bits fall through to
// the parent, found through the parent locators and checked by its unique id).
//
// The BAT lives in memory. A new block goes where the footer was, the footer moves
// behind it. With barriers (live images) the block and the new footer reach the disk
// before the BAT entry that points at them; without (conversion targets) BAT and
// footer are written once, at flush or close.
#pragma once

#include <atomic>
#include <memory>
#include <shared_mutex>
#include <vector>

#include "core/file.h"
#include "image/format.h"
#include "image/vhd/vhd_format.h"

namespace arche::image::vhd {

class VhdDevice final : public BlockDevice {
 public:
  static std::unique_ptr<VhdDevice> open(const std::string& path, const OpenOptions& options, ChainState& chain);
  ~VhdDevice() override;

  uint64_t size() const override { return size_; }
  bool writable() const override { return file_.writable(); }
  std::string format() const override { return "vpc"; }
  std::string filename() const override { return file_.path(); }

  void read(uint64_t offset, std::span<uint8_t> out) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;
  void write_zeroes(uint64_t offset, uint64_t length, bool may_unmap) override;
  void discard(uint64_t offset, uint64_t length) override;
  void flush() override;
  LayerStatus layer_status(uint64_t offset, uint64_t max_length) override;
  BlockDevice* backing() const override { return backing_.get(); }
  uint64_t granularity() const override { return dynamic_ ? block_size_ : 4096; }
  ImageInfo info() const override;

  const Footer& footer() const { return footer_; }
  // Writes BAT and footer; errors surface here rather than in the destructor.
  void close();

 private:
  enum BitmapState : uint8_t { unknown = 0, full = 1, partial = 2 };

  VhdDevice(File file, const OpenOptions& options);
  void load_dynamic(bool end_footer_valid);
  void open_parent(const OpenOptions& options, ChainState& chain);

  uint64_t block_host(uint64_t block) const { return uint64_t{bat_[block]} * kSector; }
  uint64_t data_host(uint64_t block) const { return block_host(block) + bitmap_size_; }
  BitmapState bitmap_state(uint64_t block);
  std::vector<uint8_t> read_bitmap(uint64_t block) const;
  void write_bitmap(uint64_t block, std::span<const uint8_t> bitmap);
  // Reads [in, in+out.size()) of one block through its bitmap.
  void read_block(uint64_t block, uint64_t in, std::span<uint8_t> out);
  // What reads see where this layer holds nothing: the parent, or zeros.
  void read_absent(uint64_t offset, std::span<uint8_t> out) const;

  void write_block_locked(uint64_t block, uint64_t in, std::span<const uint8_t> data);
  void allocate_block(uint64_t block, uint64_t in, std::span<const uint8_t> data);
  void zero_dynamic(uint64_t offset, uint64_t length, bool whole_blocks_only, bool may_unmap);
  void write_bat_entry(uint64_t block);
  void write_metadata();
  void barrier();
  void require_writable(const char* op) const;

  File file_;
  Footer footer_;
  DynamicHeader header_;
  uint64_t size_ = 0;
  bool dynamic_ = false;  // dynamic or differencing
  bool differencing_ = false;
  bool barriers_ = true;
  uint64_t block_size_ = 0;
  uint64_t bitmap_size_ = 0;
  std::vector<uint32_t> bat_;
  std::vector<std::atomic<uint8_t>> bitmap_states_;
  uint64_t next_free_ = 0;  // where the next block (and after it the footer) goes
  bool footer_dirty_ = false;
  uint64_t bat_dirty_begin_ = UINT64_MAX, bat_dirty_end_ = 0;
  std::string backing_recorded_;  // the locator's path, as stored
  std::string backing_path_;      // resolved on this host
  std::unique_ptr<BlockDevice> backing_;
  mutable std::shared_mutex lock_;
  bool closed_ = false;
};

}  // namespace arche::image::vhd
