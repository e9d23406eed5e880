#include "jobs/job_passphrase.h"

#include <cstdlib>

#include "backup/passphrase.h"
#include "core/error.h"

namespace arche::jobs {

backup::SecretBytes read_job_passphrase(const JobPassphrase& source) {
  backup::PassphraseSource s;
  s.file_env.clear();
  s.command_env.clear();
  s.env.clear();
  if (!source.file.empty()) {
    s.file = source.file;
  } else if (!source.credential.empty()) {
    const char* dir = std::getenv("CREDENTIALS_DIRECTORY");
    if (!dir || !*dir)
      fail(ErrorCategory::usage,
           "passphrase-credential '{}': $CREDENTIALS_DIRECTORY is not set (run the job from its systemd unit, or "
           "give passphrase-file)",
           source.credential);
    s.file = std::string(dir) + "/" + source.credential;
  } else {
    s.env = source.env;
    if (!backup::passphrase_given(s))
      fail(ErrorCategory::usage, "passphrase-env: the environment variable {} is not set", source.env);
  }
  return backup::read_passphrase(s);
}

}  // namespace arche::jobs
