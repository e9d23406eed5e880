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

std::vector<uint8_t> kvm_msrs_buffer(const std::vector<kvm_msr_entry>& entries) {
  std::vector<uint8_t> buf(kvm_msrs_header + entries.size() * sizeof(kvm_msr_entry), 0);
  uint32_t n = static_cast<uint32_t>(entries.size());
  std::memcpy(buf.data(), &n, 4);
  if (!entries.empty()) std::memcpy(buf.data() + kvm_msrs_header, entries.data(), entries.size() * sizeof(kvm_msr_entry));
  return buf;
}

std::vector<kvm_msr_entry> kvm_msrs_entries(const std::vector<uint8_t>& buffer, size_t count) {
  std::vector<kvm_msr_entry> out(count);
  if (count) std::memcpy(out.data(), buffer.data() + kvm_msrs_header, count * sizeof(kvm_msr_entry));
  return out;
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
  for (size_t n = 128; n <= 256; n *= 2) {  // KVM refuses more than 256
    std::vector<uint8_t> buf(kvm_cpuid2_header + n * sizeof(kvm_cpuid_entry2), 0);
    uint32_t nent = static_cast<uint32_t>(n);
    std::memcpy(buf.data(), &nent, 4);
    if (::ioctl(fd_.get(), kvm_get_supported_cpuid, buf.data()) == 0) {
      std::memcpy(&nent, buf.data(), 4);
      CpuidTable t;
      t.entries.resize(std::min<size_t>(nent, n));
      std::memcpy(t.entries.data(), buf.data() + kvm_cpuid2_header, t.entries.size() * sizeof(kvm_cpuid_entry2));
      return t;
    }
    if (errno != E2BIG) fail(ErrorCategory::kvm, "kvm: KVM_GET_SUPPORTED_CPUID failed: {}", std::strerror(errno));
  }
  fail(ErrorCategory::kvm, "kvm: KVM_GET_SUPPORTED_CPUID: table too large");
}

std::vector<uint32_t> Kvm::msr_index_list() const {
  uint32_t count = 0;
  ::ioctl(fd_.get(), kvm_get_msr_index_list, &count);  // E2BIG, tells the count
  if (count > 4096) fail(ErrorCategory::kvm, "kvm: {} MSRs in KVM_GET_MSR_INDEX_LIST", count);
  std::vector<uint8_t> buf(kvm_msr_list_header + count * sizeof(uint32_t), 0);
  std::memcpy(buf.data(), &count, 4);
  kvm_ioctl(fd_.get(), kvm_get_msr_index_list, buf.data(), "KVM_GET_MSR_INDEX_LIST");
  std::vector<uint32_t> out(count);
  std::memcpy(out.data(), buf.data() + kvm_msr_list_header, count * sizeof(uint32_t));
  return out;
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
