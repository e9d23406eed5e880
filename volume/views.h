// Read-only BlockDevices that present part of other devices: a byte range (a
// partition), a concatenation of linear or striped segments over one or more
// devices (an LVM2 logical volume), and a buffer in memory (tests, fuzzing).
// Partition tables and volume managers hand these to the file system readers,
// which never see where the bytes really live.
//
// All of them are read-only: write, write_zeroes and discard fail with a
// permission error naming the device. Reads are bounds-checked against the view
// (a usage error, like every BlockDevice); the view itself is checked against the
// devices below when it is made, so a partition table that points beyond the disk
// is caught there, as a corrupt error, not at the first read.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "image/block_device.h"

namespace arche::volume {

// The refusals and plumbing every read-only view shares.
class ReadOnlyDevice : public image::BlockDevice {
 public:
  explicit ReadOnlyDevice(std::string name) : name_(std::move(name)) {}
  bool writable() const override { return false; }
  std::string filename() const override { return name_; }
  void write(uint64_t offset, std::span<const uint8_t> data) override;
  void write_zeroes(uint64_t offset, uint64_t length, bool may_unmap) override;
  void discard(uint64_t offset, uint64_t length) override;
  void flush() override {}
  image::ImageInfo info() const override;

 private:
  [[noreturn]] void refuse(const char* op) const;
  std::string name_;
};

// Bytes [offset, offset + length) of another device.
class SliceDevice final : public ReadOnlyDevice {
 public:
  // Throws a corrupt error when the range does not lie within `base`.
  SliceDevice(std::shared_ptr<image::BlockDevice> base, uint64_t offset, uint64_t length, std::string name);

  uint64_t size() const override { return length_; }
  std::string format() const override { return "slice"; }
  void read(uint64_t offset, std::span<uint8_t> out) override;
  image::LayerStatus layer_status(uint64_t offset, uint64_t max_length) override;
  uint64_t granularity() const override { return base_->granularity(); }

  image::BlockDevice& base() const { return *base_; }
  uint64_t offset() const { return offset_; }

 private:
  std::shared_ptr<image::BlockDevice> base_;
  uint64_t offset_, length_;
};

// Where one stripe of a segment begins on its device.
struct StripeArea {
  std::shared_ptr<image::BlockDevice> device;
  uint64_t offset = 0;
};

// `length` bytes of the logical device, starting where the previous segment ended.
// One area: linear (the bytes lie one after the other at areas[0].offset). Several:
// striped, `stripe_size` bytes to each area in turn (RAID-0, LVM "striped").
struct Segment {
  uint64_t length = 0;
  std::vector<StripeArea> areas;
  uint64_t stripe_size = 0;  // bytes; only for several areas
};

class SegmentedDevice final : public ReadOnlyDevice {
 public:
  // Throws a corrupt error when a segment reaches beyond its devices or its
  // length is not a whole number of stripe rows.
  SegmentedDevice(std::vector<Segment> segments, std::string name);

  uint64_t size() const override { return size_; }
  std::string format() const override { return "segmented"; }
  void read(uint64_t offset, std::span<uint8_t> out) override;
  image::LayerStatus layer_status(uint64_t offset, uint64_t max_length) override;
  uint64_t granularity() const override { return 4096; }

 private:
  struct Located {
    image::BlockDevice* device;
    uint64_t offset;  // on that device
    uint64_t run;     // bytes that follow contiguously there (within the segment/stripe)
  };
  Located locate(uint64_t offset) const;

  std::vector<Segment> segments_;
  std::vector<uint64_t> starts_;  // logical start of each segment
  uint64_t size_ = 0;
};

// A device over bytes in memory (tests and fuzz targets).
class MemoryDevice final : public ReadOnlyDevice {
 public:
  explicit MemoryDevice(std::vector<uint8_t> bytes, std::string name = "memory");
  uint64_t size() const override { return bytes_.size(); }
  std::string format() const override { return "memory"; }
  void read(uint64_t offset, std::span<uint8_t> out) override;
  image::LayerStatus layer_status(uint64_t offset, uint64_t max_length) override;
  uint64_t granularity() const override { return 512; }

 private:
  std::vector<uint8_t> bytes_;
};

}  // namespace arche::volume
