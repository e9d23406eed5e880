#include "core/json.h"

#include <unistd.h>

#include <cstdio>

namespace arche {

void print_json(const Json& value) {
  bool pretty = ::isatty(STDOUT_FILENO) == 1;
  std::string text = pretty ? value.dump(2) : value.dump();
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

}  // namespace arche
