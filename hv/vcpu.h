// One virtual CPU: its KVM handle, the shared kvm_run page, the register set-up the
// boot protocols ask for, and the complete register state a snapshot saves.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/file.h"
#include "core/mmap.h"
#include "hv/kvm.h"
#include "hv/memory.h"

namespace arche::hv {

// Everything KVM keeps for one vCPU, as plain data. Saved only while the vCPU is
// parked (Machine::pause), after pending I/O was completed.
struct VcpuState {
  static constexpr uint32_t version = 1;
  uint32_t id = 0;
  kvm_regs regs{};
  kvm_sregs sregs{};
  kvm_fpu fpu{};
  kvm_lapic_state lapic{};
  kvm_xcrs xcrs{};
  bool has_xcrs = false;
  kvm_vcpu_events events{};
  kvm_mp_state mp_state{};
  kvm_debugregs debugregs{};
  std::vector<kvm_msr_entry> msrs;  // every MSR in KVM_GET_MSR_INDEX_LIST that reads
};

class Vcpu {
 public:
  Vcpu(int vm_fd, const Kvm& kvm, unsigned id);

  unsigned id() const { return id_; }
  int fd() const { return fd_.get(); }
  kvm_run* run() const { return reinterpret_cast<kvm_run*>(run_map_.data()); }

  void set_cpuid(const CpuidTable& table);
  // LINT0 = ExtINT (the PIC), LINT1 = NMI, as firmware leaves them.
  void setup_lapic();
  // MSRs a freshly reset PC has that KVM leaves at zero (MTRRs on, write-back; fast strings).
  void setup_msrs();
  // PVH: 32-bit protected mode, paging off, flat segments, ebx = hvm_start_info.
  void setup_pvh(const GuestMemory& memory, uint64_t entry, uint64_t start_info);
  // Linux 64-bit boot protocol: long mode, identity-mapped, rsi = boot_params.
  void setup_linux64(const GuestMemory& memory, uint64_t entry, uint64_t boot_params);

  VcpuState save_state(const std::vector<uint32_t>& msr_indices) const;
  void restore_state(const VcpuState& state);

  // "RIP 0x... CS 0x... CR0 ..." for error reports.
  std::string describe() const;
  // Up to 15 bytes at the current RIP (via KVM_TRANSLATE), empty when unmapped.
  std::vector<uint8_t> instruction_bytes(const GuestMemory& memory) const;

 private:
  unsigned id_;
  UniqueFd fd_;
  Mapping run_map_;
};

}  // namespace arche::hv
