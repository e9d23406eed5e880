// Where S3 keys come from: the conventional places every S3 tool reads, never the
// command line or the URL (which may name the access key id, a public identifier, but
// never the secret). In order:
//   1. AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN), when the URL
//      names no access key or names this one;
//   2. the shared credentials file (AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials):
//      with an access key in the URL, the profile that holds that key; otherwise the
//      profile AWS_PROFILE (else "default").
// Secrets are held in locked memory (SecretBytes) from the moment they are read.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "backup/crypto.h"

namespace arche::backup::s3 {

struct Credentials {
  std::string access_key_id;
  SecretBytes secret_access_key;
  SecretBytes session_token;  // empty when there is none
  std::string source;         // "environment" or "FILE [profile]", for messages
};

// getenv by default; tests pass their own.
using EnvLookup = std::function<const char*(const char*)>;
EnvLookup process_environment();

// Throws a usage error saying where it looked when no credentials are found.
Credentials load_credentials(std::string_view url_access_key, const EnvLookup& env = process_environment());

// One `key = value` line of an INI file, with the [section] it is in. Views point into
// the parsed text. Comments (# and ;) and blank lines are skipped; a line that is
// neither is a format error naming `what` and the line number.
struct IniEntry {
  std::string_view section;
  std::string_view key;
  std::string_view value;
};
std::vector<IniEntry> parse_ini(std::string_view text, const std::string& what);

}  // namespace arche::backup::s3
