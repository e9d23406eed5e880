// `arche job report`: what the history (history.h) says about the last runs, for
// people: a text table, or one self-contained HTML file (no scripts, no external
// resources, no server) with the last runs of each source — duration, bytes read and
// added, dedup, errors — and an SVG chart of the bytes added per night. Meant to be
// mailed or put on an intranet page by the after hook.
#pragma once

#include <cstddef>
#include <string>

#include "jobs/history.h"
#include "jobs/job_file.h"

namespace arche::jobs {

struct ReportOptions {
  size_t last = 14;  // runs shown per source (the chart shows up to 60 nights)
};

std::string report_text(const Job& job, const History& history, const ReportOptions& options);
std::string report_html(const Job& job, const History& history, const ReportOptions& options);

}  // namespace arche::jobs
