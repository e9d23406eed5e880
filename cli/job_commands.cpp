// `arche job run|status|report JOB.toml` and `arche schedule install|list|remove JOB.toml`:
// nightly jobs (jobs/, docs/jobs.md). This file parses and prints; jobs/ does the work.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "backup/passphrase.h"
#include "backup/retention.h"
#include "cli/command.h"
#include "core/error.h"
#include "core/file.h"
#include "core/interrupt.h"
#include "jobs/job_file.h"
#include "jobs/report.h"
#include "jobs/run.h"
#include "jobs/status.h"
#include "jobs/units.h"

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

struct ScheduleArgs {
  std::string job;
  std::string unit_dir, credential_dir = jobs::kDefaultCredentialDir;
};

// --unit-dir given: the units are only written (tests, images being prepared), and
// systemctl is left alone.
jobs::ScheduleOptions schedule_options(const ScheduleArgs& a) {
  jobs::ScheduleOptions o;
  o.systemctl = a.unit_dir.empty();
  if (!a.unit_dir.empty()) o.unit_dir = a.unit_dir;
  o.credential_dir = a.credential_dir;
  char self[4096];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) fail(ErrorCategory::internal, "cannot tell where the arche binary is (/proc/self/exe)");
  o.arche_binary.assign(self, size_t(n));
  return o;
}

void add_unit_dir(CLI::App* cmd, ScheduleArgs& a) {
  cmd->add_option("--unit-dir", a.unit_dir,
                  "Write the units here and do not run systemctl (default /etc/systemd/system, with systemctl)");
}

void add_schedule(CLI::App& app, Context& ctx) {
  auto* group = app.add_subcommand("schedule", "systemd timers that run backup jobs");
  group->require_subcommand(1);

  auto* install = group->add_subcommand("install", "Write the job's .service and .timer units and start the timer");
  auto ai = std::make_shared<ScheduleArgs>();
  install->add_option("job", ai->job, "The job file (JOB.toml)")->required();
  add_unit_dir(install, *ai);
  install->add_option("--credential-dir", ai->credential_dir,
                      "Where LoadCredential= finds the passphrase-credential file (default /etc/arche/credentials)");
  add_json_flag(install, ctx);
  install->callback([&ctx, ai] {
    const jobs::ScheduleOptions o = schedule_options(*ai);
    const jobs::UnitFiles u = jobs::install_units(jobs::load_job_file(ai->job), o);
    if (ctx.json)
      print_json(Json{{"service", o.unit_dir + "/" + u.service_name}, {"timer", o.unit_dir + "/" + u.timer_name},
                      {"enabled", o.systemctl}});
    else
      say(ctx, fmt::format("wrote {}/{} and {}{}", o.unit_dir, u.service_name, u.timer_name,
                           o.systemctl ? "; the timer is enabled and started" : " (systemctl not run)"));
  });

  auto* list = group->add_subcommand("list", "The jobs whose timers `schedule install` wrote");
  auto al = std::make_shared<ScheduleArgs>();
  add_unit_dir(list, *al);
  add_json_flag(list, ctx);
  list->callback([&ctx, al] {
    const auto units = jobs::list_units(al->unit_dir.empty() ? jobs::kDefaultUnitDir : al->unit_dir);
    if (ctx.json) {
      Json j = Json::array();
      for (const jobs::InstalledJob& u : units)
        j.push_back({{"timer", u.timer_name}, {"job", u.job_file}, {"schedule", u.schedule}});
      print_json(j);
      return;
    }
    for (const jobs::InstalledJob& u : units)
      say(ctx, fmt::format("{}  {}  ({})", u.timer_name, u.job_file, u.schedule));
  });

  auto* remove = group->add_subcommand("remove", "Stop the job's timer and delete its units");
  auto ar = std::make_shared<ScheduleArgs>();
  remove->add_option("job", ar->job, "The job file (JOB.toml)")->required();
  add_unit_dir(remove, *ar);
  add_json_flag(remove, ctx);
  remove->callback([&ctx, ar] {
    const jobs::ScheduleOptions o = schedule_options(*ar);
    const jobs::UnitFiles u = jobs::remove_units(jobs::load_job_file(ar->job), o);
    if (ctx.json) print_json(Json{{"removed", {u.service_name, u.timer_name}}});
    else say(ctx, fmt::format("removed {} and {}", u.service_name, u.timer_name));
  });
}

void add_report(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("report", "The last runs of each source, as text or one self-contained HTML file");
  auto a = std::make_shared<JobArgs>();
  auto html = std::make_shared<std::string>();
  auto options = std::make_shared<jobs::ReportOptions>();
  cmd->add_option("job", a->job, "The job file (JOB.toml)")->required();
  cmd->add_option("--html", *html, "Write the report as HTML (with an SVG chart) to FILE");
  cmd->add_option("--last", options->last, "Runs shown per source (default 14)")->check(CLI::PositiveNumber);
  add_json_flag(cmd, ctx);
  cmd->callback([&ctx, a, html, options] {
    const jobs::Job job = jobs::load_job_file(a->job);
    const jobs::History history = jobs::read_history(job.history_path());
    if (!html->empty()) {
      const std::string page = jobs::report_html(job, history, *options);
      write_file_atomic(*html, {reinterpret_cast<const uint8_t*>(page.data()), page.size()});
    }
    if (ctx.json) {
      Json runs = Json::array();
      const size_t from = history.runs.size() > options->last ? history.runs.size() - options->last : 0;
      for (size_t i = from; i < history.runs.size(); ++i) runs.push_back(jobs::record_to_json(history.runs[i]));
      print_json(Json{{"job", job.name}, {"html", or_null(*html)}, {"runs", runs}});
    } else if (html->empty()) {
      if (!ctx.quiet) std::fputs(jobs::report_text(job, history, *options).c_str(), stdout);
    } else {
      say(ctx, "wrote " + *html);
    }
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
  add_report(*group, ctx);
  add_schedule(app, ctx);
}

}  // namespace arche::cli
