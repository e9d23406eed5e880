// A VHDX image as a BlockDevice: fixed, dynamic and differencing disks.
//
// Opening picks the current header (valid CRC32C, highest sequence number), replays
// a non-empty log (into the file when writable, as an in-memory overlay when
// read-only), reads a valid region table copy, the metadata and the whole BAT.
// Writes put new payload blocks at the end of the file (1 MiB aligned) and update
// BAT entries in place: with barriers the block reaches the disk before the entry
// that points at it. Before the first change the headers get new FileWriteGuid (and
// DataWriteGuid for visible data), written alternately to the older slot, as the
// specification asks. arche writes no log entries itself.
//
// Differencing disks: the parent comes from the parent locator (relative_path,
// then absolute_win32_path) through open_backing(), and must carry the DataWriteGuid
// the locator's parent_linkage names. A partial write into a block the child does
// not hold stores only the written sectors (PARTIALLY_PRESENT, with their bits in
// the chunk's sector bitmap block); a whole-block write makes it FULLY_PRESENT.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <vector>

#include "core/file.h"
#include "image/format.h"
#include "image/vhdx/vhdx_format.h"
#include "image/vhdx/vhdx_log.h"

namespace arche::image::vhdx {

class VhdxDevice final : public BlockDevice {
 public:
  static std::unique_ptr<VhdxDevice> open(const std::string& path, const OpenOptions& options, ChainState& chain);
  ~VhdxDevice() override;

  uint64_t size() const override { return meta_.virtual_disk_size; }
  bool writable() const override { return file_.writable(); }
  std::string format() const override { return "vhdx"; }
  std::string filename() const override { return file_.path(); }

  void read(uint64_t offset, std::span<uint8_t> out) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;
  void write_zeroes(uint64_t offset, uint64_t length, bool may_unmap) override;
  void discard(uint64_t offset, uint64_t length) override;
  void flush() override;
  LayerStatus layer_status(uint64_t offset, uint64_t max_length) override;
  BlockDevice* backing() const override { return backing_.get(); }
  uint64_t granularity() const override { return fixed() ? 4096 : layout_.block_size; }
  ImageInfo info() const override;

  const Header& header() const { return headers_[current_]; }
  const Metadata& metadata() const { return meta_; }
  void close();
  // Adds what `image check` finds beyond what open() refuses: overlapping blocks,
  // a log still waiting for replay; fills the counters.
  void check_layout(CheckResult& r) const;

 private:
  explicit VhdxDevice(File file, const OpenOptions& options);
  void load(const OpenOptions& options);
  void open_parent(const OpenOptions& options, ChainState& chain);
  bool fixed() const { return meta_.leave_blocks_allocated && !meta_.has_parent; }

  // Reads from the file, through the replayed log when there is one in memory.
  void read_file(uint64_t offset, std::span<uint8_t> out) const;
  uint64_t payload_entry(uint64_t block) const { return bat_[layout_.payload_index(block)]; }
  std::vector<uint8_t> sector_bitmap(uint64_t block) const;
  void read_block(uint64_t block, uint64_t in, std::span<uint8_t> out) const;
  void read_absent(uint64_t guest, std::span<uint8_t> out) const;

  void begin_change(bool visible);
  void write_header_update(Header h);
  uint64_t allocate_space(uint64_t length);
  void write_block_locked(uint64_t block, uint64_t in, std::span<const uint8_t> data);
  void write_sectors_locked(uint64_t block, uint64_t in, std::span<const uint8_t> data);
  void set_entry(uint64_t index, uint64_t entry);
  void zero_range_locked(uint64_t offset, uint64_t length, bool may_unmap, bool whole_blocks_only);
  void write_metadata();
  void barrier();
  void require_writable(const char* op) const;

  File file_;
  bool barriers_;
  Header headers_[2];
  int current_ = 0;
  Metadata meta_;
  BatLayout layout_;
  RegionEntry bat_region_, metadata_region_;
  std::vector<uint64_t> bat_;
  std::optional<LogReplay> log_overlay_;  // read-only opens of a dirty image
  uint64_t next_free_ = 0;   // where the next payload block goes
  uint64_t needed_end_ = 0;  // the file must be at least this long
  bool file_guid_changed_ = false;
  std::atomic<bool> data_guid_changed_{false};
  uint64_t bat_dirty_begin_ = UINT64_MAX, bat_dirty_end_ = 0;
  std::string backing_recorded_, backing_path_;
  std::unique_ptr<BlockDevice> backing_;
  mutable std::shared_mutex lock_;
  bool closed_ = false;
};

}  // namespace arche::image::vhdx
