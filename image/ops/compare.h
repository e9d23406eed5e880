// Compare the content two images present to a guest (like `qemu-img compare`).
#pragma once

#include <optional>
#include <string>

namespace arche::image {

struct CompareOptions {
  std::string format_a;  // empty: probe
  std::string format_b;
  bool strict = false;   // different sizes are a difference even if the rest is zeros
  bool force_share = false;
};

struct CompareResult {
  bool equal = true;
  std::optional<uint64_t> first_difference;  // byte offset
  std::string reason;                        // human-readable when not equal
};

CompareResult compare(const std::string& a, const std::string& b, const CompareOptions& options);

}  // namespace arche::image
