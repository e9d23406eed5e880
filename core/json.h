// JSON output of listings and reports (--json). Keys keep insertion order, so
// output is stable and readable.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace arche {

using Json = nlohmann::ordered_json;

// Prints `value` on stdout, pretty when stdout is a terminal, one line otherwise.
void print_json(const Json& value);

}  // namespace arche
