#include "image/foreign/ids.h"

#include <sys/random.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "core/hex.h"

namespace arche::image::foreign {

Id128 random_uuid() {
  Id128 id{};
  size_t done = 0;
  while (done < id.size()) {
    ssize_t n = ::getrandom(id.data() + done, id.size() - done, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno(errno, "getrandom");
    }
    done += static_cast<size_t>(n);
  }
  id[6] = static_cast<uint8_t>((id[6] & 0x0f) | 0x40);  // version 4
  id[8] = static_cast<uint8_t>((id[8] & 0x3f) | 0x80);  // RFC 4122 variant
  return id;
}

Id128 random_guid() { return swap_guid_order(random_uuid()); }

bool is_null(const Id128& id) {
  for (uint8_t b : id)
    if (b) return false;
  return true;
}

std::string uuid_string(const Id128& id) {
  std::string hex = to_hex(id);
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" + hex.substr(16, 4) + "-" +
         hex.substr(20);
}

Id128 swap_guid_order(const Id128& id) {
  Id128 out = id;
  std::swap(out[0], out[3]);
  std::swap(out[1], out[2]);
  std::swap(out[4], out[5]);
  std::swap(out[6], out[7]);
  return out;
}

std::string guid_string(const Id128& guid) { return uuid_string(swap_guid_order(guid)); }

bool parse_guid(std::string_view text, Id128& out) {
  if (text.size() == 38 && text.front() == '{' && text.back() == '}') text = text.substr(1, 36);
  if (text.size() != 36) return false;
  std::string digits;
  for (size_t i = 0; i < text.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (text[i] != '-') return false;
    } else {
      digits += text[i];
    }
  }
  Id128 rfc{};
  if (!from_hex(digits, rfc)) return false;
  out = swap_guid_order(rfc);
  return true;
}

std::u16string utf8_to_utf16(std::string_view text) {
  std::u16string out;
  size_t i = 0;
  while (i < text.size()) {
    uint32_t cp = 0xFFFD;
    unsigned char c = static_cast<unsigned char>(text[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > text.size()) {
      ++i;
    } else {
      cp = len == 1 ? c : len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
      bool ok = true;
      for (size_t k = 1; k < len; ++k) {
        unsigned char cc = static_cast<unsigned char>(text[i + k]);
        if ((cc >> 6) != 2) ok = false;
        cp = (cp << 6) | (cc & 0x3f);
      }
      if (!ok || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
      i += ok ? len : 1;
    }
    if (cp >= 0x10000) {
      cp -= 0x10000;
      out += static_cast<char16_t>(0xD800 + (cp >> 10));
      out += static_cast<char16_t>(0xDC00 + (cp & 0x3ff));
    } else {
      out += static_cast<char16_t>(cp);
    }
  }
  return out;
}

std::string utf16_to_utf8(std::u16string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    uint32_t cp = text[i];
    if (cp >= 0xD800 && cp <= 0xDBFF && i + 1 < text.size() && text[i + 1] >= 0xDC00 && text[i + 1] <= 0xDFFF) {
      cp = 0x10000 + ((cp - 0xD800) << 10) + (text[i + 1] - 0xDC00);
      ++i;
    } else if (cp >= 0xD800 && cp <= 0xDFFF) {
      cp = 0xFFFD;
    }
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }
  return out;
}

std::u16string utf16_from_bytes(std::span<const uint8_t> bytes, bool big_endian) {
  std::u16string out;
  for (size_t i = 0; i + 1 < bytes.size(); i += 2) {
    char16_t u = big_endian ? static_cast<char16_t>(bytes[i] << 8 | bytes[i + 1])
                            : static_cast<char16_t>(bytes[i + 1] << 8 | bytes[i]);
    if (u == 0) break;
    out += u;
  }
  return out;
}

void utf16_to_bytes(std::u16string_view text, bool big_endian, std::string& out) {
  for (char16_t u : text) {
    char hi = static_cast<char>(u >> 8), lo = static_cast<char>(u & 0xff);
    out += big_endian ? hi : lo;
    out += big_endian ? lo : hi;
  }
}

}  // namespace arche::image::foreign
