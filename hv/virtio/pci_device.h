// The virtio 1.x modern PCI transport (virtio spec 4.1) and the worker thread every
// virtio device runs. One memory BAR holds the common configuration, the ISR byte,
// the device configuration and the notification area; interrupts are INTx (level,
// through the in-kernel IOAPIC). MSI-X is not offered yet.
//
// Threads: vCPU threads access registers (under regs_mutex_). A queue notification
// only sets a bit and wakes the device's worker thread, which does the work (disk
// I/O, TAP writes) so a vCPU never waits for a disk. A device reset, and the
// machine's pause, park the worker first; the worker never holds regs_mutex_ while
// doing I/O.
#pragma once

#include <fmt/format.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/file.h"
#include "hv/bus.h"
#include "hv/devices/pci.h"
#include "hv/memory.h"
#include "hv/virtio/queue.h"

namespace arche::hv {

namespace virtio {
inline constexpr uint8_t status_acknowledge = 1, status_driver = 2, status_driver_ok = 4, status_features_ok = 8,
                         status_needs_reset = 0x40, status_failed = 0x80;
inline constexpr uint64_t f_version_1 = 1ull << 32;
inline constexpr uint16_t type_net = 1, type_block = 2, type_rng = 4;
}  // namespace virtio

// Transport state common to every virtio device (a snapshot saves it with the
// device's own state struct).
struct VirtioState {
  static constexpr uint32_t version = 1;
  uint64_t driver_features = 0;
  uint32_t device_feature_select = 0, driver_feature_select = 0;
  uint8_t status = 0;
  uint8_t config_generation = 0;
  uint8_t isr = 0;
  uint16_t queue_select = 0;
  uint16_t config_msix_vector = 0xffff;
  bool broken = false;
  std::string broken_reason;
  std::vector<QueueState> queues;
  PciConfigState pci;
};

class VirtioPciDevice : public PciDevice {
 public:
  VirtioPciDevice(std::string name, uint16_t device_type, uint32_t class_code, const GuestMemory& memory,
                  InterruptSink& irq, unsigned gsi, unsigned queue_count, uint16_t queue_size, uint32_t bar_address);
  ~VirtioPciDevice() override;

  const std::string& name() const { return name_; }
  static constexpr uint32_t bar_size = 0x4000;

  void start_worker();
  void stop_worker();
  // Parks the worker between requests (for reset, pause and snapshots).
  void pause_worker();
  void resume_worker();

  VirtioState transport_state() const;
  bool broken() const;
  uint8_t device_status() const;

  void bar_read(int bar, uint64_t offset, std::span<uint8_t> data) override;
  void bar_write(int bar, uint64_t offset, std::span<const uint8_t> data) override;

 protected:
  virtual uint64_t device_features() const = 0;
  virtual void read_config(uint64_t offset, std::span<uint8_t> data) = 0;
  virtual void write_config(uint64_t, std::span<const uint8_t>) {}
  // Worker thread: handle what the driver queued on `index`. Throw QueueError on a
  // malformed queue.
  virtual void process_queue(unsigned index, Virtqueue& queue) = 0;
  // After a device reset, with the worker parked (on the resetting vCPU's thread).
  virtual void on_reset() {}
  // An extra descriptor the worker polls (the TAP of virtio-net) and the events to
  // wait for right now (0: do not poll it).
  virtual int extra_fd() const { return -1; }
  virtual short extra_events() const { return 0; }
  virtual void on_extra_ready() {}

  // For subclasses on the worker thread: run fn on queue `index` if the driver has
  // set the device up; QueueError marks the device broken.
  template <typename Fn>
  void with_queue(unsigned index, Fn&& fn);
  void raise_interrupt(uint8_t isr_bits);
  void mark_broken(const std::string& why);
  bool driver_ok() const;
  uint64_t negotiated_features() const;

  const GuestMemory& memory_;

 private:
  void worker_loop();
  void reset();
  void kick(unsigned queue);
  void common_read(uint64_t offset, std::span<uint8_t> data);
  void common_write(uint64_t offset, std::span<const uint8_t> data);
  void config_written(unsigned offset, size_t size) override;
  void config_before_read(unsigned offset) override;
  void break_locked(const std::string& why);

  std::string name_;
  InterruptSink& irq_;
  unsigned gsi_;
  UniqueFd kick_fd_;

  mutable std::mutex regs_mutex_;
  VirtioState s_;  // queues' next_avail/next_used belong to the worker while running
  std::vector<uint8_t> common_image_;

  std::mutex irq_mutex_;
  bool irq_line_ = false;

  std::mutex worker_mutex_;
  std::condition_variable worker_cv_;
  bool pause_requested_ = false, worker_paused_ = false, stop_ = false;
  int pause_depth_ = 0;
  std::atomic<uint32_t> pending_queues_{0};
  std::thread worker_;
  uint8_t pci_cfg_cap_ = 0;
};

template <typename Fn>
void VirtioPciDevice::with_queue(unsigned index, Fn&& fn) {
  // Work on a copy of the queue's state: the driver cannot change what the worker
  // validated while the worker uses it. Ring positions are written back after.
  QueueState local;
  {
    std::lock_guard lock(regs_mutex_);
    if (s_.broken || !(s_.status & virtio::status_driver_ok) || index >= s_.queues.size() || !s_.queues[index].enabled)
      return;
    local = s_.queues[index];
  }
  try {
    Virtqueue vq(memory_, local);
    fn(vq);
  } catch (const QueueError& e) {
    mark_broken(fmt::format("queue {}: {}", index, e.what()));
  }
  std::lock_guard lock(regs_mutex_);
  s_.queues[index].next_avail = local.next_avail;
  s_.queues[index].next_used = local.next_used;
}

}  // namespace arche::hv
