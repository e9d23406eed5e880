// Where a repository passphrase comes from: never the command line (it would show
// in `ps` and shell history) and never a log. In order of precedence:
//   --passphrase-file FILE      the file's content (one trailing newline dropped)
//   --passphrase-command CMD    the standard output of `sh -c CMD`
//   ARCHE_PASSPHRASE            the environment (wiped from the process after reading)
//   a terminal prompt           when stdin is a terminal
// The passphrase is held in SecretBytes: locked memory, no core dumps, zeroed after use.
#pragma once

#include <string>

#include "backup/crypto.h"

namespace arche::backup {

struct PassphraseSource {
  std::string file;
  std::string command;
  std::string env = "ARCHE_PASSPHRASE";
  // Text of the terminal prompt ("passphrase for /srv/repo: ").
  std::string prompt = "passphrase: ";
};

// Reads the passphrase; throws a usage error when none of the sources gives one.
SecretBytes read_passphrase(const PassphraseSource& source);

// For a new passphrase (init, key add, change-passphrase): on a terminal it is asked
// twice and must match; otherwise as read_passphrase. Refuses an empty passphrase.
SecretBytes read_new_passphrase(const PassphraseSource& source);

}  // namespace arche::backup
