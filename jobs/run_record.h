// What one `arche job run` did: the record the history keeps (history.h), the
// summary the on-failure hook reads and the JSON `job run --json` prints.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/json.h"

namespace arche::jobs {

// The result of a run and its exit code, meant for monitoring (Nagios' convention):
enum class RunResult {
  ok = 0,       // everything was backed up, pruned, copied and verified
  warning = 1,  // partly failed: some sources were backed up, others not; or prune or the after hook failed
  failure = 2,  // nothing was backed up, or the repository, an offsite copy or the verification failed
};
const char* result_name(RunResult r);
RunResult parse_result(const std::string& name, const std::string& what);

struct SourceResult {
  std::string name;
  std::string kind;      // "vm" or "files"
  std::string snapshot;  // the snapshot's name; empty when it failed
  std::string snapshot_id;
  uint64_t bytes_read = 0, bytes_added = 0;
  std::string error;  // empty: backed up
  bool ok() const { return error.empty(); }
};

// One step after the backups: prune, one offsite copy, the verification.
struct StepResult {
  std::string what;   // "prune", the offsite URL, "verify 3/30"
  std::string error;  // empty: done
  uint64_t count = 0, bytes = 0;  // prune: snapshots removed, bytes freed; copy: snapshots, bytes sent
  bool ok() const { return error.empty(); }
};

struct RunRecord {
  std::string job;
  int64_t start_ns = 0, end_ns = 0;
  RunResult result = RunResult::ok;
  std::string error;  // what stopped the whole run (repository, passphrase, before hook)
  std::vector<SourceResult> sources;
  std::optional<StepResult> prune;
  std::vector<StepResult> offsite;
  std::optional<StepResult> verify;
  std::vector<std::string> hook_errors;
};

// kebab-case keys, RFC 3339 times, null for absent (docs/jobs.md "History").
Json record_to_json(const RunRecord& r);
// Throws a format error naming `what` for a record that lacks a field.
RunRecord record_from_json(const Json& j, const std::string& what);

// A few lines for people: the terminal and the on-failure hook's stdin.
std::string format_summary(const RunRecord& r);

}  // namespace arche::jobs
