// Where a repository passphrase comes from: never the command line (it would show
// in `ps` and shell history) and never a log. In order of precedence:
//   --passphrase-file FILE      the file's content (one trailing newline dropped);
//                               a file every user may read is used with a warning
//   --passphrase-command CMD    the standard output of `sh -c CMD`
//   ARCHE_PASSPHRASE_FILE, ARCHE_PASSPHRASE_COMMAND   the same, from the environment
//   ARCHE_PASSPHRASE            the passphrase itself
//   a terminal prompt           when stdin is a terminal
// New passphrases (init, key add, change-passphrase) have their own options and
// ARCHE_NEW_PASSPHRASE; the destination of a copy its own (--dst-passphrase-*,
// ARCHE_DST_PASSPHRASE...). The passphrase variables are taken out of the environment
// when a backup command starts (capture_passphrase_environment): their bytes are
// wiped where the kernel shows them (/proc/PID/environ) and programs arche starts
// do not inherit them. The passphrase is held in SecretBytes: locked memory, no core
// dumps, zeroed after use.
#pragma once

#include <string>

#include "backup/crypto.h"

namespace arche::backup {

struct PassphraseSource {
  std::string file;
  std::string command;
  // The options and variables this source stands for, as messages name them.
  std::string file_option = "--passphrase-file";
  std::string command_option = "--passphrase-command";
  std::string env = "ARCHE_PASSPHRASE";
  std::string file_env = "ARCHE_PASSPHRASE_FILE";        // empty: not consulted
  std::string command_env = "ARCHE_PASSPHRASE_COMMAND";  // empty: not consulted
  // Text of the terminal prompt ("passphrase for /srv/repo: ").
  std::string prompt = "passphrase: ";
};

// The source of a new passphrase: --new-passphrase-file/-command, ARCHE_NEW_PASSPHRASE.
PassphraseSource new_passphrase_source(std::string file, std::string command, std::string prompt);

// The source of the passphrase of a copy's destination: --dst-passphrase-file/-command,
// ARCHE_DST_PASSPHRASE_FILE/_COMMAND, ARCHE_DST_PASSPHRASE.
PassphraseSource destination_passphrase_source(std::string file, std::string command, std::string prompt);

// Moves ARCHE_PASSPHRASE, ARCHE_NEW_PASSPHRASE and ARCHE_DST_PASSPHRASE from the environment into locked
// memory and wipes the environment's copies. Idempotent; read_passphrase finds them.
void capture_passphrase_environment();

// Reads the passphrase; throws a usage error when none of the sources gives one.
SecretBytes read_passphrase(const PassphraseSource& source);

// True when a file, a command or the variable of `source` is given.
bool passphrase_given(const PassphraseSource& source);

// For a new passphrase (init, key add, change-passphrase): on a terminal it is asked
// twice and must match; otherwise as read_passphrase. Refuses an empty passphrase.
SecretBytes read_new_passphrase(const PassphraseSource& source);

}  // namespace arche::backup
