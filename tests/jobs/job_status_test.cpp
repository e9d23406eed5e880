// `arche job status --max-age` for monitoring (issue 16, acceptance 6), and the
// history it reads: a record cut by a crash or damaged later is never taken for one.
#include <gtest/gtest.h>

#include <boost/filesystem.hpp>
#include <fstream>

#include "core/error.h"
#include "core/json.h"
#include "jobs/history.h"
#include "tests/jobs/job_test_util.h"

namespace arche::jobs::test {
namespace {

constexpr int64_t kSecond = 1000000000;

RunRecord record_at(int64_t start_s, RunResult result, const std::string& error = {}) {
  RunRecord r;
  r.job = "nightly";
  r.start_ns = start_s * kSecond;
  r.end_ns = r.start_ns + 90 * kSecond;
  r.result = result;
  SourceResult s;
  s.name = "web";
  s.kind = "vm";
  s.error = error;
  if (error.empty()) {
    s.snapshot = "web-" + std::to_string(start_s);
    s.bytes_read = 1000;
    s.bytes_added = 10;
  }
  r.sources.push_back(s);
  return r;
}

class JobStatusTest : public JobTest {
 protected:
  void SetUp() override {
    JobTest::SetUp();
    backup::test::write_random_file(dir.file("web.raw"), 1u << 20, 1610);
    path = write_job("verify-parts = 0\n[[vm]]\nname = \"web\"\ndisks = [\"" + dir.file("web.raw") + "\"]\n");
    history = path + ".history";
  }
  std::string path, history;
};

TEST_F(JobStatusTest, MaxAgeSaysWhenTheLastSuccessIsTooOld) {
  CommandResult never = job({"status", path, "--json"});
  EXPECT_EQ(never.exit_code, 2) << "never backed up is critical";
  Json j = Json::parse(never.out);
  EXPECT_TRUE(j["last-run"].is_null());
  EXPECT_TRUE(j["sources"][0]["last-success"].is_null());
  EXPECT_TRUE(j["sources"][0]["stale"].get<bool>());

  ASSERT_EQ(job({"run", path}).exit_code, 0);
  CommandResult fresh = job({"status", path, "--max-age", "26h"});
  EXPECT_EQ(fresh.exit_code, 0) << fresh.out;
  EXPECT_NE(fresh.out.find("vm web: last success 20"), std::string::npos) << fresh.out;

  // The history of a machine whose backups stopped three days ago.
  boost::filesystem::remove(history);
  const int64_t now = ::time(nullptr);
  append_history(history, record_at(now - 5 * 86400, RunResult::ok));
  append_history(history, record_at(now - 3 * 86400, RunResult::ok));
  CommandResult stale = job({"status", path, "--max-age", "26h", "--json"});
  EXPECT_EQ(stale.exit_code, 2);
  j = Json::parse(stale.out);
  EXPECT_EQ(j["sources"][0]["last-success"], rfc3339(now - 3 * 86400));
  EXPECT_EQ(j["sources"][0]["last-snapshot"], "web-" + std::to_string(now - 3 * 86400));
  EXPECT_EQ(job({"status", path, "--max-age", "4d"}).exit_code, 0);
  CommandResult text = job({"status", path});
  EXPECT_NE(text.out.find("STALE (older than 26h)"), std::string::npos) << text.out;

  // Runs go on but fail: the last success is what counts.
  append_history(history, record_at(now - 3600, RunResult::failure, "disk gone"));
  j = Json::parse(job({"status", path, "--max-age", "4d", "--json"}).out);
  EXPECT_EQ(j["exit-code"], 1) << "fresh enough, but the last run did not succeed";
  EXPECT_EQ(j["sources"][0]["last-error"], "disk gone");
  EXPECT_EQ(job({"status", path, "--max-age", "2d"}).exit_code, 2);
}

TEST_F(JobStatusTest, AHalfWrittenOrDamagedRecordIsNeverTakenForOne) {
  append_history(history, record_at(1000000000, RunResult::ok));
  {  // a crash in the middle of the next append
    std::ofstream f(history, std::ios::app);
    f << "1234abcd {\"job\":\"nightly\",\"start\":";
  }
  History h = read_history(history);
  EXPECT_EQ(h.runs.size(), 1u);
  EXPECT_EQ(h.damaged_lines, 1u);
  append_history(history, record_at(1000086400, RunResult::warning));
  h = read_history(history);
  ASSERT_EQ(h.runs.size(), 2u) << "the next append starts on a line of its own";
  EXPECT_EQ(h.runs[1].start_ns, 1000086400 * kSecond);
  EXPECT_EQ(h.runs[1].result, RunResult::warning);
  EXPECT_EQ(h.runs[1].sources[0].snapshot, "web-1000086400");
  EXPECT_EQ(h.damaged_lines, 1u);

  // One byte changed in a record: its CRC no longer matches.
  std::string text = read_text(history);
  const size_t at = text.find("\"bytes-read\":1000");
  ASSERT_NE(at, std::string::npos);
  text[at + 14] = '9';
  arche::test::write_file(history, {text.begin(), text.end()});
  h = read_history(history);
  EXPECT_EQ(h.runs.size(), 1u);
  EXPECT_EQ(h.damaged_lines, 2u);

  arche::test::write_file(history, {'x', '\n'});
  EXPECT_THROW(read_history(history), Error);
  CommandResult r = job({"status", path});
  EXPECT_EQ(r.exit_code, exit_code(ErrorCategory::format));
  EXPECT_EQ(r.err, "arche: " + history + ": not an arche job history (its first line is not 'arche-job-history 1')\n");
}

}  // namespace
}  // namespace arche::jobs::test
