#include "tests/image/mirror_test_util.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "core/file.h"
#include "image/format.h"

namespace arche::test {

MirrorOptions rw_options() {
  MirrorOptions o;
  o.writable = true;
  o.bitmap_clear_delay = std::chrono::nanoseconds(0);
  return o;
}

std::unique_ptr<MirrorDevice> create_test_mirror(const std::vector<std::string>& legs, uint64_t size,
                                                 ChecksumKind checksum, uint64_t region, uint64_t block,
                                                 MirrorOptions options) {
  image::mirror::CreateMirrorOptions c;
  c.size = size;
  c.checksum = checksum;
  c.region_size = region;
  c.block_size = block;
  return image::mirror::create_mirror(legs, c, options);
}

std::unique_ptr<MirrorDevice> open_test_mirror(const std::vector<std::string>& legs, MirrorOptions options) {
  return image::mirror::open_mirror(legs, options);
}

std::vector<uint8_t> leg_data(const std::string& leg, uint64_t size) {
  image::OpenOptions o;
  o.force_share = true;
  auto dev = image::open_image(leg, o);
  std::vector<uint8_t> out(size);
  dev->read(0, out);
  return out;
}

void corrupt_file(const std::string& path, uint64_t offset, uint64_t length) {
  File f = File::open(path, OpenMode::read_write);
  std::vector<uint8_t> buf(length);
  f.read_exact(offset, buf);
  for (uint8_t& b : buf) b ^= 0xff;
  f.write_all(offset, buf);
}

void FaultyDevice::read(uint64_t offset, std::span<uint8_t> out) {
  {
    std::lock_guard lock(faults_->mutex);
    for (const auto& [lo, hi] : faults_->bad_reads)
      if (offset < hi && lo < offset + out.size())
        fail(ErrorCategory::io, "{}: injected read error at offset {}", filename(), offset);
  }
  inner_->read(offset, out);
}

void FaultyDevice::before_write(uint64_t offset, uint64_t length, std::span<const uint8_t> data) {
  std::lock_guard lock(faults_->mutex);
  if (faults_->dead) fail(ErrorCategory::io, "{}: injected write error (dead disk)", filename());
  if (offset < faults_->exit_on_write_hi && faults_->exit_on_write_lo < offset + length) {
    if (!data.empty()) inner_->write(offset, data.first(std::min<uint64_t>(data.size(), faults_->exit_after)));
    _exit(0);  // the "crash": nothing after this write happens
  }
  // A written range reads again (a remapped sector).
  for (auto it = faults_->bad_reads.begin(); it != faults_->bad_reads.end();)
    it = offset <= it->first && it->second <= offset + length ? faults_->bad_reads.erase(it) : std::next(it);
}

void FaultyDevice::write(uint64_t offset, std::span<const uint8_t> data) {
  before_write(offset, data.size(), data);
  inner_->write(offset, data);
}

void FaultyDevice::write_zeroes(uint64_t offset, uint64_t length, bool may_unmap) {
  before_write(offset, length, {});
  inner_->write_zeroes(offset, length, may_unmap);
}

void FaultyDevice::discard(uint64_t offset, uint64_t length) {
  before_write(offset, length, {});
  inner_->discard(offset, length);
}

void FaultyDevice::flush() {
  {
    std::lock_guard lock(faults_->mutex);
    if (faults_->dead) fail(ErrorCategory::io, "{}: injected flush error (dead disk)", filename());
  }
  inner_->flush();
}

std::function<std::unique_ptr<image::BlockDevice>(std::unique_ptr<image::BlockDevice>)> fault_leg(
    const std::string& name, std::shared_ptr<FaultyDevice::Faults> faults) {
  return [name, faults](std::unique_ptr<image::BlockDevice> dev) -> std::unique_ptr<image::BlockDevice> {
    const std::string f = dev->filename();
    if (f.size() < name.size() || f.compare(f.size() - name.size(), name.size(), name) != 0) return dev;
    return std::make_unique<FaultyDevice>(std::move(dev), faults);
  };
}

VolatileCacheDevice::VolatileCacheDevice(std::unique_ptr<image::BlockDevice> inner, std::shared_ptr<PowerLoss> power)
    : inner_(std::move(inner)), power_(std::move(power)) {
  std::lock_guard lock(power_->mutex);
  power_->devices.push_back(this);
}

VolatileCacheDevice::~VolatileCacheDevice() {
  // Closed without a flush: what it held is lost, as if the power had gone.
  std::lock_guard lock(power_->mutex);
  std::erase(power_->devices, this);
}

void VolatileCacheDevice::read(uint64_t offset, std::span<uint8_t> out) {
  std::lock_guard lock(power_->mutex);
  inner_->read(offset, out);
  const uint64_t end = offset + out.size();
  for (const Pending& p : pending_) {
    const uint64_t from = std::max(offset, p.offset), to = std::min(end, p.offset + p.length);
    if (from >= to) continue;
    if (p.data.empty()) std::memset(out.data() + (from - offset), 0, to - from);
    else std::memcpy(out.data() + (from - offset), p.data.data() + (from - p.offset), to - from);
  }
}

void VolatileCacheDevice::write(uint64_t offset, std::span<const uint8_t> data) {
  std::lock_guard lock(power_->mutex);
  pending_.push_back({offset, data.size(), std::vector<uint8_t>(data.begin(), data.end())});
  count_op();
}

void VolatileCacheDevice::write_zeroes(uint64_t offset, uint64_t length, bool) {
  std::lock_guard lock(power_->mutex);
  pending_.push_back({offset, length, {}});
  count_op();
}

void VolatileCacheDevice::flush() {
  std::lock_guard lock(power_->mutex);
  count_op();  // a crash now: the flush did not happen
  for (const Pending& p : pending_) land(p, p.offset, p.offset + p.length);
  pending_.clear();
  // The file beneath is the disk's medium: the page cache outlives the process,
  // and nothing here simulates the host losing power, so no fdatasync is needed.
}

void VolatileCacheDevice::land(const Pending& p, uint64_t from, uint64_t to) {
  if (p.data.empty()) inner_->write_zeroes(from, to - from, false);
  else inner_->write(from, std::span(p.data.data() + (from - p.offset), to - from));
}

void VolatileCacheDevice::count_op() {
  if (++power_->ops == power_->crash_at) crash();
}

void VolatileCacheDevice::crash() {
  constexpr uint64_t kSector = 512;
  std::mt19937_64& rng = power_->rng;
  for (VolatileCacheDevice* dev : power_->devices) {
    for (const Pending& p : dev->pending_) {
      switch (rng() % 5) {
        case 0:
        case 1: dev->land(p, p.offset, p.offset + p.length); break;
        case 2:
        case 3: break;  // lost
        default:        // torn: each sector lands or not
          for (uint64_t at = p.offset; at < p.offset + p.length;) {
            const uint64_t next = std::min(p.offset + p.length, (at / kSector + 1) * kSector);
            if (rng() % 2) dev->land(p, at, next);
            at = next;
          }
      }
    }
  }
  _exit(0);
}

std::function<std::unique_ptr<image::BlockDevice>(std::unique_ptr<image::BlockDevice>)> volatile_legs(
    std::shared_ptr<VolatileCacheDevice::PowerLoss> power) {
  return [power](std::unique_ptr<image::BlockDevice> dev) -> std::unique_ptr<image::BlockDevice> {
    return std::make_unique<VolatileCacheDevice>(std::move(dev), power);
  };
}

}  // namespace arche::test
