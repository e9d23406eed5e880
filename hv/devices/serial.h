// An 8250/16550A UART on COM1 (0x3f8, IRQ 4), the guest's console. Output goes to a
// ConsoleSink (stdout, a file, a unix socket); input arrives from the sink's reader
// thread through receive(). Transmission is instant, so THR is always empty.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <vector>

#include "hv/bus.h"

namespace arche::hv {

// What a snapshot saves of the UART (registers and unread input).
struct SerialState {
  static constexpr uint32_t version = 1;
  uint8_t dll = 0x0c, dlm = 0, ier = 0, lcr = 0, mcr = 0x08, msr = 0xb0, scr = 0, fcr = 0;
  bool thr_interrupt_pending = false;  // THRE is a source until IIR is read or THR written
  std::vector<uint8_t> rx;             // received, not yet read by the guest
};

class ConsoleOutput {
 public:
  virtual ~ConsoleOutput() = default;
  virtual void write(const uint8_t* data, size_t size) = 0;
};

class Serial : public BusDevice {
 public:
  Serial(InterruptSink& irq, unsigned gsi, ConsoleOutput& out);

  void bus_read(uint64_t offset, std::span<uint8_t> data) override;
  void bus_write(uint64_t offset, std::span<const uint8_t> data) override;

  // Queues input for the guest; blocks while the buffer is full (so a pasted file
  // is not dropped). Returns false when `stop` becomes true while waiting.
  bool receive(const uint8_t* data, size_t size, const std::atomic<bool>& stop);
  void wake_receivers();

  SerialState state() const;
  void restore(const SerialState& state);

 private:
  uint8_t read_register(unsigned reg);
  void write_register(unsigned reg, uint8_t value);
  uint8_t iir() const;
  void update_irq();

  static constexpr size_t rx_capacity = 4096;
  InterruptSink& irq_;
  unsigned gsi_;
  ConsoleOutput& out_;
  mutable std::mutex mutex_;
  std::condition_variable rx_space_;
  SerialState s_;
  std::deque<uint8_t> rx_;
  bool line_ = false;
};

}  // namespace arche::hv
