// virtio-blk (virtio spec 5.2) on any arche BlockDevice: read, write, flush,
// discard, write-zeroes and get-id. Requests run on the device's worker thread.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "hv/virtio/pci_device.h"
#include "image/block_device.h"

namespace arche::hv {

struct VirtioBlkState {
  static constexpr uint32_t version = 1;
  VirtioState transport;
  uint64_t capacity_sectors = 0;
  bool readonly = false;
  std::string serial;     // what GET_ID returns
  std::string disk_file;  // the top layer the device writes to (reopened on restore)
  std::string disk_format;
};

class VirtioBlk : public VirtioPciDevice {
 public:
  VirtioBlk(std::string name, std::unique_ptr<image::BlockDevice> disk, bool readonly, std::string serial,
            const GuestMemory& memory, InterruptSink& irq, unsigned gsi, uint32_t bar_address);
  // The worker calls into this class: stop it before the members go.
  ~VirtioBlk() override { stop_worker(); }

  // Replaces the disk (same size) and returns the old one; the worker is parked
  // meanwhile, so no request sees half of each. Used by disk snapshots: the new
  // device is a fresh qcow2 overlay whose backing file is the old top.
  std::unique_ptr<image::BlockDevice> replace_disk(std::unique_ptr<image::BlockDevice> disk);
  VirtioBlkState state() const;
  // Makes everything the guest wrote durable in the image files (its metadata too),
  // so another reader of the files (a new overlay's backing) sees it.
  void flush_disk();
  uint64_t requests_completed() const { return completed_.load(); }

 protected:
  uint64_t device_features() const override;
  void read_config(uint64_t offset, std::span<uint8_t> data) override;
  void process_queue(unsigned index, Virtqueue& queue) override;

 private:
  uint8_t handle(const DescChain& chain, uint32_t& written);
  uint8_t discard_or_zero(const DescChain& chain, bool zero, uint64_t payload_bytes);

  mutable std::mutex disk_mutex_;  // guards disk_ against replace_disk
  std::unique_ptr<image::BlockDevice> disk_;
  bool readonly_;
  std::string serial_;
  uint64_t capacity_sectors_;
  std::atomic<uint64_t> completed_{0};
};

}  // namespace arche::hv
