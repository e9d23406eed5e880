// The CPU the guest sees. KVM_GET_SUPPORTED_CPUID says what this host can offer;
// a CpuModel filters it. "baseline" is a fixed, named feature set (x86-64-v2 class,
// no XSAVE/AVX) that most hosts of the last decade provide, so a guest saved on one
// host can be restored on another: snapshots carry the model's name. "host" passes
// everything KVM supports (fastest, not portable).
#pragma once

#include <string>

#include "hv/kvm.h"

namespace arche::hv {

enum class CpuModel { baseline, host };

CpuModel parse_cpu_model(const std::string& name);  // throws usage error
const char* to_string(CpuModel model);
// The version of the baseline definition; bumped when its feature set changes, so a
// snapshot taken with an older baseline is recognised.
inline constexpr int baseline_model_version = 1;

// The table for the whole VM (before per-vCPU fixups).
CpuidTable filter_cpuid(const CpuidTable& supported, CpuModel model);
// Per-vCPU: APIC ids in leaves 1, 0xb, 0x1f and 0x8000001e; logical CPU count.
CpuidTable cpuid_for_vcpu(const CpuidTable& vm_table, unsigned apic_id, unsigned vcpu_count);

}  // namespace arche::hv
