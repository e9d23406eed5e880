#include "hv/devices/legacy.h"

#include <ctime>

#include "core/log.h"
#include "core/units.h"

namespace arche::hv {

// ---- i8042 ----------------------------------------------------------------------

void I8042::bus_read(uint64_t offset, std::span<uint8_t> data) {
  std::lock_guard lock(mutex_);
  for (auto& b : data) {
    if (offset == 4) {
      // Status: system flag, keyboard not inhibited, output buffer full if a byte waits.
      b = static_cast<uint8_t>(0x14 | (output_ >= 0 ? 1 : 0));
    } else {
      b = output_ >= 0 ? static_cast<uint8_t>(output_) : 0;
      output_ = -1;
    }
  }
}

void I8042::bus_write(uint64_t offset, std::span<const uint8_t> data) {
  bool reset = false;
  {
    std::lock_guard lock(mutex_);
    for (uint8_t v : data) {
      if (offset == 4) {
        switch (v) {
          case 0x20: output_ = command_byte_; break;  // read command byte
          case 0x60: case 0xd1: pending_command_ = v; break;
          case 0xaa: output_ = 0x55; break;  // self test passed
          case 0xfe: reset = true; break;    // pulse the reset line
          default: break;
        }
      } else if (pending_command_ == 0x60) {
        command_byte_ = v;
        pending_command_ = 0;
      } else if (pending_command_ == 0xd1) {
        pending_command_ = 0;
        if (!(v & 1)) reset = true;  // output port bit 0 low: CPU reset
      }
    }
  }
  if (reset) stop_({StopKind::reset, 0, "the guest reset the machine (i8042)"});
}

// ---- CMOS RTC -------------------------------------------------------------------

namespace {
uint8_t bcd(int v) { return static_cast<uint8_t>(((v / 10) << 4) | (v % 10)); }
}  // namespace

CmosRtc::CmosRtc(uint64_t memory_bytes) {
  s_.ram[0x0a] = 0x26;  // 32.768 kHz divider, 1024 Hz rate, update not in progress
  s_.ram[0x0b] = 0x02;  // 24-hour mode, BCD
  s_.ram[0x0d] = 0x80;  // battery good
  // Memory sizes as a PC BIOS records them (SeaBIOS-style firmware reads these).
  s_.ram[0x15] = 0x80, s_.ram[0x16] = 0x02;  // 640 KiB base memory
  uint64_t low = std::min<uint64_t>(memory_bytes, 0xc0000000);
  uint64_t ext_kib = std::min<uint64_t>(low > MiB ? (low - MiB) / KiB : 0, 0xffff);
  s_.ram[0x17] = s_.ram[0x30] = static_cast<uint8_t>(ext_kib);
  s_.ram[0x18] = s_.ram[0x31] = static_cast<uint8_t>(ext_kib >> 8);
  uint64_t above16 = low > 16 * MiB ? std::min<uint64_t>((low - 16 * MiB) / (64 * KiB), 0xffff) : 0;
  s_.ram[0x34] = static_cast<uint8_t>(above16), s_.ram[0x35] = static_cast<uint8_t>(above16 >> 8);
  uint64_t high = memory_bytes > low ? (memory_bytes - low) / (64 * KiB) : 0;
  s_.ram[0x5b] = static_cast<uint8_t>(high), s_.ram[0x5c] = static_cast<uint8_t>(high >> 8),
  s_.ram[0x5d] = static_cast<uint8_t>(high >> 16);
}

uint8_t CmosRtc::read_index(uint8_t index) const {
  std::time_t now = std::time(nullptr);
  std::tm t{};
  gmtime_r(&now, &t);
  switch (index) {
    case 0x00: return bcd(t.tm_sec);
    case 0x02: return bcd(t.tm_min);
    case 0x04: return bcd(t.tm_hour);
    case 0x06: return bcd(t.tm_wday + 1);
    case 0x07: return bcd(t.tm_mday);
    case 0x08: return bcd(t.tm_mon + 1);
    case 0x09: return bcd(t.tm_year % 100);
    case 0x32: return bcd(19 + t.tm_year / 100);
    case 0x0c: return 0;  // no interrupt flags
    default: return s_.ram[index & 0x7f];
  }
}

void CmosRtc::bus_read(uint64_t offset, std::span<uint8_t> data) {
  std::lock_guard lock(mutex_);
  for (auto& b : data) b = offset == 1 ? read_index(s_.index) : 0xff;
}

void CmosRtc::bus_write(uint64_t offset, std::span<const uint8_t> data) {
  std::lock_guard lock(mutex_);
  for (uint8_t v : data) {
    if (offset == 0) {
      s_.index = v & 0x7f;
      s_.nmi_disabled = v & 0x80;
    } else if (s_.index != 0x0c && s_.index != 0x0d) {
      s_.ram[s_.index] = v;  // time registers written by the guest are kept but not ticked
    }
  }
}

CmosState CmosRtc::state() const {
  std::lock_guard lock(mutex_);
  return s_;
}

void CmosRtc::restore(const CmosState& s) {
  std::lock_guard lock(mutex_);
  s_ = s;
}

// ---- exit port ------------------------------------------------------------------

void ExitPort::bus_read(uint64_t, std::span<uint8_t> data) {
  for (auto& b : data) b = 0;
}

void ExitPort::bus_write(uint64_t, std::span<const uint8_t> data) {
  if (data.empty()) return;
  stop_({StopKind::exit_port, data[0], ""});
}

// ---- ACPI PM1 -------------------------------------------------------------------

void AcpiPm::bus_read(uint64_t offset, std::span<uint8_t> data) {
  std::lock_guard lock(mutex_);
  for (size_t i = 0; i < data.size(); ++i) data[i] = offset + i < regs_.size() ? regs_[offset + i] : 0;
}

void AcpiPm::bus_write(uint64_t offset, std::span<const uint8_t> data) {
  bool poweroff = false;
  {
    std::lock_guard lock(mutex_);
    for (size_t i = 0; i < data.size(); ++i) {
      uint64_t at = offset + i;
      if (at < 2) regs_[at] &= static_cast<uint8_t>(~data[i]);  // PM1 status: write 1 to clear
      else if (at < 4) regs_[at] = data[i];
      else if (at < 6) regs_[at] = data[i];
    }
    uint16_t control = static_cast<uint16_t>(regs_[4] | (regs_[5] << 8));
    if (offset + data.size() > 4 && (control & (1 << 13))) {  // SLP_EN
      unsigned type = (control >> 10) & 7;
      regs_[5] &= static_cast<uint8_t>(~(1 << 5));  // SLP_EN reads as zero
      if (type == 5) poweroff = true;  // \_S5 says SLP_TYP 5
    }
    regs_[4] |= 1;  // SCI_EN stays set: the machine is always in ACPI mode
  }
  if (poweroff) stop_({StopKind::poweroff, 0, "the guest powered off (ACPI S5)"});
}

AcpiPmState AcpiPm::state() const {
  std::lock_guard lock(mutex_);
  return {static_cast<uint16_t>(regs_[0] | regs_[1] << 8), static_cast<uint16_t>(regs_[2] | regs_[3] << 8),
          static_cast<uint16_t>(regs_[4] | regs_[5] << 8)};
}

void AcpiPm::restore(const AcpiPmState& s) {
  std::lock_guard lock(mutex_);
  regs_ = {static_cast<uint8_t>(s.pm1_status), static_cast<uint8_t>(s.pm1_status >> 8),
           static_cast<uint8_t>(s.pm1_enable), static_cast<uint8_t>(s.pm1_enable >> 8),
           static_cast<uint8_t>(s.pm1_control), static_cast<uint8_t>(s.pm1_control >> 8)};
}

}  // namespace arche::hv
