// Sizes as people type and read them: "4G", "512M", "1.5 GiB".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace arche {

// Parses "4096", "64K", "512M", "4G", "1T" (also "4GiB", "4g"; binary units, like
// qemu-img). Throws a usage error naming `what` on anything else or on overflow.
uint64_t parse_size(std::string_view text, std::string_view what = "size");

// "0 B", "512 B", "64 KiB", "1.5 GiB".
std::string format_size(uint64_t bytes);

inline constexpr uint64_t KiB = 1024;
inline constexpr uint64_t MiB = 1024 * KiB;
inline constexpr uint64_t GiB = 1024 * MiB;
inline constexpr uint64_t TiB = 1024 * GiB;

inline constexpr uint64_t align_down(uint64_t v, uint64_t a) { return v / a * a; }
inline constexpr uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }
inline constexpr uint64_t div_round_up(uint64_t v, uint64_t d) { return (v + d - 1) / d; }
// [offset, offset+length) lies inside [0, limit), without overflow for any inputs
// (offsets read from damaged files can be anything).
inline constexpr bool range_within(uint64_t offset, uint64_t length, uint64_t limit) {
  return offset <= limit && length <= limit - offset;
}
inline constexpr bool is_power_of_two(uint64_t v) { return v && !(v & (v - 1)); }

}  // namespace arche
