// One run of a job at a time: an exclusive flock(2) on JOB.toml.lock, held for the
// whole run. The kernel drops it when the process ends, however it ends, so a run
// killed by SIGKILL or a reboot never leaves a stale lock behind.
#pragma once

#include <string>

#include "core/file.h"

namespace arche::jobs {

class JobLock {
 public:
  // Throws a busy error naming the lock file when another run holds it.
  explicit JobLock(const std::string& path);

 private:
  File file_;
};

}  // namespace arche::jobs
