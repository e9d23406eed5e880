// `arche schedule`: the systemd units that run a job (docs/jobs.md "Scheduling"):
//
//   arche-job-NAME.service   Type=oneshot, ExecStart=ARCHE job run JOB.toml; with
//                            passphrase-credential, LoadCredential=NAME:DIR/NAME so
//                            the passphrase reaches the job as a credential file
//                            ($CREDENTIALS_DIRECTORY), never through the environment
//   arche-job-NAME.timer     OnCalendar= the job's schedule, Persistent=true (a night
//                            missed while the machine was off runs at the next boot),
//                            RandomizedDelaySec= the job's randomized-delay
//
// Both begin with a comment naming the job file, which is how `schedule list` and
// `schedule remove` know the units they made.
#pragma once

#include <string>
#include <vector>

#include "jobs/job_file.h"

namespace arche::jobs {

inline constexpr const char* kDefaultUnitDir = "/etc/systemd/system";
inline constexpr const char* kDefaultCredentialDir = "/etc/arche/credentials";

struct UnitFiles {
  std::string service_name, service;  // file name and content
  std::string timer_name, timer;
};

struct ScheduleOptions {
  std::string unit_dir = kDefaultUnitDir;
  std::string credential_dir = kDefaultCredentialDir;  // where LoadCredential= finds NAME
  std::string arche_binary;                             // absolute; ExecStart runs it
  bool systemctl = true;  // daemon-reload and enable/disable --now the timer
};

// Throws a usage error for a job a timer cannot run: a passphrase from the
// environment, a name that is no unit name.
UnitFiles make_units(const Job& job, const ScheduleOptions& options);

// Writes both units (atomically) and, with options.systemctl, reloads systemd and
// enables and starts the timer. Returns the units written.
UnitFiles install_units(const Job& job, const ScheduleOptions& options);

// Stops and disables the timer (with options.systemctl) and deletes both units;
// a not_found error when they are not installed in options.unit_dir.
UnitFiles remove_units(const Job& job, const ScheduleOptions& options);

struct InstalledJob {
  std::string timer_name, job_file, schedule;
};
// The timers of unit_dir that `schedule install` made, sorted by name.
std::vector<InstalledJob> list_units(const std::string& unit_dir);

}  // namespace arche::jobs
