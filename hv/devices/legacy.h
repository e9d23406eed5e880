// The small PC devices a guest expects at fixed ports: the i8042 (only what a
// reset needs), the CMOS RTC, ACPI PM1 registers (power-off via S5) and the exit
// port through which the test guest reports a status code.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>

#include "hv/bus.h"
#include "hv/stop.h"

namespace arche::hv {

class I8042 : public BusDevice {
 public:
  explicit I8042(StopHandler stop) : stop_(std::move(stop)) {}
  // Registered at 0x60 with length 5: offset 0 = data, offset 4 = command/status.
  void bus_read(uint64_t offset, std::span<uint8_t> data) override;
  void bus_write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  StopHandler stop_;
  std::mutex mutex_;
  uint8_t pending_command_ = 0;
  uint8_t command_byte_ = 0x45;
  int output_ = -1;  // byte waiting in the output buffer, or -1
};

struct CmosState {
  static constexpr uint32_t version = 1;
  uint8_t index = 0;
  bool nmi_disabled = false;
  std::array<uint8_t, 128> ram{};
};

class CmosRtc : public BusDevice {
 public:
  explicit CmosRtc(uint64_t memory_bytes);
  void bus_read(uint64_t offset, std::span<uint8_t> data) override;
  void bus_write(uint64_t offset, std::span<const uint8_t> data) override;
  CmosState state() const;
  void restore(const CmosState& s);

 private:
  uint8_t read_index(uint8_t index) const;
  mutable std::mutex mutex_;
  CmosState s_;
};

class ExitPort : public BusDevice {
 public:
  explicit ExitPort(StopHandler stop) : stop_(std::move(stop)) {}
  void bus_read(uint64_t, std::span<uint8_t> data) override;
  void bus_write(uint64_t, std::span<const uint8_t> data) override;

 private:
  StopHandler stop_;
};

struct AcpiPmState {
  static constexpr uint32_t version = 1;
  uint16_t pm1_status = 0, pm1_enable = 0, pm1_control = 1;  // SCI_EN: always in ACPI mode
};

// PM1a event block (4 bytes) followed by the PM1a control block (2 bytes).
class AcpiPm : public BusDevice {
 public:
  explicit AcpiPm(StopHandler stop) : stop_(std::move(stop)) {}
  void bus_read(uint64_t offset, std::span<uint8_t> data) override;
  void bus_write(uint64_t offset, std::span<const uint8_t> data) override;
  AcpiPmState state() const;
  void restore(const AcpiPmState& s);

 private:
  StopHandler stop_;
  mutable std::mutex mutex_;
  std::array<uint8_t, 6> regs_{0, 0, 0, 0, 1, 0};
};

}  // namespace arche::hv
