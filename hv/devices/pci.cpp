#include "hv/devices/pci.h"

#include <cstring>

#include "core/error.h"

namespace arche::hv {

namespace {

constexpr unsigned reg_command = 0x04, reg_status = 0x06, reg_bar0 = 0x10, reg_cap_ptr = 0x34;
constexpr uint16_t command_memory = 0x2, command_intx_disable = 0x400;

class HostBridge : public PciDevice {
 public:
  HostBridge() { init_header(0x1b36, 0x0008, 0x060000, 0, 0x1af4, 0x1100, 0, false); }
  void bar_read(int, uint64_t, std::span<uint8_t> data) override { std::memset(data.data(), 0xff, data.size()); }
  void bar_write(int, uint64_t, std::span<const uint8_t>) override {}
};

HostBridge& host_bridge() {
  static HostBridge bridge;
  return bridge;
}

}  // namespace

void PciDevice::init_header(uint16_t vendor, uint16_t device, uint32_t class_code, uint8_t revision,
                            uint16_t subsystem_vendor, uint16_t subsystem, uint8_t interrupt_line, bool interrupt_pin) {
  auto put16 = [&](unsigned at, uint16_t v) { std::memcpy(&config_[at], &v, 2); };
  put16(0x00, vendor);
  put16(0x02, device);
  config_[0x08] = revision;
  config_[0x09] = static_cast<uint8_t>(class_code);
  config_[0x0a] = static_cast<uint8_t>(class_code >> 8);
  config_[0x0b] = static_cast<uint8_t>(class_code >> 16);
  config_[0x0e] = 0;  // header type 0, single function
  put16(0x2c, subsystem_vendor);
  put16(0x2e, subsystem);
  config_[0x3c] = interrupt_line;
  config_[0x3d] = interrupt_pin ? 1 : 0;  // INTA#
  // Writable: command (I/O, memory, bus master, INTx disable), interrupt line.
  wmask_[reg_command] = 0x07;
  wmask_[reg_command + 1] = 0x04;
  wmask_[0x3c] = 0xff;
  wmask_[0x0c] = 0xff;  // cache line size
  wmask_[0x0d] = 0xff;  // latency timer
}

void PciDevice::add_memory_bar(int index, uint32_t size, uint32_t address) {
  unsigned at = reg_bar0 + 4 * static_cast<unsigned>(index);
  bar_size_[static_cast<size_t>(index)] = size;
  uint32_t value = address & ~(size - 1);  // type 0: 32-bit memory, not prefetchable
  std::memcpy(&config_[at], &value, 4);
  uint32_t mask = ~(size - 1);
  std::memcpy(&wmask_[at], &mask, 4);
}

uint8_t PciDevice::add_capability(std::span<const uint8_t> body) {
  uint8_t at = next_cap_offset_;
  if (at + body.size() > config_.size()) fail(ErrorCategory::internal, "pci: capabilities do not fit");
  std::memcpy(&config_[at], body.data(), body.size());
  config_[at + 1] = 0;
  if (last_cap_) config_[last_cap_ + 1] = at;
  else config_[reg_cap_ptr] = at;
  config_[reg_status] |= 0x10;  // capability list present
  last_cap_ = at;
  next_cap_offset_ = static_cast<uint8_t>((at + body.size() + 3) & ~3u);
  return at;
}

uint32_t PciDevice::config_read(unsigned offset) {
  std::lock_guard lock(config_mutex_);
  config_before_read(offset & 0xfc);
  uint32_t v;
  std::memcpy(&v, &config_[offset & 0xfc], 4);
  return v;
}

void PciDevice::config_write(unsigned offset, std::span<const uint8_t> data) {
  std::lock_guard lock(config_mutex_);
  for (size_t i = 0; i < data.size() && offset + i < config_.size(); ++i) {
    size_t at = offset + i;
    config_[at] = static_cast<uint8_t>((config_[at] & ~wmask_[at]) | (data[i] & wmask_[at]));
  }
  uint16_t command;
  std::memcpy(&command, &config_[reg_command], 2);
  command_ = command;
  config_written(offset, data.size());
}

bool PciDevice::decode(uint64_t address, int& bar, uint64_t& offset) const {
  std::lock_guard lock(config_mutex_);
  uint16_t command;
  std::memcpy(&command, &config_[reg_command], 2);
  if (!(command & command_memory)) return false;
  for (int i = 0; i < 6; ++i) {
    uint32_t size = bar_size_[static_cast<size_t>(i)];
    if (!size) continue;
    uint32_t base;
    std::memcpy(&base, &config_[reg_bar0 + 4 * static_cast<unsigned>(i)], 4);
    base &= ~0xfu;
    if (base && address >= base && address - base < size) {
      bar = i;
      offset = address - base;
      return true;
    }
  }
  return false;
}

bool PciDevice::intx_disabled() const { return command_.load() & command_intx_disable; }

PciConfigState PciDevice::config_state() const {
  std::lock_guard lock(config_mutex_);
  return {config_};
}

void PciDevice::restore_config(const PciConfigState& s) {
  std::lock_guard lock(config_mutex_);
  config_ = s.bytes;
  uint16_t command;
  std::memcpy(&command, &config_[reg_command], 2);
  command_ = command;
}

PciBus::PciBus() { devices_.push_back(&host_bridge()); }

unsigned PciBus::add(PciDevice* device) {
  if (devices_.size() >= 32) fail(ErrorCategory::usage, "vm: too many PCI devices (at most 31)");
  devices_.push_back(device);
  return static_cast<unsigned>(devices_.size() - 1);
}

PciDevice* PciBus::target(unsigned& reg) {
  if (!(address_ & 0x80000000u)) return nullptr;
  unsigned bus = (address_ >> 16) & 0xff, slot = (address_ >> 11) & 0x1f, function = (address_ >> 8) & 7;
  reg = address_ & 0xfc;
  if (bus != 0 || function != 0 || slot >= devices_.size()) return nullptr;
  return devices_[slot];
}

void PciBus::bus_read(uint64_t offset, std::span<uint8_t> data) {
  std::lock_guard lock(mutex_);
  if (offset < 4) {
    uint8_t bytes[4];
    std::memcpy(bytes, &address_, 4);
    for (size_t i = 0; i < data.size(); ++i) data[i] = offset + i < 4 ? bytes[offset + i] : 0xff;
    return;
  }
  unsigned reg = 0;
  PciDevice* dev = target(reg);
  uint32_t v = dev ? dev->config_read(reg) : 0xffffffffu;
  uint8_t bytes[4];
  std::memcpy(bytes, &v, 4);
  for (size_t i = 0; i < data.size(); ++i) {
    size_t at = offset - 4 + i;
    data[i] = at < 4 ? bytes[at] : 0xff;
  }
}

void PciBus::bus_write(uint64_t offset, std::span<const uint8_t> data) {
  std::lock_guard lock(mutex_);
  if (offset < 4) {
    if (offset == 0 && data.size() == 4) std::memcpy(&address_, data.data(), 4);
    return;  // byte writes to 0xcf8-0xcfb are not configuration cycles
  }
  unsigned reg = 0;
  PciDevice* dev = target(reg);
  if (!dev) return;
  unsigned at = reg + static_cast<unsigned>(offset - 4);
  size_t n = std::min<size_t>(data.size(), 4 - (offset - 4));
  dev->config_write(at, data.first(n));
}

bool PciBus::mmio_read(uint64_t address, std::span<uint8_t> data) {
  for (size_t slot = 1; slot < devices_.size(); ++slot) {
    int bar;
    uint64_t off;
    if (devices_[slot]->decode(address, bar, off)) {
      devices_[slot]->bar_read(bar, off, data);
      return true;
    }
  }
  return false;
}

bool PciBus::mmio_write(uint64_t address, std::span<const uint8_t> data) {
  for (size_t slot = 1; slot < devices_.size(); ++slot) {
    int bar;
    uint64_t off;
    if (devices_[slot]->decode(address, bar, off)) {
      devices_[slot]->bar_write(bar, off, data);
      return true;
    }
  }
  return false;
}

}  // namespace arche::hv
