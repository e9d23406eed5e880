// The wall clock as the integers arche stores (metadata events, timestamps).
#pragma once

#include <chrono>
#include <cstdint>

namespace arche {

// Nanoseconds since the Unix epoch, from the system (wall) clock.
inline int64_t unix_time_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace arche
