// The one exception type of arche. Every failure carries a category (what kind of
// failure it is, which the CLI turns into an exit code) and a message with context
// ("qcow2: L2 table at 0x30000 outside file"), so one line on stderr explains it.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace arche {

enum class ErrorCategory {
  usage,        // bad arguments or options
  format,       // input is not what it claims to be / not parseable
  not_found,    // file, snapshot, image ... does not exist
  unsupported,  // valid input using a feature arche does not implement
  internal,     // a bug in arche
  exists,       // refusing to overwrite something
  io,           // the operating system reported an I/O error
  busy,         // locked or in use by someone else
  permission,   // not allowed
  corrupt,      // metadata is inconsistent: data may be damaged
  crypto,       // authentication failed, wrong passphrase
  kvm,          // the hypervisor failed
  no_space,     // the disk (or tape) is full
  interrupted,  // stopped by a signal
};

// Exit codes are fixed and documented (docs/cli.md): scripts depend on them.
// They start at 64 so they never collide with the result codes of commands such as
// `image compare` (1 = different) or `image check` (2 = corrupt, 3 = leaks).
int exit_code(ErrorCategory category);
const char* category_name(ErrorCategory category);

class Error : public std::runtime_error {
 public:
  Error(ErrorCategory category, const std::string& message)
      : std::runtime_error(message), category_(category) {}
  ErrorCategory category() const { return category_; }

 private:
  ErrorCategory category_;
};

template <typename... Args>
[[noreturn]] void fail(ErrorCategory category, fmt::format_string<Args...> format, Args&&... args) {
  throw Error(category, fmt::format(format, std::forward<Args>(args)...));
}

// Maps an errno value to a category (ENOENT -> not_found, ENOSPC -> no_space, ...)
// and throws with "context: strerror".
[[noreturn]] void throw_errno(int err, const std::string& context);

ErrorCategory category_for_errno(int err);

}  // namespace arche
