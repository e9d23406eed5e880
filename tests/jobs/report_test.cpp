// Issue 16, acceptance 8: the HTML report opens in headless Chromium; its DOM holds
// every source's last run (and every run in the chart), text from the history is
// escaped, and a screenshot is kept under the build directory for people to look at.
#include <gtest/gtest.h>

#include <unistd.h>

#include <boost/filesystem.hpp>

#include "core/json.h"
#include "jobs/run.h"
#include "tests/jobs/job_test_util.h"

namespace fs = boost::filesystem;

namespace arche::jobs::test {
namespace {

using backup::test::write_random_file;

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

std::string chromium_program() {
  for (const char* p : {"chromium", "chromium-browser", "google-chrome"})
    if (arche::test::have_program(p)) return p;
  return {};
}

class JobReport : public JobTest {};

TEST_F(JobReport, TheHtmlReportOpensInHeadlessChromiumWithEverySourcesLastRun) {
  const std::string chromium = chromium_program();
  if (chromium.empty()) GTEST_SKIP() << "no chromium (Debian's chromium package)";
  write_random_file(dir.file("web.raw"), 1u << 20, 1630);
  write_random_file(dir.file("db <b>.raw"), 2u << 20, 1631);  // markup in a name
  fs::create_directories(dir.file("data"));
  write_random_file(dir.file("data/a.bin"), 100000, 1632);
  const std::string path =
      write_job("verify-parts = 0\n[[vm]]\nname = \"web\"\ndisks = [\"" + dir.file("web.raw") + "\"]\n" +
                "[[vm]]\nname = \"db\"\ndisks = [\"" + dir.file("db <b>.raw") + "\"]\n" +
                "[[files]]\nname = \"data\"\npaths = [\"" + dir.file("data") + "\"]\n");
  const Job nightly = load_job_file(path);
  std::vector<RunRecord> runs;
  for (int night = 0; night < 3; ++night) {
    write_random_file(dir.file("data/night.bin"), 50000, 1640 + night);
    if (night == 2) fs::remove(dir.file("db <b>.raw"));  // db fails the last night
    RunOptions o;
    o.threads = 2;
    runs.push_back(run_job(nightly, o));
  }
  ASSERT_EQ(runs.back().result, RunResult::warning) << format_summary(runs.back());

  const std::string html = dir.file("report.html");
  CommandResult r = job({"report", path, "--html", html});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> args{chromium, "--headless", "--disable-gpu", "--user-data-dir=" + dir.file("chromium"),
                                "--dump-dom", "file://" + html};
  if (::geteuid() == 0) args.insert(args.begin() + 1, "--no-sandbox");  // Chromium refuses root otherwise
  CommandResult dom = arche::test::run(args);
  ASSERT_EQ(dom.exit_code, 0) << dom.err;
  const std::string& d = dom.out;
  for (const std::string source : {"web", "data"}) {
    SCOPED_TRACE(source);
    const size_t row = d.find("<tr class=\"ok\" id=\"last-" + source + "\">");
    ASSERT_NE(row, std::string::npos) << d;
    const std::string last = d.substr(row, d.find("</tr>", row) - row);
    const std::string snapshot = source == "web" ? runs.back().sources[0].snapshot : runs.back().sources[2].snapshot;
    EXPECT_NE(last.find(">" + snapshot + "<"), std::string::npos) << last;
    EXPECT_NE(last.find(">" + rfc3339(runs.back().start_ns / 1000000000) + "<"), std::string::npos) << last;
  }
  const size_t db = d.find("<tr class=\"failed\" id=\"last-db\">");
  ASSERT_NE(db, std::string::npos) << d;
  const std::string db_row = d.substr(db, d.find("</tr>", db) - db);
  EXPECT_NE(db_row.find("db &lt;b&gt;.raw"), std::string::npos) << db_row;
  EXPECT_EQ(count(d, "<table class=\"source\""), 3u);
  EXPECT_EQ(count(d, "<tr class=\"ok\""), 3u * 3 - 1);
  EXPECT_EQ(count(d, "<rect class=\"night\""), 3u) << "one bar per run";
  EXPECT_EQ(d.find("<script"), std::string::npos);
  EXPECT_EQ(count(d, "<b>"), 0u) << "history text is escaped, never markup";

  // A picture for people, kept with the build.
  const std::string png = std::string(ARCHE_TEST_OUTPUT_DIR) + "/job-report.png";
  fs::remove(png);
  args.back() = "--screenshot=" + png;
  args.push_back("--window-size=1000,1400");
  args.push_back("file://" + html);
  CommandResult shot = arche::test::run(args);
  ASSERT_EQ(shot.exit_code, 0) << shot.err;
  const std::vector<uint8_t> image = arche::test::read_file(png);
  ASSERT_GT(image.size(), 1000u);
  EXPECT_EQ(std::string(image.begin() + 1, image.begin() + 4), "PNG");
}

TEST_F(JobReport, TextAndJsonReports) {
  write_random_file(dir.file("web.raw"), 1u << 20, 1650);
  const std::string path = write_job("verify-parts = 0\n[[vm]]\nname = \"web\"\ndisks = [\"" + dir.file("web.raw") +
                                     "\"]\n[[vm]]\nname = \"db\"\ndisks = [\"" + dir.file("gone.raw") + "\"]\n");
  CommandResult none = job({"report", path});
  EXPECT_EQ(none.exit_code, 0);
  EXPECT_NE(none.out.find("0 runs in the history"), std::string::npos) << none.out;
  EXPECT_NE(none.out.find("never run"), std::string::npos);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(job({"run", path}).exit_code, 1);
  CommandResult text = job({"report", path, "--last", "2"});
  EXPECT_EQ(count(text.out, "  FAILED: "), 2u) << text.out;
  EXPECT_EQ(count(text.out, " web-"), 2u) << text.out;
  const Json j = Json::parse(job({"report", path, "--json"}).out);
  EXPECT_EQ(j["runs"].size(), 3u);
  EXPECT_TRUE(j["html"].is_null());
}

}  // namespace
}  // namespace arche::jobs::test
