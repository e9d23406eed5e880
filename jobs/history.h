// The history of a job: one record per run (run_record.h), in JOB.toml.history
// beside the job file, read by `job status` and `job report`. Its format
// (docs/jobs.md "History"), readable with a shell and a JSON tool:
//
//   arche-job-history 1\n                  magic and version, the first line
//   <crc32c> <record as one line of JSON>\n  one line per run, oldest first
//
// <crc32c> is the CRC32C of the JSON's bytes as 8 lower-case hex digits. A record is
// appended whole by one write and fsynced (under the job's lock, so one writer at a
// time). A crash mid-write leaves a last line without its newline or with a wrong
// CRC: it is never taken for a record, and the next append starts on a new line.
#pragma once

#include <string>
#include <vector>

#include "jobs/run_record.h"

namespace arche::jobs {

inline constexpr const char* kHistoryMagic = "arche-job-history";
inline constexpr int kHistoryVersion = 1;

struct History {
  std::vector<RunRecord> runs;  // oldest first
  size_t damaged_lines = 0;     // incomplete or failing their CRC: skipped
};

// A missing file is an empty history; a file without the magic line is a format error.
History read_history(const std::string& path);
// Appends one record durably; makes the file (and its first line) when missing.
void append_history(const std::string& path, const RunRecord& record);

}  // namespace arche::jobs
