#include "jobs/report.h"

#include <algorithm>

#include "core/json.h"
#include "core/units.h"

namespace arche::jobs {

namespace {

constexpr int64_t kNs = 1000000000;
constexpr size_t kChartNights = 60;

std::string escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string dedup(const SourceResult& s) {
  return s.ok() && s.bytes_added ? fmt::format("{:.1f}x", double(s.bytes_read) / double(s.bytes_added)) : "-";
}

std::string duration(const RunRecord& r) { return fmt::format("{:.0f} s", double(r.end_ns - r.start_ns) / 1e9); }

// The runs that tried `source`, newest first, at most `last`.
std::vector<std::pair<const RunRecord*, const SourceResult*>> runs_of(const History& h, const std::string& source,
                                                                       size_t last) {
  std::vector<std::pair<const RunRecord*, const SourceResult*>> out;
  for (auto it = h.runs.rbegin(); it != h.runs.rend() && out.size() < last; ++it)
    for (const SourceResult& s : it->sources)
      if (s.name == source) out.emplace_back(&*it, &s);
  return out;
}

// Bars of the bytes every source added, one per run (oldest left), with the axis maximum.
std::string chart_svg(const History& h) {
  const size_t n = std::min(h.runs.size(), kChartNights);
  const std::vector<RunRecord> runs(h.runs.end() - ptrdiff_t(n), h.runs.end());
  uint64_t max = 1;
  std::vector<uint64_t> added;
  for (const RunRecord& r : runs) {
    uint64_t sum = 0;
    for (const SourceResult& s : r.sources) sum += s.bytes_added;
    added.push_back(sum);
    max = std::max(max, sum);
  }
  constexpr int kWidth = 720, kHeight = 200, kLeft = 80, kBottom = 30;
  const double bar = n ? double(kWidth - kLeft) / double(n) : 0;
  std::string svg = fmt::format(
      "<svg id=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" role=\"img\" "
      "aria-label=\"bytes added per run\">\n"
      "<line x1=\"{}\" y1=\"0\" x2=\"{}\" y2=\"{}\" stroke=\"#888\"/>\n"
      "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#888\"/>\n"
      "<text x=\"{}\" y=\"12\" text-anchor=\"end\" font-size=\"11\">{}</text>\n"
      "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"11\">0</text>\n",
      kWidth, kHeight, kLeft, kLeft, kHeight - kBottom, kLeft, kHeight - kBottom, kWidth, kHeight - kBottom, kLeft - 4,
      escape(format_size(max)), kLeft - 4, kHeight - kBottom);
  for (size_t i = 0; i < n; ++i) {
    const double height = double(added[i]) / double(max) * (kHeight - kBottom - 14);
    const char* colour = runs[i].result == RunResult::ok ? "#3a7" : runs[i].result == RunResult::warning ? "#d93" : "#c33";
    svg += fmt::format(
        "<rect class=\"night\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\">"
        "<title>{}: {} added ({})</title></rect>\n",
        kLeft + i * bar + 1, kHeight - kBottom - height, std::max(bar - 2, 1.0), height, colour,
        escape(rfc3339(runs[i].start_ns / kNs)), escape(format_size(added[i])), result_name(runs[i].result));
  }
  if (n)
    svg += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"11\">{}</text>\n"
                       "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"11\">{}</text>\n",
                       kLeft, kHeight - 10, escape(rfc3339(runs.front().start_ns / kNs).substr(0, 10)), kWidth,
                       kHeight - 10, escape(rfc3339(runs.back().start_ns / kNs).substr(0, 10)));
  return svg + "</svg>\n";
}

}  // namespace

std::string report_text(const Job& job, const History& history, const ReportOptions& options) {
  std::string out = fmt::format("job {} ({}): {} runs in the history\n", job.name, job.path, history.runs.size());
  for (const JobSource& src : job.sources) {
    out += fmt::format("\n{} {}\n", src.kind == JobSource::Kind::vm ? "vm" : "files", src.name);
    const auto runs = runs_of(history, src.name, options.last);
    if (runs.empty()) out += "  never run\n";
    for (const auto& [run, s] : runs) {
      if (s->ok())
        out += fmt::format("  {}  {:>7}  {:>10} read  {:>10} added  dedup {:>6}  {}\n", rfc3339(run->start_ns / kNs),
                           duration(*run), format_size(s->bytes_read), format_size(s->bytes_added), dedup(*s),
                           s->snapshot);
      else
        out += fmt::format("  {}  {:>7}  FAILED: {}\n", rfc3339(run->start_ns / kNs), duration(*run), s->error);
    }
  }
  return out;
}

std::string report_html(const Job& job, const History& history, const ReportOptions& options) {
  std::string html = fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
      "<title>arche backup job {0}</title>\n"
      "<style>body{{font-family:sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse;margin-bottom:"
      "1.5em}}th,td{{border:1px solid #ccc;padding:.25em .6em;text-align:right;white-space:nowrap}}th:first-child,td:first-child,"
      "td.snapshot,td.error{{text-align:left}}td.error{{white-space:normal}}tr.failed td{{background:#fdd}}tr.ok td.result{{color:#272}}h2{{margin-top:1.2em}}"
      "</style></head>\n<body>\n<h1>Backup job {0}</h1>\n<p>{1} &middot; {2} runs in the history{3}</p>\n",
      escape(job.name), escape(job.path), history.runs.size(),
      history.runs.empty() ? std::string()
                           : fmt::format(" &middot; last run {} ({})", escape(rfc3339(history.runs.back().start_ns / kNs)),
                                         result_name(history.runs.back().result)));
  html += "<h2>Bytes added per run</h2>\n" + chart_svg(history);
  for (const JobSource& src : job.sources) {
    const auto runs = runs_of(history, src.name, options.last);
    html += fmt::format("<h2>{} {}</h2>\n<table class=\"source\" id=\"source-{}\">\n"
                        "<tr><th>start</th><th>result</th><th>duration</th><th>read</th><th>added</th><th>dedup</th>"
                        "<th>snapshot or error</th></tr>\n",
                        src.kind == JobSource::Kind::vm ? "VM" : "Files", escape(src.name), escape(src.name));
    if (runs.empty()) html += "<tr><td colspan=\"7\">never run</td></tr>\n";
    for (size_t i = 0; i < runs.size(); ++i) {
      const auto& [run, s] = runs[i];
      html += fmt::format(
          "<tr class=\"{}\"{}><td>{}</td><td class=\"result\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
          "<td class=\"{}\">{}</td></tr>\n",
          s->ok() ? "ok" : "failed", i == 0 ? fmt::format(" id=\"last-{}\"", escape(src.name)) : "",
          escape(rfc3339(run->start_ns / kNs)), s->ok() ? "ok" : "failed", duration(*run),
          escape(format_size(s->bytes_read)), escape(format_size(s->bytes_added)), dedup(*s),
          s->ok() ? "snapshot" : "error", escape(s->ok() ? s->snapshot : s->error));
    }
    html += "</table>\n";
  }
  return html + "</body></html>\n";
}

}  // namespace arche::jobs
