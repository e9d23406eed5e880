// The repository passphrase of a job, from where the job file says (job_file.h):
// a file, an environment variable (taken out of the environment at once, as
// backup/passphrase.h does for ARCHE_PASSPHRASE) or a systemd credential, which
// `arche schedule install` hands over with LoadCredential= (docs/jobs.md).
#pragma once

#include "backup/crypto.h"
#include "jobs/job_file.h"

namespace arche::jobs {

// Throws a usage error when the source gives nothing (an unset variable, no
// $CREDENTIALS_DIRECTORY) and the errors of backup::read_passphrase.
backup::SecretBytes read_job_passphrase(const JobPassphrase& source);

}  // namespace arche::jobs
