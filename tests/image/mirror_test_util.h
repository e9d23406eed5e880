// Helpers for the mirror tests: arrays in a temporary directory, the legs' data
// read as plain images (independently of the mirror code), corruption of a leg's
// bytes, and a leg wrapper that injects faults.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "image/mirror/assemble.h"
#include "tests/image/image_test_util.h"

namespace arche::test {

using image::mirror::ChecksumKind;
using image::mirror::MirrorDevice;
using image::mirror::MirrorOptions;

// Options for tests: writable, bitmap bits cleared at the first flush after a write.
MirrorOptions rw_options();

// Creates a mirror of `size` bytes over new raw files `legs`, returns it open.
std::unique_ptr<MirrorDevice> create_test_mirror(const std::vector<std::string>& legs, uint64_t size,
                                                 ChecksumKind checksum = ChecksumKind::xxh3, uint64_t region = 1 << 20,
                                                 uint64_t block = 4096, MirrorOptions options = rw_options());
std::unique_ptr<MirrorDevice> open_test_mirror(const std::vector<std::string>& legs,
                                               MirrorOptions options = rw_options());

// The first `size` bytes of a leg, read as a plain image (raw or qcow2) by arche's
// ordinary drivers: what other tools see.
std::vector<uint8_t> leg_data(const std::string& leg, uint64_t size);
// XORs 0xff into `length` bytes of a raw leg file at `offset`.
void corrupt_file(const std::string& path, uint64_t offset, uint64_t length);

// Wraps a leg: forwards everything, but reads that overlap a "bad" range fail with
// an I/O error until that range is written again (a sector the drive remaps on
// write), all writes fail once `dead`, and a write that overlaps `exit_on_write`
// writes only its first `exit_after` bytes and ends the process (a torn write).
class FaultyDevice final : public image::BlockDevice {
 public:
  struct Faults {
    std::mutex mutex;
    std::set<std::pair<uint64_t, uint64_t>> bad_reads;  // [offset, end)
    bool dead = false;
    uint64_t exit_on_write_lo = UINT64_MAX, exit_on_write_hi = 0, exit_after = 0;
  };
  FaultyDevice(std::unique_ptr<image::BlockDevice> inner, std::shared_ptr<Faults> faults)
      : inner_(std::move(inner)), faults_(std::move(faults)) {}

  uint64_t size() const override { return inner_->size(); }
  bool writable() const override { return inner_->writable(); }
  std::string format() const override { return inner_->format(); }
  std::string filename() const override { return inner_->filename(); }
  void read(uint64_t offset, std::span<uint8_t> out) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;
  void write_zeroes(uint64_t offset, uint64_t length, bool may_unmap) override;
  void discard(uint64_t offset, uint64_t length) override;
  void flush() override;
  image::LayerStatus layer_status(uint64_t offset, uint64_t max_length) override {
    return inner_->layer_status(offset, max_length);
  }
  uint64_t granularity() const override { return inner_->granularity(); }
  image::ImageInfo info() const override { return inner_->info(); }

 private:
  void before_write(uint64_t offset, uint64_t length, std::span<const uint8_t> data);
  std::unique_ptr<image::BlockDevice> inner_;
  std::shared_ptr<Faults> faults_;
};

// A disk with a volatile write cache, for power-loss tests. Writes are held in
// memory (reads see them) until flush() makes them durable in the device beneath.
// The crash comes at the `crash_at`-th write or flush counted over every leg that
// shares one PowerLoss: then each leg keeps a random part of what it had not
// flushed — a write whole, not at all, or sector by sector (512 bytes), a later
// write over an earlier one — and the process ends at once (_exit(0)), as a power
// cut ends it. Unlike SIGKILL, which leaves everything written in the page cache,
// this loses what no barrier covered, which is what the write ordering must survive.
// All I/O of the legs is serialized on the PowerLoss mutex (a test, not a bench).
class VolatileCacheDevice final : public image::BlockDevice {
 public:
  struct PowerLoss {
    explicit PowerLoss(uint64_t crash_at, uint64_t seed) : crash_at(crash_at), rng(seed) {}
    std::mutex mutex;  // also held by the test around what must not be torn by the crash
    uint64_t ops = 0;  // writes and flushes so far, on every leg
    uint64_t crash_at;
    std::mt19937_64 rng;
    std::vector<VolatileCacheDevice*> devices;
  };
  VolatileCacheDevice(std::unique_ptr<image::BlockDevice> inner, std::shared_ptr<PowerLoss> power);
  ~VolatileCacheDevice() override;

  uint64_t size() const override { return inner_->size(); }
  bool writable() const override { return inner_->writable(); }
  std::string format() const override { return inner_->format(); }
  std::string filename() const override { return inner_->filename(); }
  void read(uint64_t offset, std::span<uint8_t> out) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;
  void write_zeroes(uint64_t offset, uint64_t length, bool may_unmap) override;
  void discard(uint64_t offset, uint64_t length) override { write_zeroes(offset, length, true); }
  void flush() override;
  // Everything may hold data: what the cache holds is not in the device's map.
  image::LayerStatus layer_status(uint64_t offset, uint64_t max_length) override {
    return {image::ExtentKind::data, std::min(max_length, size() - std::min(offset, size())), std::nullopt};
  }
  uint64_t granularity() const override { return inner_->granularity(); }
  image::ImageInfo info() const override { return inner_->info(); }

 private:
  struct Pending {
    uint64_t offset, length;
    std::vector<uint8_t> data;  // empty: zeros
  };
  void count_op();                                          // PowerLoss mutex held; crashes at crash_at
  [[noreturn]] void crash();                                // PowerLoss mutex held
  void land(const Pending& p, uint64_t from, uint64_t to);  // bytes [from, to) of p, durably
  std::unique_ptr<image::BlockDevice> inner_;
  std::shared_ptr<PowerLoss> power_;
  std::vector<Pending> pending_;
};

// A wrap_leg function that puts every leg behind a VolatileCacheDevice.
std::function<std::unique_ptr<image::BlockDevice>(std::unique_ptr<image::BlockDevice>)> volatile_legs(
    std::shared_ptr<VolatileCacheDevice::PowerLoss> power);

// A wrap_leg function that wraps the leg whose file name ends in `name`.
std::function<std::unique_ptr<image::BlockDevice>(std::unique_ptr<image::BlockDevice>)> fault_leg(
    const std::string& name, std::shared_ptr<FaultyDevice::Faults> faults);

}  // namespace arche::test

namespace arche::image::mirror {
// The tests' way to the steps the background worker and the CLI loops take.
class MirrorTestAccess {
 public:
  static bool scrub_step(MirrorDevice& m) { return m.scrub_step(nullptr); }
  static bool rebuild_step(MirrorDevice& m) { return m.rebuild_step(nullptr); }
};
}  // namespace arche::image::mirror
