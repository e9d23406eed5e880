#include "jobs/run.h"

#include <chrono>
#include <ctime>

#include "backup/check.h"
#include "backup/copy.h"
#include "backup/create.h"
#include "backup/prune.h"
#include "backup/repository.h"
#include "core/error.h"
#include "core/log.h"
#include "jobs/history.h"
#include "jobs/hooks.h"
#include "jobs/job_lock.h"
#include "jobs/job_passphrase.h"

namespace arche::jobs {

namespace {

constexpr int64_t kNsPerDay = 86400ll * 1000000000;

int64_t clock_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// "web-2026-12-02T01:30:00.250Z": unique per source and run, sorted by time.
std::string snapshot_name(const JobSource& source, int64_t time_ns) {
  const std::time_t t = std::time_t(time_ns / 1000000000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}-{}.{:03d}Z", source.name, buf, int(time_ns / 1000000 % 1000));
}

SourceResult back_up_source(backup::Repository& repo, const Job& job, const JobSource& source, int64_t time_ns,
                            const RunOptions& options) {
  SourceResult r;
  r.name = source.name;
  r.kind = source.kind == JobSource::Kind::vm ? "vm" : "files";
  backup::CreateOptions o;
  o.name = snapshot_name(source, time_ns);
  o.tags = {job.tag()};
  o.time_ns = time_ns;
  o.threads = options.threads;
  if (source.kind == JobSource::Kind::vm) {
    o.images = source.disks;
    o.host = source.name;  // the VM is the snapshot's host: prune keeps its snapshots per VM
  } else {
    o.paths = source.paths;
  }
  try {
    backup::Snapshot s = backup::create_snapshot(repo, o);
    r.snapshot = s.name;
    r.snapshot_id = s.id;
    r.bytes_read = s.stats.bytes_read;
    r.bytes_added = s.stats.stored_bytes;
  } catch (const Error& e) {
    if (e.category() == ErrorCategory::interrupted) throw;
    // A disk another process holds for writing (image/image_lock.h): the VM runs.
    if (source.kind == JobSource::Kind::vm && e.category() == ErrorCategory::busy)
      r.error = fmt::format(
          "VM {} is running ({}): live backup of running VMs is not available yet; it is backed up when stopped",
          source.name, e.what());
    else
      r.error = e.what();
  }
  return r;
}

StepResult prune_job(backup::Repository& repo, const Job& job, const RunOptions& options) {
  StepResult r;
  r.what = "prune";
  backup::PruneOptions o;
  o.policy = job.retention;
  o.filter.tags = {job.tag()};  // the job's snapshots only; grouped by host (the VM) and what was backed up
  o.threads = options.threads;
  try {
    backup::PruneReport p = backup::prune(repo, o);
    for (const backup::RetentionGroup& g : p.groups) r.count += g.removed.size();
    r.bytes = p.bytes_freed;
  } catch (const Error& e) {
    if (e.category() == ErrorCategory::interrupted) throw;
    r.error = e.what();
  }
  return r;
}

StepResult copy_offsite(backup::Repository& repo, const OffsiteTarget& target, const backup::SecretBytes& passphrase) {
  StepResult r;
  r.what = target.repository;
  try {
    std::unique_ptr<backup::Repository> dst = backup::Repository::open(target.repository, passphrase.span());
    backup::CopyOptions o;
    o.bwlimit = target.bwlimit;
    backup::CopyReport c = backup::copy_snapshots(repo, *dst, o);
    for (const backup::CopiedSnapshot& s : c.snapshots) r.count += !s.present;
    r.bytes = c.pack_bytes;
  } catch (const Error& e) {
    if (e.category() == ErrorCategory::interrupted) throw;
    r.error = e.what();
  }
  return r;
}

StepResult verify_part(backup::Repository& repo, uint32_t part, uint32_t parts, const RunOptions& options) {
  StepResult r;
  r.what = fmt::format("verify {}/{}", part, parts);
  try {
    backup::CheckOptions o;
    o.read_data = true;
    o.subset_part = part;
    o.subset_parts = parts;
    o.threads = options.threads;
    backup::CheckReport c = backup::check_repository(repo, o);
    r.count = c.damaged.size();
    r.bytes = c.bytes_verified;
    if (!c.damaged.empty())
      r.error = fmt::format("{} damaged chunks (arche backup check --read-data {} names them)", c.damaged.size(),
                            repo.location());
    else if (!c.errors.empty())
      r.error = c.errors.front() + (c.errors.size() > 1 ? fmt::format(" (and {} more errors)", c.errors.size() - 1) : "");
  } catch (const Error& e) {
    if (e.category() == ErrorCategory::interrupted) throw;
    r.error = e.what();
  }
  return r;
}

RunResult judge(const RunRecord& r) {
  if (!r.error.empty()) return RunResult::failure;
  size_t ok = 0;
  for (const SourceResult& s : r.sources) ok += s.ok();
  if (ok == 0) return RunResult::failure;
  for (const StepResult& o : r.offsite)
    if (!o.ok()) return RunResult::failure;
  if (r.verify && !r.verify->ok()) return RunResult::failure;
  if (ok < r.sources.size() || (r.prune && !r.prune->ok()) || !r.hook_errors.empty()) return RunResult::warning;
  return RunResult::ok;
}

// Everything after the lock and the before hook.
void run_steps(const Job& job, const RunOptions& options, RunRecord& record, int64_t now_ns) {
  std::unique_ptr<backup::Repository> repo;
  backup::SecretBytes passphrase;
  try {
    passphrase = read_job_passphrase(job.passphrase);
    repo = backup::Repository::open(job.repository, passphrase.span());
  } catch (const Error& e) {
    if (e.category() == ErrorCategory::interrupted) throw;
    record.error = e.what();
    return;
  }
  for (const JobSource& s : job.sources) {
    record.sources.push_back(back_up_source(*repo, job, s, now_ns, options));
    if (!record.sources.back().ok()) warn("{} {}: {}", record.sources.back().kind, s.name, record.sources.back().error);
  }
  if (!job.retention.empty()) record.prune = prune_job(*repo, job, options);
  for (const OffsiteTarget& o : job.offsite) record.offsite.push_back(copy_offsite(*repo, o, passphrase));
  if (job.verify_parts)
    record.verify = verify_part(*repo, verify_part_for(now_ns, job.verify_parts), job.verify_parts, options);
}

}  // namespace

uint32_t verify_part_for(int64_t now_ns, uint32_t parts) {
  return parts ? uint32_t((now_ns / kNsPerDay) % parts) + 1 : 0;
}

RunRecord run_job(const Job& job, const RunOptions& options) {
  JobLock lock(job.lock_path());
  RunRecord record;
  record.job = job.name;
  record.start_ns = clock_ns();
  const int64_t now_ns = options.now_ns ? options.now_ns : record.start_ns;
  bool interrupted = false, before_failed = false;
  std::string interruption;
  try {
    if (!job.hooks.before.empty()) {
      if (std::string e = run_hook(job.hooks.before, "", job.name, "running"); !e.empty()) {
        record.error = "before hook " + e + ": nothing was backed up";
        before_failed = true;
      }
    }
    if (!before_failed) run_steps(job, options, record, now_ns);
  } catch (const Error& e) {
    if (e.category() != ErrorCategory::interrupted) throw;
    interrupted = true;
    interruption = e.what();
    record.error = interruption;
  }
  record.result = judge(record);
  record.end_ns = clock_ns();
  if (!interrupted && !before_failed && !job.hooks.after.empty()) {
    if (std::string e = run_hook(job.hooks.after, format_summary(record), job.name, result_name(record.result));
        !e.empty()) {
      record.hook_errors.push_back("after hook " + e);
      record.result = judge(record);
    }
    record.end_ns = clock_ns();
  }
  if (record.result != RunResult::ok && !job.hooks.on_failure.empty()) {
    if (std::string e = run_hook(job.hooks.on_failure, format_summary(record), job.name, result_name(record.result));
        !e.empty())
      record.hook_errors.push_back("on-failure hook " + e);
  }
  append_history(job.history_path(), record);
  if (interrupted) fail(ErrorCategory::interrupted, "{}: the run is recorded as failed; the repository is consistent", interruption);
  return record;
}

}  // namespace arche::jobs
