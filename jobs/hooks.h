// The job's hooks (docs/jobs.md "Hooks"): `sh -c COMMAND`, with ARCHE_JOB and
// ARCHE_JOB_RESULT in its environment and `input` on its standard input (the
// on-failure hook reads the run's summary there, for `mail` and the like). Its
// output goes where arche's goes.
#pragma once

#include <string>

namespace arche::jobs {

// "" when the command exited 0, else why not ("exited with status 3", "killed by signal 9").
std::string run_hook(const std::string& command, const std::string& input, const std::string& job,
                     const std::string& result);

}  // namespace arche::jobs
