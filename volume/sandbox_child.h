// The child side of the sandbox (sandbox.h): confinement and the request loop.
// Internal to volume/; sandbox.cpp forks and calls run_child.
#pragma once

#include "volume/sandbox.h"

namespace arche::volume::sandbox {

// Confines this (freshly forked) process and serves requests on `fd` until the
// parent closes it. Never returns.
[[noreturn]] void run_child(int fd, const SandboxOptions& options);

// Exit codes of the child, so the parent can say what went wrong.
constexpr int kExitConfinementFailed = 90;  // could not drop privileges or load the filter
constexpr int kExitProtocol = 91;            // the parent sent something malformed

}  // namespace arche::volume::sandbox
