// `arche job run|status JOB.toml` and `arche schedule install|list|remove JOB.toml`:
// nightly jobs (jobs/, docs/jobs.md). This file parses and prints; jobs/ does the work.
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "backup/passphrase.h"
#include "backup/retention.h"
#include "cli/command.h"
#include "core/interrupt.h"
#include "jobs/job_file.h"
#include "jobs/run.h"
#include "jobs/status.h"

namespace arche::cli {

namespace {

struct JobArgs {
  std::string job;
  std::string max_age = "26h";
};

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void add_run(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("run", "Run a job now: back up its sources, prune, copy offsite, verify a part");
  auto a = std::make_shared<JobArgs>();
  cmd->add_option("job", a->job, "The job file (JOB.toml, docs/jobs.md)")->required();
  add_json_flag(cmd, ctx);
  cmd->footer("Exit status: 0 ok, 1 warning (partly failed), 2 failure (docs/jobs.md).");
  cmd->callback([&ctx, a] {
    const jobs::Job job = jobs::load_job_file(a->job);
    ctx.if_interrupted = "the run is recorded as failed; the repository keeps what was complete";
    const jobs::RunRecord r = jobs::run_job(job);
    ctx.exit_code = int(r.result);
    if (ctx.json) print_json(jobs::record_to_json(r));
    else if (!ctx.quiet) std::fputs(jobs::format_summary(r).c_str(), stdout);
  });
}

void add_status(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("status", "When each source of a job was last backed up, for monitoring");
  auto a = std::make_shared<JobArgs>();
  cmd->add_option("job", a->job, "The job file (JOB.toml)")->required();
  cmd->add_option("--max-age", a->max_age, "A source whose last success is older is stale (default 26h)");
  add_json_flag(cmd, ctx);
  cmd->footer("Exit status: 0 ok, 1 the last run had warnings, 2 a source has no success within --max-age.");
  cmd->callback([&ctx, a] {
    const jobs::Job job = jobs::load_job_file(a->job);
    const jobs::JobStatus st = jobs::job_status(job, backup::parse_duration(a->max_age), now_ns());
    ctx.exit_code = st.exit_code();
    if (ctx.json) {
      print_json(jobs::status_to_json(st));
      return;
    }
    if (ctx.quiet) return;
    const Json j = jobs::status_to_json(st);
    std::printf("job %s: last run %s (%s)\n", st.job.c_str(),
                st.last_run ? j["last-run"]["start"].get<std::string>().c_str() : "never",
                st.last_run ? jobs::result_name(st.last_run->result) : "-");
    for (const Json& s : j["sources"]) {
      std::printf("  %s %s: last success %s%s%s\n", s["kind"].get<std::string>().c_str(),
                  s["name"].get<std::string>().c_str(),
                  s["last-success"].is_null() ? "never" : s["last-success"].get<std::string>().c_str(),
                  s["stale"].get<bool>() ? fmt::format(" -- STALE (older than {})", a->max_age).c_str() : "",
                  s["last-error"].is_null() ? "" : (", last error: " + s["last-error"].get<std::string>()).c_str());
    }
    if (st.damaged_lines) std::printf("  (%zu damaged lines of the history skipped)\n", st.damaged_lines);
  });
}

}  // namespace

void register_job_commands(CLI::App& app, Context& ctx) {
  auto* group = app.add_subcommand("job", "Nightly backup jobs: run them, check when they last succeeded");
  group->require_subcommand(1);
  group->preparse_callback([](std::size_t) {
    backup::capture_passphrase_environment();
    interrupt::install_handlers();
  });
  add_run(*group, ctx);
  add_status(*group, ctx);
}

}  // namespace arche::cli
