// JSON output of listings and reports (--json). Keys keep insertion order, so
// output is stable and readable.
//
// The conventions every command follows (docs/cli.md, "JSON output"):
//   - keys are kebab-case ("virtual-size");
//   - every documented key is always present; a value that does not exist is
//     null, never "" or a missing key (or_null below);
//   - times are RFC 3339 strings with the UTC offset of the machine's time zone
//     ("2026-12-01T21:30:05+01:00", rfc3339 below); sizes are numbers of bytes;
//   - lists that may be empty are [] (not null).
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace arche {

using Json = nlohmann::ordered_json;

// Prints `value` on stdout, pretty when stdout is a terminal, one line otherwise.
void print_json(const Json& value);

// "2026-12-01T21:30:05+01:00": seconds since the epoch in local time, with the offset.
std::string rfc3339(int64_t unix_seconds);
std::string rfc3339(std::chrono::system_clock::time_point time);

// null when absent.
template <typename T>
Json or_null(const std::optional<T>& value) {
  return value ? Json(*value) : Json(nullptr);
}
// null when empty: for strings where "" means "none".
Json or_null(const std::string& value);

}  // namespace arche
