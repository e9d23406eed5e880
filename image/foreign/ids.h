// Small helpers the foreign image formats (VHD, VHDX, VDI) share: random 128-bit
// identifiers and their text forms, and UTF-16 text as those formats store names
// and paths. Kept apart from each driver so all of them agree on byte order.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>

namespace arche::image::foreign {

using Id128 = std::array<uint8_t, 16>;

// 16 random bytes shaped as an RFC 4122 version 4 UUID (in RFC byte order).
Id128 random_uuid();
// The same, in Microsoft GUID byte order (VHDX), so its text form is a v4 UUID too.
Id128 random_guid();
bool is_null(const Id128& id);

// "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" from bytes in RFC (big-endian) order,
// as VHD footers and VDI headers store them.
std::string uuid_string(const Id128& id);
// The same text for a Microsoft GUID stored as VHDX does: the first three fields
// little endian, the last eight bytes as they are.
std::string guid_string(const Id128& guid);
// Parses "{xxxxxxxx-...}" or "xxxxxxxx-..." into GUID (VHDX) byte order; false on
// anything else.
bool parse_guid(std::string_view text, Id128& out);
// Converts between the two byte orders (the operation is its own inverse).
Id128 swap_guid_order(const Id128& id);

// UTF-8 <-> UTF-16 code units. Invalid input becomes U+FFFD; never throws.
std::u16string utf8_to_utf16(std::string_view text);
std::string utf16_to_utf8(std::u16string_view text);
// UTF-16 code units from bytes (little or big endian), stopping at the first NUL.
std::u16string utf16_from_bytes(std::span<const uint8_t> bytes, bool big_endian);
// Appends the code units as bytes (no terminator).
void utf16_to_bytes(std::u16string_view text, bool big_endian, std::string& out);

}  // namespace arche::image::foreign
