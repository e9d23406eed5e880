// `arche job status`: from the history (history.h), when each source of the job
// was last backed up and last backed up successfully, and whether that is recent
// enough: the check a monitoring system (Nagios, Icinga, Zabbix) or a cron mail runs,
// so a backup that silently stopped happening is noticed the next morning.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "jobs/job_file.h"
#include "jobs/run_record.h"

namespace arche::jobs {

struct SourceStatus {
  std::string name, kind;
  int64_t last_run_ns = 0;      // start of the last run that tried it; 0: never
  std::string last_error;       // of that run; empty: it succeeded
  int64_t last_success_ns = 0;  // 0: never
  std::string last_snapshot;    // of the last success
  bool stale = true;            // no success within max_age
};

struct JobStatus {
  std::string job;
  int64_t max_age_ns = 0;
  std::optional<RunRecord> last_run;
  std::vector<SourceStatus> sources;  // in the job file's order
  size_t damaged_lines = 0;           // of the history
  // The exit code: 0 every source fresh and the last run ok; 1 (warning) fresh, but
  // the last run was not ok; 2 (critical) a source has no success within max_age.
  int exit_code() const;
};

JobStatus job_status(const Job& job, int64_t max_age_ns, int64_t now_ns);

Json status_to_json(const JobStatus& s);

}  // namespace arche::jobs
