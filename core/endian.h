// Loads and stores of fixed-width integers in a given byte order, from unaligned
// memory. Foreign formats (qcow2: big endian; VHDX, VDI: little endian) and arche's
// own formats (little endian) are parsed with these, never with struct casts.
#pragma once

#include <cstdint>
#include <cstring>

namespace arche {

inline uint16_t load_le16(const void* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline uint32_t load_le32(const void* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline uint64_t load_le64(const void* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
inline uint16_t load_be16(const void* p) { return __builtin_bswap16(load_le16(p)); }
inline uint32_t load_be32(const void* p) { return __builtin_bswap32(load_le32(p)); }
inline uint64_t load_be64(const void* p) { return __builtin_bswap64(load_le64(p)); }

inline void store_le16(void* p, uint16_t v) { std::memcpy(p, &v, 2); }
inline void store_le32(void* p, uint32_t v) { std::memcpy(p, &v, 4); }
inline void store_le64(void* p, uint64_t v) { std::memcpy(p, &v, 8); }
inline void store_be16(void* p, uint16_t v) { store_le16(p, __builtin_bswap16(v)); }
inline void store_be32(void* p, uint32_t v) { store_le32(p, __builtin_bswap32(v)); }
inline void store_be64(void* p, uint64_t v) { store_le64(p, __builtin_bswap64(v)); }

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "arche assumes a little-endian host (x86-64)");

}  // namespace arche
