#include "hv/cpuid.h"

#include "core/error.h"

namespace arche::hv {

namespace {

constexpr uint32_t bit(unsigned n) { return 1u << n; }

// Leaf 1 EDX: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36
// clflush mmx fxsr sse sse2 (htt is set per VM below).
constexpr uint32_t leaf1_edx = bit(0) | bit(1) | bit(2) | bit(3) | bit(4) | bit(5) | bit(6) | bit(7) | bit(8) |
                               bit(9) | bit(11) | bit(12) | bit(13) | bit(14) | bit(15) | bit(16) | bit(17) |
                               bit(19) | bit(23) | bit(24) | bit(25) | bit(26);
// Leaf 1 ECX: sse3 pclmulqdq ssse3 cx16 sse4.1 sse4.2 x2apic popcnt tsc-deadline aes hypervisor.
constexpr uint32_t leaf1_ecx = bit(0) | bit(1) | bit(9) | bit(13) | bit(19) | bit(20) | bit(21) | bit(23) |
                               bit(24) | bit(25) | bit(31);
// 0x80000001 ECX: lahf/sahf, prefetchw. EDX: syscall, nx, rdtscp, lm (plus the AMD
// copies of leaf 1 EDX bits, which are masked by leaf1_edx).
constexpr uint32_t ext1_ecx = bit(0) | bit(8);
constexpr uint32_t ext1_edx = bit(11) | bit(20) | bit(27) | bit(29) | (leaf1_edx & ~bit(11));
// KVM paravirtual features: clocksource, nop io delay, clocksource2, stable-bit.
constexpr uint32_t kvm_features = bit(0) | bit(1) | bit(3) | bit(24);

bool keep_leaf_in_baseline(uint32_t function) {
  if (function <= 0xc) return function != 0xd;  // 0xd (XSAVE) is dropped with XSAVE
  if (function >= 0x40000000 && function <= 0x400000ff) return true;
  if (function >= 0x80000000 && function <= 0x80000008) return true;
  return false;
}

}  // namespace

CpuModel parse_cpu_model(const std::string& name) {
  if (name == "baseline" || name.empty()) return CpuModel::baseline;
  if (name == "host") return CpuModel::host;
  fail(ErrorCategory::usage, "vm: unknown CPU model '{}' (baseline or host)", name);
}

const char* to_string(CpuModel model) { return model == CpuModel::host ? "host" : "baseline"; }

CpuidTable filter_cpuid(const CpuidTable& supported, CpuModel model) {
  if (model == CpuModel::host) return supported;
  CpuidTable t;
  for (kvm_cpuid_entry2 e : supported.entries) {
    if (!keep_leaf_in_baseline(e.function)) continue;
    switch (e.function) {
      case 0: e.eax = std::min<uint32_t>(e.eax, 0xc); break;
      case 1:
        e.ecx &= leaf1_ecx;
        e.edx &= leaf1_edx;
        break;
      case 7: e.eax = 0, e.ebx = 0, e.ecx = 0, e.edx = 0; break;  // no AVX2/BMI/...: the v2 line
      case 0x40000001: e.eax &= kvm_features, e.edx = 0; break;
      case 0x80000000: e.eax = std::min<uint32_t>(e.eax, 0x80000008); break;
      case 0x80000001:
        e.ecx &= ext1_ecx;
        e.edx &= ext1_edx;
        break;
      default: break;
    }
    t.entries.push_back(e);
  }
  return t;
}

CpuidTable cpuid_for_vcpu(const CpuidTable& vm_table, unsigned apic_id, unsigned vcpu_count) {
  CpuidTable t = vm_table;
  for (auto& e : t.entries) {
    switch (e.function) {
      case 1:
        e.ebx = (e.ebx & 0x0000ffff) | (apic_id << 24) | (std::min(vcpu_count, 255u) << 16);
        if (vcpu_count > 1) e.edx |= bit(28);  // htt: more than one logical processor
        break;
      case 0xb:
      case 0x1f: e.edx = apic_id; break;
      case 0x8000001e: e.eax = apic_id; break;
      default: break;
    }
  }
  return t;
}

}  // namespace arche::hv
