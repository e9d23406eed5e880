#include "hv/kvm.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace arche::hv {

int kvm_ioctl(int fd, unsigned long request, unsigned long arg, const char* what) {
  int rc;
  do {
    rc = ::ioctl(fd, request, arg);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) fail(ErrorCategory::kvm, "kvm: {} failed: {}", what, std::strerror(errno));
  return rc;
}

kvm_cpuid_entry2* CpuidTable::find(uint32_t function, uint32_t index) {
  for (auto& e : entries)
    if (e.function == function && (!(e.flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e.index == index)) return &e;
  return nullptr;
}

const kvm_cpuid_entry2* CpuidTable::find(uint32_t function, uint32_t index) const {
  return const_cast<CpuidTable*>(this)->find(function, index);
}

namespace {
const char* device_path() {
  const char* p = std::getenv("ARCHE_KVM_DEVICE");
  return p && *p ? p : "/dev/kvm";
}
}  // namespace

Kvm Kvm::open() {
  Kvm k;
  int fd = ::open(device_path(), O_RDWR | O_CLOEXEC);
  if (fd < 0)
    fail(ErrorCategory::kvm, "kvm: cannot open {}: {} (is KVM enabled and are you allowed to use it?)", device_path(),
         std::strerror(errno));
  k.fd_.reset(fd);
  int version = ::ioctl(fd, KVM_GET_API_VERSION, 0);
  if (version != KVM_API_VERSION) fail(ErrorCategory::kvm, "kvm: API version {} (arche needs {})", version, KVM_API_VERSION);
  for (auto [cap, name] : {std::pair{KVM_CAP_IRQCHIP, "in-kernel irqchip"}, {KVM_CAP_PIT2, "in-kernel PIT"},
                           {KVM_CAP_USER_MEMORY, "user memory"}, {KVM_CAP_EXT_CPUID, "KVM_GET_SUPPORTED_CPUID"},
                           {KVM_CAP_IMMEDIATE_EXIT, "immediate exit"}, {KVM_CAP_SET_TSS_ADDR, "TSS address"}})
    if (!k.has(cap)) fail(ErrorCategory::kvm, "kvm: the host's KVM lacks {} (capability {})", name, static_cast<int>(cap));
  k.vcpu_mmap_size_ = kvm_ioctl(fd, KVM_GET_VCPU_MMAP_SIZE, 0UL, "KVM_GET_VCPU_MMAP_SIZE");
  return k;
}

int Kvm::check_extension(long capability) const {
  int rc = ::ioctl(fd_.get(), KVM_CHECK_EXTENSION, capability);
  return rc < 0 ? 0 : rc;
}

bool Kvm::has(long capability) const { return check_extension(capability) > 0; }

CpuidTable Kvm::supported_cpuid() const {
  for (size_t n = 128; n <= 4096; n *= 2) {
    std::vector<uint8_t> buf(sizeof(kvm_cpuid2) + n * sizeof(kvm_cpuid_entry2));
    auto* c = reinterpret_cast<kvm_cpuid2*>(buf.data());
    c->nent = static_cast<uint32_t>(n);
    if (::ioctl(fd_.get(), kvm_get_supported_cpuid, c) == 0) {
      CpuidTable t;
      t.entries.assign(c->entries, c->entries + c->nent);
      return t;
    }
    if (errno != E2BIG) fail(ErrorCategory::kvm, "kvm: KVM_GET_SUPPORTED_CPUID failed: {}", std::strerror(errno));
  }
  fail(ErrorCategory::kvm, "kvm: KVM_GET_SUPPORTED_CPUID: table too large");
}

std::vector<uint32_t> Kvm::msr_index_list() const {
  kvm_msr_list probe{};
  ::ioctl(fd_.get(), kvm_get_msr_index_list, &probe);  // E2BIG, tells the count
  std::vector<uint8_t> buf(sizeof(kvm_msr_list) + probe.nmsrs * sizeof(uint32_t));
  auto* l = reinterpret_cast<kvm_msr_list*>(buf.data());
  l->nmsrs = probe.nmsrs;
  kvm_ioctl(fd_.get(), kvm_get_msr_index_list, l, "KVM_GET_MSR_INDEX_LIST");
  return std::vector<uint32_t>(l->indices, l->indices + l->nmsrs);
}

bool kvm_available(std::string* why) {
  int fd = ::open(device_path(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    if (why) *why = std::string(device_path()) + ": " + std::strerror(errno);
    return false;
  }
  ::close(fd);
  return true;
}

}  // namespace arche::hv
