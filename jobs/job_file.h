// A job file (JOB.toml, docs/jobs.md): what `arche job run` backs up every night,
// where to, how long it keeps it and what it tells whom. Parsed with toml++ as
// VM.toml is (hv/config.cpp); an unknown key is an error naming the key and line,
// so a misspelt `keep-dayly` never silently keeps nothing.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backup/retention.h"

namespace arche::jobs {

// One thing backed up into its own snapshot per run.
struct JobSource {
  enum class Kind { vm, files };
  Kind kind = Kind::files;
  // A VM's name (also the snapshot's host, so prune keeps its snapshots per VM), or
  // the name of a set of paths. Unique in the job; it starts the snapshot names.
  std::string name;
  std::vector<std::string> disks;  // vm: the disk images of the stopped VM, absolute
  std::vector<std::string> paths;  // files: files and directories, absolute
};

// Where the passphrase of the repository comes from (exactly one is set); the
// passphrase itself never stands in the job file.
struct JobPassphrase {
  std::string file;        // a file holding it
  std::string env;         // the name of an environment variable holding it
  std::string credential;  // a systemd credential: $CREDENTIALS_DIRECTORY/<name>
};

// A replica of the repository (made with `backup init URL --same-key-as REPO`),
// opened with the job's passphrase, that every run copies the snapshots to.
struct OffsiteTarget {
  std::string repository;  // a URL, as for the repository
  uint64_t bwlimit = 0;    // bytes per second; 0: unlimited
};

struct JobHooks {
  std::string before, after, on_failure;  // `sh -c` commands; empty: none
};

struct Job {
  std::string path;  // of the job file, absolute
  std::string name;  // `name`, or the file name without .toml
  std::string repository;  // a URL `arche backup` takes (local path, sftp://, s3://)
  JobPassphrase passphrase;
  backup::KeepPolicy retention;   // empty: no prune
  std::vector<OffsiteTarget> offsite;
  std::string schedule = "daily";    // systemd OnCalendar
  std::string randomized_delay = "15min";  // systemd RandomizedDelaySec of the timer
  uint32_t verify_parts = 30;       // each run reads 1/N of the packs; 0: no verification
  JobHooks hooks;
  std::vector<JobSource> sources;

  std::string lock_path() const { return path + ".lock"; }
  std::string history_path() const { return path + ".history"; }
  // The tag every snapshot of this job carries ("job:NAME"): prune touches only those.
  std::string tag() const { return "job:" + name; }
};

// Throws a usage error "FILE: ... (line N)" for anything wrong in the file.
Job load_job_file(const std::string& path);

}  // namespace arche::jobs
