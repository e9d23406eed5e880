#include "hv/devices/serial.h"

namespace arche::hv {

namespace {
constexpr uint8_t ier_rx = 0x01, ier_thre = 0x02;
constexpr uint8_t iir_none = 0x01, iir_thre = 0x02, iir_rx = 0x04;
constexpr uint8_t lcr_dlab = 0x80;
constexpr uint8_t mcr_loop = 0x10;
constexpr uint8_t lsr_dr = 0x01, lsr_thre = 0x20, lsr_temt = 0x40;
}  // namespace

Serial::Serial(InterruptSink& irq, unsigned gsi, ConsoleOutput& out) : irq_(irq), gsi_(gsi), out_(out) {}

void Serial::bus_read(uint64_t offset, std::span<uint8_t> data) {
  std::lock_guard lock(mutex_);
  for (size_t i = 0; i < data.size(); ++i) data[i] = read_register(static_cast<unsigned>(offset + i) & 7);
  update_irq();
}

void Serial::bus_write(uint64_t offset, std::span<const uint8_t> data) {
  std::lock_guard lock(mutex_);
  for (size_t i = 0; i < data.size(); ++i) write_register(static_cast<unsigned>(offset + i) & 7, data[i]);
  update_irq();
}

uint8_t Serial::iir() const {
  uint8_t fifo = (s_.fcr & 1) ? 0xc0 : 0;
  if ((s_.ier & ier_rx) && !rx_.empty()) return fifo | iir_rx;
  if ((s_.ier & ier_thre) && s_.thr_interrupt_pending) return fifo | iir_thre;
  return fifo | iir_none;
}

uint8_t Serial::read_register(unsigned reg) {
  switch (reg) {
    case 0: {
      if (s_.lcr & lcr_dlab) return s_.dll;
      if (rx_.empty()) return 0;
      uint8_t c = rx_.front();
      rx_.pop_front();
      rx_space_.notify_one();
      return c;
    }
    case 1: return (s_.lcr & lcr_dlab) ? s_.dlm : s_.ier;
    case 2: {
      uint8_t v = iir();
      if ((v & 0x0f) == iir_thre) s_.thr_interrupt_pending = false;
      return v;
    }
    case 3: return s_.lcr;
    case 4: return s_.mcr;
    case 5: return static_cast<uint8_t>((rx_.empty() ? 0 : lsr_dr) | lsr_thre | lsr_temt);
    case 6:
      if (s_.mcr & mcr_loop) {
        // Loopback: the modem control outputs come back as the status inputs.
        uint8_t m = s_.mcr;
        return static_cast<uint8_t>(((m & 0x02) << 3) | ((m & 0x01) << 5) | ((m & 0x04) << 4) | ((m & 0x08) << 4));
      }
      return s_.msr;
    default: return s_.scr;
  }
}

void Serial::write_register(unsigned reg, uint8_t value) {
  switch (reg) {
    case 0:
      if (s_.lcr & lcr_dlab) {
        s_.dll = value;
      } else if (s_.mcr & mcr_loop) {
        if (rx_.size() < rx_capacity) rx_.push_back(value);
        s_.thr_interrupt_pending = true;
      } else {
        out_.write(&value, 1);
        s_.thr_interrupt_pending = true;
      }
      break;
    case 1:
      if (s_.lcr & lcr_dlab) {
        s_.dlm = value;
      } else {
        // Enabling the THRE interrupt with an empty THR raises it at once.
        if (!(s_.ier & ier_thre) && (value & ier_thre)) s_.thr_interrupt_pending = true;
        s_.ier = value & 0x0f;
      }
      break;
    case 2:
      s_.fcr = value & 0xc9;
      if (value & 0x02) rx_.clear();  // clear receive FIFO
      break;
    case 3: s_.lcr = value; break;
    case 4: s_.mcr = value & 0x1f; break;
    case 5: break;  // LSR is read-only
    case 6: break;
    default: s_.scr = value; break;
  }
}

void Serial::update_irq() {
  bool level = (iir() & 0x0f) != iir_none;
  if (level != line_) {
    line_ = level;
    irq_.set_irq_line(gsi_, level);
  }
}

bool Serial::receive(const uint8_t* data, size_t size, const std::atomic<bool>& stop) {
  std::unique_lock lock(mutex_);
  for (size_t i = 0; i < size; ++i) {
    rx_space_.wait(lock, [&] { return stop || rx_.size() < rx_capacity; });
    if (stop) return false;
    rx_.push_back(data[i]);
    update_irq();
  }
  return true;
}

void Serial::wake_receivers() {
  std::lock_guard lock(mutex_);
  rx_space_.notify_all();
}

SerialState Serial::state() const {
  std::lock_guard lock(mutex_);
  SerialState s = s_;
  s.rx.assign(rx_.begin(), rx_.end());
  return s;
}

void Serial::restore(const SerialState& state) {
  std::lock_guard lock(mutex_);
  s_ = state;
  rx_.assign(state.rx.begin(), state.rx.end());
  s_.rx.clear();
  update_irq();
}

}  // namespace arche::hv
