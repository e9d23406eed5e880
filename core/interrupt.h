// SIGINT, SIGTERM and SIGHUP during long work (convert, commit, backup, restore):
// the handler only records the signal; the work notices it at its next safe point
// (check()), throws an `interrupted` error, and unwinds normally, so every RAII
// owner runs — PendingFile removes its temporary file, repository and image locks
// are released — before the CLI prints one line and exits 128 + the signal number
// (130 for SIGINT, 143 for SIGTERM), as shells expect.
//
// A second signal of the same kind while the first is being handled ends the
// process at once (the default action): an admin who presses Ctrl-C twice means it.
#pragma once

namespace arche::interrupt {

// Installs the handlers (idempotent). The CLI calls it once at start.
void install_handlers();
// The signal that asked us to stop, or 0.
int pending_signal();
// Throws Error(interrupted, "interrupted by SIGINT") once a signal has arrived.
void check();
// The exit code for an interrupted run: 128 + the signal, 130 when none is known.
int exit_code();
// For tests: forget a recorded signal.
void reset();

}  // namespace arche::interrupt
