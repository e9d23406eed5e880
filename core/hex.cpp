#include "core/hex.h"

#include <sodium.h>

namespace arche {

std::string to_hex(std::span<const uint8_t> bytes) {
  if (bytes.empty()) return {};                 // an empty span's data() may be null, which libsodium must not see
  std::string out(2 * bytes.size() + 1, '\0');  // sodium_bin2hex writes a terminating NUL
  sodium_bin2hex(out.data(), out.size(), bytes.data(), bytes.size());
  out.pop_back();
  return out;
}

bool from_hex(std::string_view text, std::span<uint8_t> out) {
  if (text.size() != 2 * out.size()) return false;
  if (out.empty()) return true;  // as in to_hex: no null pointer for libsodium
  size_t written = 0;
  const char* end = nullptr;
  if (sodium_hex2bin(out.data(), out.size(), text.data(), text.size(), nullptr, &written, &end) != 0) return false;
  return written == out.size() && end == text.data() + text.size();
}

std::optional<std::vector<uint8_t>> from_hex(std::string_view text) {
  if (text.size() % 2) return std::nullopt;
  std::vector<uint8_t> out(text.size() / 2);
  if (!from_hex(text, out)) return std::nullopt;
  return out;
}

}  // namespace arche
