// PCI: configuration mechanism #1 (ports 0xcf8/0xcfc) on bus 0, a host bridge in
// slot 0, and BAR decoding for MMIO exits. Devices keep their 256-byte
// configuration space as bytes with a write mask, like real hardware: BAR sizing,
// the command register and the interrupt line work without special cases.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <span>
#include <vector>

#include "hv/bus.h"

namespace arche::hv {

struct PciConfigState {
  static constexpr uint32_t version = 1;
  std::array<uint8_t, 256> bytes{};  // includes the BAR addresses and command register
};

class PciDevice {
 public:
  virtual ~PciDevice() = default;

  uint32_t config_read(unsigned offset);  // dword at offset & ~3
  void config_write(unsigned offset, std::span<const uint8_t> data);

  // If address falls in an enabled memory BAR: which BAR and the offset into it.
  bool decode(uint64_t address, int& bar, uint64_t& offset) const;
  virtual void bar_read(int bar, uint64_t offset, std::span<uint8_t> data) = 0;
  virtual void bar_write(int bar, uint64_t offset, std::span<const uint8_t> data) = 0;

  PciConfigState config_state() const;
  void restore_config(const PciConfigState& s);
  bool intx_disabled() const;

 protected:
  void init_header(uint16_t vendor, uint16_t device, uint32_t class_code, uint8_t revision, uint16_t subsystem_vendor,
                   uint16_t subsystem, uint8_t interrupt_line, bool interrupt_pin);
  // A memory BAR (32-bit, non-prefetchable) of a power-of-two size at `address`.
  void add_memory_bar(int index, uint32_t size, uint32_t address);
  // Appends a capability (body starts with the cap id; next pointer is filled in).
  // Returns its offset in configuration space.
  uint8_t add_capability(std::span<const uint8_t> body);
  // Called after the guest wrote configuration bytes [offset, offset+size), with
  // config_mutex_ held: for capabilities with side effects.
  virtual void config_written(unsigned, size_t) {}
  // Called before a guest read of the dword at offset, with config_mutex_ held.
  virtual void config_before_read(unsigned) {}

  mutable std::mutex config_mutex_;
  std::atomic<uint16_t> command_{0};  // copy of the command register, read without the lock
  std::array<uint8_t, 256> config_{};
  std::array<uint8_t, 256> wmask_{};
  std::array<uint32_t, 6> bar_size_{};
  uint8_t last_cap_ = 0;
  uint8_t next_cap_offset_ = 0x40;
};

class PciBus : public BusDevice {
 public:
  PciBus();
  // Places the device in the next free slot (1..31) and returns the slot.
  unsigned add(PciDevice* device);
  size_t slots_used() const { return devices_.size(); }

  // Port interface, registered at 0xcf8 with length 8.
  void bus_read(uint64_t offset, std::span<uint8_t> data) override;
  void bus_write(uint64_t offset, std::span<const uint8_t> data) override;

  bool mmio_read(uint64_t address, std::span<uint8_t> data);
  bool mmio_write(uint64_t address, std::span<const uint8_t> data);

 private:
  PciDevice* target(unsigned& reg);
  std::mutex mutex_;
  uint32_t address_ = 0;
  std::vector<PciDevice*> devices_;  // index = slot; slot 0 is the host bridge
};

}  // namespace arche::hv
