// Thin RAII layer over /dev/kvm: the system handle, one VM handle, and an ioctl
// helper that turns failures into arche::Error (category kvm) naming the request.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/file.h"

namespace arche::hv {

// <linux/kvm.h> builds these request numbers from sizeof() of structs that end in
// a zero-length array, which g++ sizes differently from the C compiler the kernel
// was built with (12 instead of 8 for kvm_cpuid2): KVM then answers EINVAL. These
// are the C values.
inline constexpr unsigned long kvm_get_supported_cpuid = _IOWR(KVMIO, 0x05, uint64_t);
inline constexpr unsigned long kvm_set_cpuid2 = _IOW(KVMIO, 0x90, uint64_t);
inline constexpr unsigned long kvm_get_msr_index_list = _IOWR(KVMIO, 0x02, uint32_t);
inline constexpr unsigned long kvm_get_msrs = _IOWR(KVMIO, 0x88, uint64_t);
inline constexpr unsigned long kvm_set_msrs = _IOW(KVMIO, 0x89, uint64_t);

// The same headers declare those trailing arrays with __DECLARE_FLEX_ARRAY, which
// in C++ puts an empty struct (1 byte, padded) before the array and moves it: the
// `entries` member does not sit where the kernel reads it. arche therefore builds
// these buffers by hand: an 8-byte header (count + padding) for kvm_cpuid2 and
// kvm_msrs, a 4-byte one for kvm_msr_list, then the array.
inline constexpr size_t kvm_cpuid2_header = 8;
inline constexpr size_t kvm_msrs_header = 8;
inline constexpr size_t kvm_msr_list_header = 4;
std::vector<uint8_t> kvm_msrs_buffer(const std::vector<kvm_msr_entry>& entries);
std::vector<kvm_msr_entry> kvm_msrs_entries(const std::vector<uint8_t>& buffer, size_t count);

// ioctl that retries on EINTR only when `retry_eintr` and throws on failure.
int kvm_ioctl(int fd, unsigned long request, unsigned long arg, const char* what);
template <typename T>
int kvm_ioctl(int fd, unsigned long request, T* arg, const char* what) {
  return kvm_ioctl(fd, request, reinterpret_cast<unsigned long>(arg), what);
}

// kvm_cpuid2 with its flexible array, owned.
struct CpuidTable {
  std::vector<kvm_cpuid_entry2> entries;
  kvm_cpuid_entry2* find(uint32_t function, uint32_t index = 0);
  const kvm_cpuid_entry2* find(uint32_t function, uint32_t index = 0) const;
};

class Kvm {
 public:
  // Opens /dev/kvm (or $ARCHE_KVM_DEVICE) and checks the API version and the
  // capabilities arche relies on. Throws a kvm error naming what is missing.
  static Kvm open();

  int fd() const { return fd_.get(); }
  int vcpu_mmap_size() const { return vcpu_mmap_size_; }
  bool has(long capability) const;
  int check_extension(long capability) const;
  CpuidTable supported_cpuid() const;
  std::vector<uint32_t> msr_index_list() const;

 private:
  UniqueFd fd_;
  int vcpu_mmap_size_ = 0;
};

// True when /dev/kvm can be opened (used by tests to decide whether to skip).
bool kvm_available(std::string* why = nullptr);

}  // namespace arche::hv
