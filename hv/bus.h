// Address decoding for I/O ports and fixed MMIO ranges. Devices register once at
// machine construction; the table is immutable afterwards, so vCPU threads look up
// without locks. Each device serialises its own registers.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace arche::hv {

class BusDevice {
 public:
  virtual ~BusDevice() = default;
  // `offset` is relative to the base the device was registered at.
  virtual void bus_read(uint64_t offset, std::span<uint8_t> data) = 0;
  virtual void bus_write(uint64_t offset, std::span<const uint8_t> data) = 0;
};

class Bus {
 public:
  explicit Bus(std::string name) : name_(std::move(name)) {}
  void add(uint64_t base, uint64_t length, BusDevice* device, std::string name);
  // False when no device decodes the address (reads then see all ones).
  bool read(uint64_t address, std::span<uint8_t> data) const;
  bool write(uint64_t address, std::span<const uint8_t> data) const;

 private:
  struct Range {
    uint64_t base, length;
    BusDevice* device;
    std::string name;
  };
  const Range* find(uint64_t address) const;
  std::string name_;
  std::vector<Range> ranges_;  // sorted by base
};

// Where devices raise interrupts: the VM's in-kernel irqchip (KVM_IRQ_LINE).
class InterruptSink {
 public:
  virtual ~InterruptSink() = default;
  virtual void set_irq_line(unsigned gsi, bool level) = 0;
};

}  // namespace arche::hv
