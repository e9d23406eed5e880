#include "jobs/status.h"

#include "jobs/history.h"

namespace arche::jobs {

int JobStatus::exit_code() const {
  for (const SourceStatus& s : sources)
    if (s.stale) return int(RunResult::failure);
  return last_run && last_run->result != RunResult::ok ? int(RunResult::warning) : int(RunResult::ok);
}

JobStatus job_status(const Job& job, int64_t max_age_ns, int64_t now_ns) {
  History h = read_history(job.history_path());
  JobStatus st;
  st.job = job.name;
  st.max_age_ns = max_age_ns;
  st.damaged_lines = h.damaged_lines;
  if (!h.runs.empty()) st.last_run = h.runs.back();
  for (const JobSource& src : job.sources) {
    SourceStatus s;
    s.name = src.name;
    s.kind = src.kind == JobSource::Kind::vm ? "vm" : "files";
    for (const RunRecord& run : h.runs)
      for (const SourceResult& r : run.sources) {
        if (r.name != src.name) continue;
        s.last_run_ns = run.start_ns;
        s.last_error = r.error;
        if (r.ok()) {
          s.last_success_ns = run.start_ns;
          s.last_snapshot = r.snapshot;
        }
      }
    s.stale = s.last_success_ns == 0 || now_ns - s.last_success_ns > max_age_ns;
    st.sources.push_back(std::move(s));
  }
  return st;
}

Json status_to_json(const JobStatus& s) {
  auto time = [](int64_t ns) { return ns ? Json(rfc3339(ns / 1000000000)) : Json(nullptr); };
  Json sources = Json::array();
  for (const SourceStatus& x : s.sources)
    sources.push_back({{"name", x.name},
                       {"kind", x.kind},
                       {"last-run", time(x.last_run_ns)},
                       {"last-error", or_null(x.last_error)},
                       {"last-success", time(x.last_success_ns)},
                       {"last-snapshot", or_null(x.last_snapshot)},
                       {"stale", x.stale}});
  return Json{{"job", s.job},
              {"max-age-seconds", s.max_age_ns / 1000000000},
              {"last-run", s.last_run ? record_to_json(*s.last_run) : Json(nullptr)},
              {"sources", sources},
              {"damaged-history-lines", s.damaged_lines},
              {"exit-code", s.exit_code()}};
}

}  // namespace arche::jobs
