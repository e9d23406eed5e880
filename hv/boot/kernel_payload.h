// The compressed vmlinux inside a bzImage (setup header payload_offset/length),
// decompressed on the host. Booting that ELF directly through the 64-bit boot
// protocol skips the kernel's own decompressor, which moves and inflates tens of
// megabytes inside the guest: seconds saved on any host, and the difference
// between booting and not booting on hosts whose nested KVM executes guest code
// slowly. Formats: gzip, zstd, xz, lz4 (legacy frame) — what Debian ships.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace arche::hv {

struct KernelPayload {
  std::string compression;     // "gzip", "zstd", "xz", "lz4"
  std::vector<uint8_t> vmlinux;
};

// nullopt when the payload's format is not one arche can decompress (the caller
// then lets the guest decompress). Throws format errors for damaged payloads.
std::optional<KernelPayload> decompress_kernel_payload(std::span<const uint8_t> bzimage);

}  // namespace arche::hv
