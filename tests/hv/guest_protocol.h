// The host side of the test guest's protocol (tests/guest/README.md): the same
// sector pattern and checksum, so tests can check on the host what the guest wrote.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace arche::test {

inline void guest_fill_sector(uint8_t* out, uint64_t sector, uint64_t seed) {
  uint64_t x = seed * 0x9e3779b97f4a7c15ull ^ (sector + 1) * 0xbf58476d1ce4e5b9ull;
  if (!x) x = 1;
  for (int i = 0; i < 64; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::memcpy(out + 8 * i, &x, 8);
  }
}

inline std::vector<uint8_t> guest_pattern(uint64_t sector, uint64_t count, uint64_t seed) {
  std::vector<uint8_t> data(count * 512);
  for (uint64_t i = 0; i < count; ++i) guest_fill_sector(data.data() + 512 * i, sector + i, seed);
  return data;
}

// FNV-1a over 64-bit little-endian words, printed as 16 hex digits.
inline std::string guest_checksum(const std::vector<uint8_t>& data) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i + 8 <= data.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, data.data() + i, 8);
    h = (h ^ w) * 0x100000001b3ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace arche::test
