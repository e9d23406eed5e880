#include "hv/virtio/blk.h"

#include <cstring>

#include "core/error.h"
#include "core/log.h"
#include "core/units.h"

namespace arche::hv {

namespace {

constexpr uint64_t f_size_max = 1ull << 1, f_seg_max = 1ull << 2, f_ro = 1ull << 5, f_blk_size = 1ull << 6,
                   f_flush = 1ull << 9, f_discard = 1ull << 13, f_write_zeroes = 1ull << 14;
constexpr uint32_t t_in = 0, t_out = 1, t_flush = 4, t_get_id = 8, t_discard = 11, t_write_zeroes = 13;
constexpr uint8_t s_ok = 0, s_ioerr = 1, s_unsupp = 2;
constexpr uint32_t size_max = 1 << 20, seg_max = 126, max_discard_seg = 32;
constexpr uint32_t max_discard_sectors = 0x3fffff;  // 2 GiB - 512 per segment
constexpr size_t id_bytes = 20;

}  // namespace

VirtioBlk::VirtioBlk(std::string name, std::unique_ptr<image::BlockDevice> disk, bool readonly, std::string serial,
                     const GuestMemory& memory, InterruptSink& irq, unsigned gsi, uint32_t bar_address)
    : VirtioPciDevice(std::move(name), virtio::type_block, 0x018000, memory, irq, gsi, 1, 256, bar_address),
      disk_(std::move(disk)),
      readonly_(readonly || !disk_->writable()),
      serial_(std::move(serial)),
      capacity_sectors_(disk_->size() / 512) {}

uint64_t VirtioBlk::device_features() const {
  uint64_t f = f_size_max | f_seg_max | f_blk_size | f_flush;
  if (readonly_) f |= f_ro;
  else f |= f_discard | f_write_zeroes;
  return f;
}

void VirtioBlk::read_config(uint64_t offset, std::span<uint8_t> data) {
  uint8_t cfg[60] = {};
  auto put32 = [&](size_t at, uint32_t v) { std::memcpy(cfg + at, &v, 4); };
  std::memcpy(cfg, &capacity_sectors_, 8);
  put32(8, size_max);
  put32(12, seg_max);
  put32(20, 512);  // blk_size
  uint16_t one_queue = 1;
  std::memcpy(cfg + 34, &one_queue, 2);
  put32(36, max_discard_sectors);
  put32(40, max_discard_seg);
  put32(44, 8);  // discard alignment: 4 KiB
  put32(48, max_discard_sectors);
  put32(52, max_discard_seg);
  cfg[56] = 1;  // write_zeroes may unmap
  for (size_t i = 0; i < data.size(); ++i) data[i] = offset + i < sizeof cfg ? cfg[offset + i] : 0;
}

std::unique_ptr<image::BlockDevice> VirtioBlk::replace_disk(std::unique_ptr<image::BlockDevice> disk) {
  if (disk->size() / 512 != capacity_sectors_)
    fail(ErrorCategory::usage, "{}: the new disk has {} bytes, the guest sees {}", name(), disk->size(),
         capacity_sectors_ * 512);
  pause_worker();
  std::unique_ptr<image::BlockDevice> old;
  {
    std::lock_guard lock(disk_mutex_);
    disk_->flush();
    old = std::move(disk_);
    disk_ = std::move(disk);
  }
  resume_worker();
  return old;
}

void VirtioBlk::flush_disk() {
  std::lock_guard lock(disk_mutex_);
  disk_->flush();
}

VirtioBlkState VirtioBlk::state() const {
  VirtioBlkState s;
  s.transport = transport_state();
  s.capacity_sectors = capacity_sectors_;
  s.readonly = readonly_;
  s.serial = serial_;
  std::lock_guard lock(disk_mutex_);
  s.disk_file = disk_->filename();
  s.disk_format = disk_->format();
  return s;
}

void VirtioBlk::process_queue(unsigned, Virtqueue& queue) {
  bool any = false;
  while (auto chain = queue.pop()) {
    uint32_t written = 0;
    uint8_t status;
    if (chain->writable_bytes < 1) {
      // Nowhere to put the status byte: the driver is broken, not the request.
      throw QueueError(fmt::format("request {} has no status byte", chain->head));
    }
    {
      std::lock_guard lock(disk_mutex_);
      status = handle(*chain, written);
    }
    copy_to_segments(chain->writable, chain->writable_bytes - 1, {&status, 1});
    queue.push(chain->head, written + 1);
    ++completed_;
    any = true;
  }
  if (any && queue.wants_interrupt()) raise_interrupt(1);
}

uint8_t VirtioBlk::handle(const DescChain& chain, uint32_t& written) {
  uint8_t header[16];
  if (copy_from_segments(chain.readable, 0, header) != sizeof header) return s_ioerr;
  uint32_t type;
  uint64_t sector;
  std::memcpy(&type, header, 4);
  std::memcpy(&sector, header + 8, 8);
  uint64_t in_bytes = chain.writable_bytes - 1;   // data the device writes (reads)
  uint64_t out_bytes = chain.readable_bytes - 16;  // data the device reads (writes)
  try {
    switch (type) {
      case t_in: {
        if (in_bytes % 512 || sector > capacity_sectors_ || in_bytes / 512 > capacity_sectors_ - sector) return s_ioerr;
        uint64_t pos = sector * 512;
        for (auto& seg : slice_segments(chain.writable, 0, in_bytes)) {
          disk_->read(pos, seg);
          pos += seg.size();
        }
        written = static_cast<uint32_t>(in_bytes);
        return s_ok;
      }
      case t_out: {
        if (readonly_) return s_ioerr;
        if (out_bytes % 512 || sector > capacity_sectors_ || out_bytes / 512 > capacity_sectors_ - sector)
          return s_ioerr;
        uint64_t pos = sector * 512;
        for (auto& seg : slice_segments(chain.readable, 16, out_bytes)) {
          disk_->write(pos, seg);
          pos += seg.size();
        }
        return s_ok;
      }
      case t_flush: disk_->flush(); return s_ok;
      case t_get_id: {
        uint8_t id[id_bytes] = {};
        std::memcpy(id, serial_.data(), std::min(serial_.size(), id_bytes));
        written = static_cast<uint32_t>(copy_to_segments(chain.writable, 0, {id, std::min<uint64_t>(id_bytes, in_bytes)}));
        return s_ok;
      }
      case t_discard:
      case t_write_zeroes:
        if (readonly_) return s_ioerr;
        // Only what the driver negotiated (the features are fixed after FEATURES_OK).
        if (!(negotiated_features() & (type == t_discard ? f_discard : f_write_zeroes))) return s_unsupp;
        return discard_or_zero(chain, type == t_write_zeroes, out_bytes);
      default: return s_unsupp;
    }
  } catch (const Error& e) {
    warn("{}: request type {} at sector {} failed: {}", name(), type, sector, e.what());
    return s_ioerr;
  }
}

uint8_t VirtioBlk::discard_or_zero(const DescChain& chain, bool zero, uint64_t payload_bytes) {
  if (payload_bytes % 16 || payload_bytes == 0 || payload_bytes / 16 > max_discard_seg) return s_ioerr;
  for (uint64_t at = 16; at < 16 + payload_bytes; at += 16) {
    uint8_t seg[16];
    copy_from_segments(chain.readable, at, seg);
    uint64_t sector;
    uint32_t count, flags;
    std::memcpy(&sector, seg, 8);
    std::memcpy(&count, seg + 8, 4);
    std::memcpy(&flags, seg + 12, 4);
    if (count > max_discard_sectors || sector > capacity_sectors_ || count > capacity_sectors_ - sector) return s_ioerr;
    if (flags & ~1u) return s_unsupp;
    if (!zero && flags) return s_unsupp;  // unmap flag only exists for write-zeroes
    if (zero) disk_->write_zeroes(sector * 512, uint64_t(count) * 512, flags & 1);
    else disk_->discard(sector * 512, uint64_t(count) * 512);
  }
  return s_ok;
}

}  // namespace arche::hv
