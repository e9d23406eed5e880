#include "jobs/run_record.h"

#include <cstdio>
#include <ctime>

#include "core/error.h"
#include "core/units.h"

namespace arche::jobs {

namespace {

constexpr int64_t kNs = 1000000000;

// "2026-12-01T21:30:05+01:00" (what rfc3339() writes) back to unix seconds.
int64_t parse_rfc3339(const std::string& text, const std::string& what) {
  int y, mo, d, h, mi, s, oh = 0, om = 0;
  char sign = 'Z';
  int n = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &n) != 6)
    fail(ErrorCategory::format, "{}: '{}' is not an RFC 3339 time", what, text);
  const std::string zone = text.substr(size_t(n));
  if (zone != "Z" && (std::sscanf(zone.c_str(), "%c%2d:%2d", &sign, &oh, &om) != 3 || (sign != '+' && sign != '-')))
    fail(ErrorCategory::format, "{}: '{}' is not an RFC 3339 time", what, text);
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  const int64_t offset = (oh * 3600 + om * 60) * (sign == '-' ? -1 : 1);
  return int64_t(timegm(&tm)) - offset;
}

Json step_to_json(const StepResult& s) {
  return Json{{"what", s.what}, {"ok", s.ok()}, {"error", or_null(s.error)}, {"count", s.count}, {"bytes", s.bytes}};
}

StepResult step_from_json(const Json& j) {
  StepResult s;
  s.what = j.at("what").get<std::string>();
  if (!j.at("error").is_null()) s.error = j.at("error").get<std::string>();
  s.count = j.at("count").get<uint64_t>();
  s.bytes = j.at("bytes").get<uint64_t>();
  return s;
}

std::string label(const StepResult& s) { return s.ok() ? "ok" : "FAILED: " + s.error; }

}  // namespace

const char* result_name(RunResult r) {
  switch (r) {
    case RunResult::ok: return "ok";
    case RunResult::warning: return "warning";
    case RunResult::failure: return "failure";
  }
  return "failure";
}

RunResult parse_result(const std::string& name, const std::string& what) {
  for (RunResult r : {RunResult::ok, RunResult::warning, RunResult::failure})
    if (name == result_name(r)) return r;
  fail(ErrorCategory::format, "{}: unknown result '{}'", what, name);
}

Json record_to_json(const RunRecord& r) {
  Json sources = Json::array();
  for (const SourceResult& s : r.sources) {
    Json dedup = nullptr;
    if (s.ok() && s.bytes_added) dedup = double(s.bytes_read) / double(s.bytes_added);
    sources.push_back({{"name", s.name},
                       {"kind", s.kind},
                       {"ok", s.ok()},
                       {"snapshot", or_null(s.snapshot)},
                       {"snapshot-id", or_null(s.snapshot_id)},
                       {"bytes-read", s.bytes_read},
                       {"bytes-added", s.bytes_added},
                       {"dedup-ratio", dedup},
                       {"error", or_null(s.error)}});
  }
  Json offsite = Json::array();
  for (const StepResult& o : r.offsite) offsite.push_back(step_to_json(o));
  return Json{{"job", r.job},
              {"start", rfc3339(r.start_ns / kNs)},
              {"end", rfc3339(r.end_ns / kNs)},
              {"duration-seconds", double(r.end_ns - r.start_ns) / 1e9},
              {"result", result_name(r.result)},
              {"error", or_null(r.error)},
              {"sources", sources},
              {"prune", r.prune ? step_to_json(*r.prune) : Json(nullptr)},
              {"offsite", offsite},
              {"verify", r.verify ? step_to_json(*r.verify) : Json(nullptr)},
              {"hook-errors", r.hook_errors}};
}

RunRecord record_from_json(const Json& j, const std::string& what) {
  try {
    RunRecord r;
    r.job = j.at("job").get<std::string>();
    // Whole seconds are what the record keeps; the duration gives the end's fraction back.
    r.start_ns = parse_rfc3339(j.at("start").get<std::string>(), what) * kNs;
    r.end_ns = r.start_ns + int64_t(j.at("duration-seconds").get<double>() * 1e9);
    r.result = parse_result(j.at("result").get<std::string>(), what);
    if (!j.at("error").is_null()) r.error = j.at("error").get<std::string>();
    for (const Json& s : j.at("sources")) {
      SourceResult x;
      x.name = s.at("name").get<std::string>();
      x.kind = s.at("kind").get<std::string>();
      if (!s.at("snapshot").is_null()) x.snapshot = s.at("snapshot").get<std::string>();
      if (!s.at("snapshot-id").is_null()) x.snapshot_id = s.at("snapshot-id").get<std::string>();
      x.bytes_read = s.at("bytes-read").get<uint64_t>();
      x.bytes_added = s.at("bytes-added").get<uint64_t>();
      if (!s.at("error").is_null()) x.error = s.at("error").get<std::string>();
      r.sources.push_back(std::move(x));
    }
    if (!j.at("prune").is_null()) r.prune = step_from_json(j.at("prune"));
    for (const Json& o : j.at("offsite")) r.offsite.push_back(step_from_json(o));
    if (!j.at("verify").is_null()) r.verify = step_from_json(j.at("verify"));
    r.hook_errors = j.at("hook-errors").get<std::vector<std::string>>();
    return r;
  } catch (const Json::exception& e) {
    fail(ErrorCategory::format, "{}: {}", what, e.what());
  }
}

std::string format_summary(const RunRecord& r) {
  std::string out = fmt::format("job {}: {} ({}, {:.0f} s)\n", r.job, result_name(r.result), rfc3339(r.start_ns / kNs),
                                double(r.end_ns - r.start_ns) / 1e9);
  if (!r.error.empty()) out += "  " + r.error + "\n";
  for (const SourceResult& s : r.sources) {
    if (s.ok())
      out += fmt::format("  {} {}: snapshot {}, {} read, {} added\n", s.kind, s.name, s.snapshot,
                         format_size(s.bytes_read), format_size(s.bytes_added));
    else
      out += fmt::format("  {} {}: FAILED: {}\n", s.kind, s.name, s.error);
  }
  if (r.prune)
    out += fmt::format("  prune: {}{}\n", label(*r.prune),
                       r.prune->ok() ? fmt::format(", {} snapshots removed, {} freed", r.prune->count,
                                                   format_size(r.prune->bytes))
                                     : "");
  for (const StepResult& o : r.offsite)
    out += fmt::format("  offsite {}: {}{}\n", o.what, label(o),
                       o.ok() ? fmt::format(", {} snapshots, {} sent", o.count, format_size(o.bytes)) : "");
  if (r.verify)
    out += fmt::format("  {}: {}{}\n", r.verify->what, label(*r.verify),
                       r.verify->ok() ? fmt::format(", {} verified", format_size(r.verify->bytes)) : "");
  for (const std::string& h : r.hook_errors) out += "  hook: " + h + "\n";
  return out;
}

}  // namespace arche::jobs
