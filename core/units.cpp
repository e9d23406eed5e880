#include "core/units.h"

#include <cctype>
#include <charconv>
#include <cmath>

#include "core/error.h"

namespace arche {

uint64_t parse_size(std::string_view text, std::string_view what) {
  auto bad = [&]() -> uint64_t {
    fail(ErrorCategory::usage, "invalid {} '{}' (expected a number with an optional K, M, G, T, P or E suffix)",
         what, text);
  };
  if (text.empty()) bad();
  // Split number and suffix; a fraction is allowed with a suffix ("1.5G").
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  std::string_view number = text.substr(0, i);
  std::string suffix;
  for (char c : text.substr(i)) suffix += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (number.empty()) bad();
  if (suffix.size() > 1 && (suffix.ends_with("IB") || suffix.ends_with("B"))) {
    suffix = suffix.substr(0, suffix.ends_with("IB") ? suffix.size() - 2 : suffix.size() - 1);
  }
  unsigned shift = 0;
  if (suffix.empty() || suffix == "B") shift = 0;
  else if (suffix == "K") shift = 10;
  else if (suffix == "M") shift = 20;
  else if (suffix == "G") shift = 30;
  else if (suffix == "T") shift = 40;
  else if (suffix == "P") shift = 50;
  else if (suffix == "E") shift = 60;
  else bad();

  if (number.find('.') == std::string_view::npos) {
    uint64_t value = 0;
    auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
    if (ec != std::errc() || end != number.data() + number.size()) bad();
    if (shift && value > (UINT64_MAX >> shift)) fail(ErrorCategory::usage, "{} '{}' is too large", what, text);
    return value << shift;
  }
  if (shift == 0) bad();  // "1.5" bytes makes no sense
  double value = std::strtod(std::string(number).c_str(), nullptr);
  double bytes = std::ldexp(value, static_cast<int>(shift));
  if (!(bytes >= 0) || bytes >= 18446744073709551615.0) fail(ErrorCategory::usage, "{} '{}' is too large", what, text);
  return static_cast<uint64_t>(bytes);
}

std::string format_size(uint64_t bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return fmt::format("{} B", bytes);
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 6) {
    v /= 1024;
    ++u;
  }
  if (v == std::floor(v)) return fmt::format("{:.0f} {}", v, units[u]);
  return fmt::format("{:.{}f} {}", v, v < 10 ? 2 : 1, units[u]);
}

}  // namespace arche
