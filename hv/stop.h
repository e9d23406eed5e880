// Why a VM stopped, and the exit status `arche vm run` reports for it.
#pragma once

#include <functional>
#include <string>

namespace arche::hv {

enum class StopKind {
  exit_port,  // the guest wrote its status to the exit port (0x501)
  poweroff,   // ACPI S5 (PM1 control) or KVM_SYSTEM_EVENT_SHUTDOWN: status 0
  reset,      // i8042 pulse or ACPI reset: the VM stops (status 0), like Firecracker
  quit,       // the control socket's "quit" or a signal: status 0
  error,      // KVM gave up or a device failed fatally: the message says why
};

const char* to_string(StopKind kind);

struct StopReason {
  StopKind kind = StopKind::quit;
  int status = 0;
  std::string message;
};

using StopHandler = std::function<void(const StopReason&)>;

}  // namespace arche::hv
