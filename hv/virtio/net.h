// virtio-net (virtio spec 5.1) on a host TAP device: one receive and one transmit
// queue, no offloads. The worker thread polls the TAP only while the guest has
// offered receive buffers, so a guest that stops reading does not cost host CPU.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "core/file.h"
#include "hv/virtio/pci_device.h"

namespace arche::hv {

struct VirtioNetState {
  static constexpr uint32_t version = 1;
  VirtioState transport;
  std::array<uint8_t, 6> mac{};
  std::string tap;
};

// "52:54:00:12:34:56" -> bytes; throws usage error.
std::array<uint8_t, 6> parse_mac(const std::string& text);
// A locally administered MAC derived from the VM name and the NIC's index.
std::array<uint8_t, 6> default_mac(const std::string& vm_name, unsigned index);

class VirtioNet : public VirtioPciDevice {
 public:
  VirtioNet(std::string name, const std::string& tap, std::array<uint8_t, 6> mac, const GuestMemory& memory,
            InterruptSink& irq, unsigned gsi, uint32_t bar_address);

  VirtioNetState state() const;
  uint64_t frames_sent() const { return tx_frames_.load(); }
  uint64_t frames_received() const { return rx_frames_.load(); }

 protected:
  uint64_t device_features() const override;
  void read_config(uint64_t offset, std::span<uint8_t> data) override;
  void process_queue(unsigned index, Virtqueue& queue) override;
  void on_reset() override;
  int extra_fd() const override { return tap_.get(); }
  short extra_events() const override;
  void on_extra_ready() override;

 private:
  void receive_into(Virtqueue& rx);

  std::string tap_name_;
  UniqueFd tap_;
  std::array<uint8_t, 6> mac_;
  std::vector<uint8_t> pending_;  // a frame read from the TAP, waiting for a buffer
  std::atomic<bool> rx_waiting_{false};  // no receive buffers: do not poll the TAP
  std::atomic<uint64_t> tx_frames_{0}, rx_frames_{0};
};

class VirtioRng : public VirtioPciDevice {
 public:
  VirtioRng(std::string name, const GuestMemory& memory, InterruptSink& irq, unsigned gsi, uint32_t bar_address);
  ~VirtioRng() override { stop_worker(); }
  VirtioState state() const { return transport_state(); }

 protected:
  uint64_t device_features() const override { return 0; }
  void read_config(uint64_t, std::span<uint8_t> data) override { std::fill(data.begin(), data.end(), 0); }
  void process_queue(unsigned index, Virtqueue& queue) override;
};

}  // namespace arche::hv
