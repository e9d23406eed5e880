// CRC32C (Castagnoli), as used by VHDX, ext4 metadata and arche's own formats.
// Uses the SSE4.2 crc32 instruction when the CPU has it, a table otherwise.
#pragma once

#include <cstddef>
#include <cstdint>

namespace arche {

// Continues a running CRC: crc32c(crc32c(0, a), b) == crc32c(0, a + b).
uint32_t crc32c(uint32_t crc, const void* data, size_t length);
inline uint32_t crc32c(const void* data, size_t length) { return crc32c(0, data, length); }

}  // namespace arche
