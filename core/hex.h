// Hexadecimal text of binary data, through libsodium (constant-time, so it also
// serves for keys and digests). The one place arche turns bytes into hex and back.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace arche {

// Lower-case hex, two digits per byte.
std::string to_hex(std::span<const uint8_t> bytes);
// The bytes of an even-length hex string (either case); nullopt for anything else.
std::optional<std::vector<uint8_t>> from_hex(std::string_view text);
// Into a buffer of exactly text.size() / 2 bytes; false when `text` is not that.
bool from_hex(std::string_view text, std::span<uint8_t> out);

}  // namespace arche
