#include "hv/vcpu.h"

#include <sys/ioctl.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "core/log.h"
#include "hv/layout.h"

namespace arche::hv {

namespace {

constexpr uint32_t msr_ia32_misc_enable = 0x1a0;
constexpr uint32_t msr_mtrr_def_type = 0x2ff;
constexpr uint64_t cr0_pe = 1, cr0_mp = 2, cr0_et = 0x10, cr0_ne = 0x20, cr0_wp = 0x10000, cr0_pg = 0x80000000;
constexpr uint64_t cr4_pae = 0x20;
constexpr uint64_t efer_lme = 0x100, efer_lma = 0x400;

kvm_segment flat_segment(uint16_t selector, uint8_t type, bool code64) {
  kvm_segment s{};
  s.base = 0;
  s.limit = 0xffffffff;
  s.selector = selector;
  s.type = type;
  s.present = 1;
  s.dpl = 0;
  s.db = code64 ? 0 : 1;
  s.s = 1;
  s.l = code64 ? 1 : 0;
  s.g = 1;
  return s;
}

// A GDT descriptor from a kvm_segment.
uint64_t gdt_entry(const kvm_segment& s) {
  uint64_t limit = s.g ? (s.limit >> 12) : s.limit;
  uint64_t e = (limit & 0xffff) | ((s.base & 0xffffff) << 16) | (uint64_t(s.type & 0xf) << 40) | (uint64_t(s.s) << 44) |
               (uint64_t(s.dpl) << 45) | (uint64_t(s.present) << 47) | (((limit >> 16) & 0xf) << 48) |
               (uint64_t(s.l) << 53) | (uint64_t(s.db) << 54) | (uint64_t(s.g) << 55) | ((s.base >> 24) << 56);
  return e;
}

kvm_segment tss_segment(uint16_t selector) {
  kvm_segment t{};
  t.selector = selector;
  t.limit = 0x67;
  t.type = 0xb;  // 32/64-bit busy TSS
  t.present = 1;
  return t;
}

void write_gdt(const GuestMemory& memory, const std::vector<kvm_segment>& segments, kvm_sregs& sregs) {
  // Entry n at selector n*8; segment selectors pick their slot.
  uint64_t table[8] = {};
  for (const auto& s : segments) table[s.selector >> 3] = gdt_entry(s);
  memory.write(layout::gdt, {reinterpret_cast<const uint8_t*>(table), sizeof table});
  sregs.gdt.base = layout::gdt;
  sregs.gdt.limit = sizeof table - 1;
  sregs.idt.base = 0;
  sregs.idt.limit = 0;
}

}  // namespace

Vcpu::Vcpu(int vm_fd, const Kvm& kvm, unsigned id) : id_(id) {
  fd_.reset(kvm_ioctl(vm_fd, KVM_CREATE_VCPU, static_cast<unsigned long>(id), "KVM_CREATE_VCPU"));
  run_map_ = Mapping::of_file(fd_.get(), static_cast<size_t>(kvm.vcpu_mmap_size()), 0, true);
}

void Vcpu::set_cpuid(const CpuidTable& table) {
  std::vector<uint8_t> buf(kvm_cpuid2_header + table.entries.size() * sizeof(kvm_cpuid_entry2), 0);
  uint32_t nent = static_cast<uint32_t>(table.entries.size());
  std::memcpy(buf.data(), &nent, 4);
  std::memcpy(buf.data() + kvm_cpuid2_header, table.entries.data(), table.entries.size() * sizeof(kvm_cpuid_entry2));
  kvm_ioctl(fd_.get(), kvm_set_cpuid2, buf.data(), "KVM_SET_CPUID2");
}

void Vcpu::setup_lapic() {
  kvm_lapic_state lapic{};
  kvm_ioctl(fd_.get(), KVM_GET_LAPIC, &lapic, "KVM_GET_LAPIC");
  auto set_lvt = [&](unsigned offset, uint32_t delivery_mode) {
    uint32_t v;
    std::memcpy(&v, lapic.regs + offset, 4);
    v = (v & ~0x700u) | (delivery_mode << 8);
    std::memcpy(lapic.regs + offset, &v, 4);
  };
  set_lvt(0x350, 7);  // LINT0: ExtINT
  set_lvt(0x360, 4);  // LINT1: NMI
  kvm_ioctl(fd_.get(), KVM_SET_LAPIC, &lapic, "KVM_SET_LAPIC");
}

void Vcpu::setup_msrs() {
  std::vector<uint8_t> buf = kvm_msrs_buffer({
      {msr_ia32_misc_enable, 0, 1},                // fast string operations
      {msr_mtrr_def_type, 0, (1 << 11) | 6},       // MTRRs enabled, default type write-back
  });
  int set = ::ioctl(fd_.get(), kvm_set_msrs, buf.data());
  if (set != 2) debug("vcpu {}: KVM_SET_MSRS set {} of 2 boot MSRs", id_, set);
}

void Vcpu::setup_pvh(const GuestMemory& memory, uint64_t entry, uint64_t start_info) {
  kvm_sregs sregs{};
  kvm_ioctl(fd_.get(), KVM_GET_SREGS, &sregs, "KVM_GET_SREGS");
  kvm_segment code = flat_segment(0x08, 0xb, false);
  kvm_segment data = flat_segment(0x10, 0x3, false);
  kvm_segment tss = tss_segment(0x18);
  write_gdt(memory, {code, data, tss}, sregs);
  sregs.cs = code;
  sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
  sregs.tr = tss;
  sregs.cr0 = cr0_pe | cr0_et;
  sregs.cr4 = 0;
  sregs.efer = 0;
  kvm_ioctl(fd_.get(), KVM_SET_SREGS, &sregs, "KVM_SET_SREGS");

  kvm_regs regs{};
  regs.rflags = 2;
  regs.rip = entry;
  regs.rbx = start_info;
  kvm_ioctl(fd_.get(), KVM_SET_REGS, &regs, "KVM_SET_REGS");

  kvm_fpu fpu{};
  fpu.fcw = 0x37f;
  fpu.mxcsr = 0x1f80;
  kvm_ioctl(fd_.get(), KVM_SET_FPU, &fpu, "KVM_SET_FPU");
}

void Vcpu::setup_linux64(const GuestMemory& memory, uint64_t entry, uint64_t boot_params) {
  // Identity map of the first 4 GiB with 2 MiB pages: the kernel, boot_params, the
  // command line and the initrd must be mapped (boot protocol, 64-bit entry).
  std::vector<uint64_t> pml4(512, 0), pdpt(512, 0), pd(4 * 512, 0);
  pml4[0] = layout::pdpt | 0x3;
  for (uint64_t i = 0; i < 4; ++i) pdpt[i] = (layout::pd + i * 0x1000) | 0x3;
  for (uint64_t i = 0; i < pd.size(); ++i) pd[i] = (i << 21) | 0x83;
  auto bytes = [](const std::vector<uint64_t>& v) {
    return std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(v.data()), v.size() * 8);
  };
  memory.write(layout::pml4, bytes(pml4));
  memory.write(layout::pdpt, bytes(pdpt));
  memory.write(layout::pd, bytes(pd));

  kvm_sregs sregs{};
  kvm_ioctl(fd_.get(), KVM_GET_SREGS, &sregs, "KVM_GET_SREGS");
  // __BOOT_CS = 0x10, __BOOT_DS = 0x18 (Documentation/x86/boot.rst).
  kvm_segment code = flat_segment(0x10, 0xb, true);
  kvm_segment data = flat_segment(0x18, 0x3, false);
  kvm_segment tss = tss_segment(0x20);
  write_gdt(memory, {code, data, tss}, sregs);
  sregs.cs = code;
  sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
  sregs.tr = tss;
  sregs.cr3 = layout::pml4;
  sregs.cr4 = cr4_pae;
  sregs.cr0 = cr0_pe | cr0_mp | cr0_et | cr0_ne | cr0_wp | cr0_pg;
  sregs.efer = efer_lme | efer_lma;
  kvm_ioctl(fd_.get(), KVM_SET_SREGS, &sregs, "KVM_SET_SREGS");

  kvm_regs regs{};
  regs.rflags = 2;
  regs.rip = entry;
  regs.rsi = boot_params;
  kvm_ioctl(fd_.get(), KVM_SET_REGS, &regs, "KVM_SET_REGS");

  kvm_fpu fpu{};
  fpu.fcw = 0x37f;
  fpu.mxcsr = 0x1f80;
  kvm_ioctl(fd_.get(), KVM_SET_FPU, &fpu, "KVM_SET_FPU");
}

VcpuState Vcpu::save_state(const std::vector<uint32_t>& msr_indices) const {
  VcpuState s;
  s.id = id_;
  int fd = fd_.get();
  kvm_ioctl(fd, KVM_GET_MP_STATE, &s.mp_state, "KVM_GET_MP_STATE");
  kvm_ioctl(fd, KVM_GET_REGS, &s.regs, "KVM_GET_REGS");
  kvm_ioctl(fd, KVM_GET_SREGS, &s.sregs, "KVM_GET_SREGS");
  kvm_ioctl(fd, KVM_GET_FPU, &s.fpu, "KVM_GET_FPU");
  kvm_ioctl(fd, KVM_GET_LAPIC, &s.lapic, "KVM_GET_LAPIC");
  s.has_xcrs = ::ioctl(fd, KVM_GET_XCRS, &s.xcrs) == 0;
  kvm_ioctl(fd, KVM_GET_VCPU_EVENTS, &s.events, "KVM_GET_VCPU_EVENTS");
  kvm_ioctl(fd, KVM_GET_DEBUGREGS, &s.debugregs, "KVM_GET_DEBUGREGS");
  // MSRs one at a time is slow; in batches, KVM stops at the first it cannot read,
  // so read in batches and skip the failing index.
  size_t pos = 0;
  while (pos < msr_indices.size()) {
    std::vector<kvm_msr_entry> want;
    for (size_t i = pos; i < msr_indices.size(); ++i) want.push_back(kvm_msr_entry{msr_indices[i], 0, 0});
    std::vector<uint8_t> buf = kvm_msrs_buffer(want);
    int got = ::ioctl(fd, kvm_get_msrs, buf.data());
    if (got < 0) fail(ErrorCategory::kvm, "kvm: KVM_GET_MSRS failed: {}", std::strerror(errno));
    for (const auto& e : kvm_msrs_entries(buf, static_cast<size_t>(got))) s.msrs.push_back(e);
    pos += static_cast<size_t>(got) + 1;  // skip the one that failed
  }
  return s;
}

void Vcpu::restore_state(const VcpuState& s) {
  int fd = fd_.get();
  kvm_ioctl(fd, KVM_SET_SREGS, const_cast<kvm_sregs*>(&s.sregs), "KVM_SET_SREGS");
  kvm_ioctl(fd, KVM_SET_REGS, const_cast<kvm_regs*>(&s.regs), "KVM_SET_REGS");
  kvm_ioctl(fd, KVM_SET_FPU, const_cast<kvm_fpu*>(&s.fpu), "KVM_SET_FPU");
  if (s.has_xcrs) kvm_ioctl(fd, KVM_SET_XCRS, const_cast<kvm_xcrs*>(&s.xcrs), "KVM_SET_XCRS");
  std::vector<uint8_t> buf = kvm_msrs_buffer(s.msrs);
  int set = kvm_ioctl(fd, kvm_set_msrs, buf.data(), "KVM_SET_MSRS");
  if (static_cast<size_t>(set) != s.msrs.size())
    fail(ErrorCategory::kvm, "kvm: vcpu {}: restored {} of {} MSRs", id_, set, s.msrs.size());
  kvm_ioctl(fd, KVM_SET_MP_STATE, const_cast<kvm_mp_state*>(&s.mp_state), "KVM_SET_MP_STATE");
  kvm_ioctl(fd, KVM_SET_LAPIC, const_cast<kvm_lapic_state*>(&s.lapic), "KVM_SET_LAPIC");
  kvm_ioctl(fd, KVM_SET_VCPU_EVENTS, const_cast<kvm_vcpu_events*>(&s.events), "KVM_SET_VCPU_EVENTS");
  kvm_ioctl(fd, KVM_SET_DEBUGREGS, const_cast<kvm_debugregs*>(&s.debugregs), "KVM_SET_DEBUGREGS");
}

std::string Vcpu::describe() const {
  kvm_regs r{};
  kvm_sregs s{};
  if (::ioctl(fd_.get(), KVM_GET_REGS, &r) < 0 || ::ioctl(fd_.get(), KVM_GET_SREGS, &s) < 0)
    return "(registers unavailable)";
  return fmt::format("RIP {:#x} RSP {:#x} RFLAGS {:#x} CS {:#x} CR0 {:#x} CR3 {:#x} CR4 {:#x} EFER {:#x}", r.rip,
                     r.rsp, r.rflags, s.cs.selector, s.cr0, s.cr3, s.cr4, s.efer);
}

std::vector<uint8_t> Vcpu::instruction_bytes(const GuestMemory& memory) const {
  kvm_regs r{};
  kvm_sregs s{};
  if (::ioctl(fd_.get(), KVM_GET_REGS, &r) < 0 || ::ioctl(fd_.get(), KVM_GET_SREGS, &s) < 0) return {};
  std::vector<uint8_t> out;
  uint64_t linear = s.cs.base + r.rip;
  for (int i = 0; i < 15; ++i) {
    kvm_translation t{};
    t.linear_address = linear + i;
    if (::ioctl(fd_.get(), KVM_TRANSLATE, &t) < 0 || !t.valid) break;
    const uint8_t* p = memory.ptr(t.physical_address, 1);
    if (!p) break;
    out.push_back(*p);
  }
  return out;
}

}  // namespace arche::hv
