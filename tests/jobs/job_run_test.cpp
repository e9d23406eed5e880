// Issue 16: `arche job run` without a running VM. Retention over simulated nights
// per VM (acceptance 3), a failing source that does not stop the others, a VM whose
// disk a running VM holds, the on-failure hook and its summary (acceptance 6), the
// lock against overlapping runs, and a bad job file.
#include <gtest/gtest.h>

#include <boost/filesystem.hpp>
#include <regex>

#include "core/error.h"
#include "core/json.h"
#include "image/format.h"
#include "jobs/history.h"
#include "jobs/job_lock.h"
#include "jobs/run.h"
#include "tests/jobs/job_test_util.h"

namespace arche::jobs::test {
namespace {

using backup::test::write_random_file;

constexpr int64_t kDay = 86400ll * 1000000000;

class JobRun : public JobTest {};

std::string vm_table(const std::string& name, const std::string& disk) {
  return "[[vm]]\nname = \"" + name + "\"\ndisks = [\"" + disk + "\"]\n";
}

TEST_F(JobRun, RetentionOverSimulatedNightsKeepsSevenDailiesOfEachVm) {
  write_random_file(dir.file("web.raw"), 1u << 20, 1601);
  write_random_file(dir.file("db.raw"), 1u << 20, 1602);
  const Job job = load_job_file(write_job("verify-parts = 0\n[retention]\nkeep-daily = 7\n" +
                                          vm_table("web", dir.file("web.raw")) + vm_table("db", dir.file("db.raw"))));
  // Ten nights at 01:30 UTC, one day apart, each run pruning as it goes.
  const int64_t first = (int64_t(::time(nullptr)) / 86400 - 30) * kDay + 5400ll * 1000000000;
  std::vector<std::string> names_web, names_db;
  for (int night = 0; night < 10; ++night) {
    RunOptions o;
    o.now_ns = first + night * kDay;
    o.threads = 2;
    const RunRecord r = run_job(job, o);
    ASSERT_EQ(r.result, RunResult::ok) << format_summary(r);
    ASSERT_EQ(r.sources.size(), 2u);
    names_web.push_back(r.sources[0].snapshot);
    names_db.push_back(r.sources[1].snapshot);
    ASSERT_TRUE(r.prune && r.prune->ok());
    EXPECT_EQ(r.prune->count, night >= 7 ? 2u : 0u) << "night " << night << ": one snapshot of each VM goes";
  }
  // Exactly the seven newest nights of each VM are left, each VM its own.
  auto newest_seven = [](std::vector<std::string> v) { return std::vector<std::string>(v.begin() + 3, v.end()); };
  EXPECT_EQ(snapshot_names_of_host(repo, "web"), newest_seven(names_web));
  EXPECT_EQ(snapshot_names_of_host(repo, "db"), newest_seven(names_db));
  EXPECT_EQ(read_history(job.history_path()).runs.size(), 10u);
  // What remains restores.
  backup::test::backup_ok({"restore", repo + "::" + names_db[3], "--image", "db.raw", "--to", dir.file("db.out")});
  EXPECT_TRUE(backup::test::same_content(dir.file("db.raw"), dir.file("db.out")));
}

TEST_F(JobRun, AFailingSourceDoesNotStopTheOthersAndGivesTheWarningCode) {
  write_random_file(dir.file("web.raw"), 1u << 20, 1603);
  boost::filesystem::create_directories(dir.file("data"));
  write_random_file(dir.file("data/file.bin"), 300000, 1604);
  const std::string path = write_job(vm_table("db", dir.file("gone.raw")) + vm_table("web", dir.file("web.raw")) +
                                     "[[files]]\nname = \"data\"\npaths = [\"" + dir.file("data") + "\"]\n");
  CommandResult r = job({"run", path, "--json"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  const Json j = Json::parse(r.out);
  EXPECT_EQ(j["result"], "warning");
  ASSERT_EQ(j["sources"].size(), 3u);
  EXPECT_FALSE(j["sources"][0]["ok"].get<bool>());
  EXPECT_NE(j["sources"][0]["error"].get<std::string>().find("gone.raw"), std::string::npos) << j.dump();
  for (int i : {1, 2}) {
    EXPECT_TRUE(j["sources"][i]["ok"].get<bool>()) << j.dump();
    EXPECT_GT(j["sources"][i]["bytes-added"].get<uint64_t>(), 200000u);
    EXPECT_GE(j["sources"][i]["bytes-read"].get<uint64_t>(), 300000u);
  }
  EXPECT_EQ(snapshot_names_of_host(repo, "web").size(), 1u);
  EXPECT_TRUE(j["verify"]["ok"].get<bool>()) << "the rotating verification ran";
  // Nothing backed up at all is a failure.
  const std::string none = write_job(vm_table("db", dir.file("gone.raw")), "none.toml");
  EXPECT_EQ(job({"run", none}).exit_code, 2);
}

TEST_F(JobRun, AVmWhoseDiskARunningVmHoldsGetsOneClearError) {
  write_random_file(dir.file("web.raw"), 1u << 20, 1605);
  write_random_file(dir.file("db.raw"), 1u << 20, 1606);
  const std::string path = write_job(vm_table("web", dir.file("web.raw")) + vm_table("db", dir.file("db.raw")));
  // The disk open for writing, as a running VM (arche's or QEMU's) holds it.
  image::OpenOptions w;
  w.writable = true;
  auto running = image::open_image(dir.file("web.raw"), w);
  CommandResult r = job({"run", path, "--json"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  const Json j = Json::parse(r.out);
  const std::string error = j["sources"][0]["error"];
  EXPECT_EQ(error.rfind("VM web is running (", 0), 0u) << error;
  EXPECT_NE(error.find("live backup of running VMs is not available yet"), std::string::npos) << error;
  EXPECT_TRUE(j["sources"][1]["ok"].get<bool>());
  running.reset();
  EXPECT_EQ(job({"run", path}).exit_code, 0) << "stopped, it is backed up";
}

TEST_F(JobRun, TheOnFailureHookGetsTheSummaryOnStdin) {
  write_random_file(dir.file("web.raw"), 1u << 20, 1607);
  const std::string hook_out = dir.file("hook.txt");
  const std::string path = write_job("[hooks]\nafter = \"(echo $ARCHE_JOB_RESULT; cat) > " + dir.file("after.txt") +
                                     "\"\non-failure = \"(echo $ARCHE_JOB $ARCHE_JOB_RESULT; cat) > " + hook_out +
                                     "\"\n" + vm_table("web", dir.file("web.raw")) +
                                     vm_table("db", dir.file("gone.raw")));
  CommandResult r = job({"run", path});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  const std::string got = read_text(hook_out);
  EXPECT_EQ(got.rfind("nightly warning\njob nightly: warning (", 0), 0u) << got;
  EXPECT_NE(got.find("vm db: FAILED: "), std::string::npos) << got;
  EXPECT_NE(got.find("vm web: snapshot web-"), std::string::npos) << got;
  EXPECT_EQ(got.substr(got.find('\n') + 1), r.out) << "the hook reads what the terminal shows";
  const std::string after = read_text(dir.file("after.txt"));
  EXPECT_EQ(after.rfind("warning\njob nightly: warning (", 0), 0u) << after;
  EXPECT_NE(after.find("vm db: FAILED: "), std::string::npos) << "the after hook reads the summary too: " << after;
  EXPECT_TRUE(std::regex_search(after, std::regex(R"(^job nightly: warning \([^,]+, \d+ s\)$)", std::regex::multiline)))
      << "a real duration: " << after;

  // A successful run does not call it.
  boost::filesystem::remove(hook_out);
  const std::string ok = write_job("[hooks]\non-failure = \"cat > " + hook_out + "\"\n" +
                                   vm_table("web", dir.file("web.raw")), "ok.toml");
  EXPECT_EQ(job({"run", ok}).exit_code, 0);
  EXPECT_FALSE(boost::filesystem::exists(hook_out));

  // A before hook that fails stops the run: nothing backed up, failure, hook told.
  const std::string before = write_job("[hooks]\nbefore = \"exit 3\"\non-failure = \"cat > " + hook_out + "\"\n" +
                                       vm_table("web", dir.file("web.raw")), "before.toml");
  const size_t snapshots = snapshot_names_of_host(repo, "web").size();
  r = job({"run", before});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(snapshot_names_of_host(repo, "web").size(), snapshots);
  EXPECT_NE(read_text(hook_out).find("before hook 'exit 3' exited with status 3"), std::string::npos);
}

TEST_F(JobRun, TheLockRefusesAnOverlappingRun) {
  write_random_file(dir.file("web.raw"), 1u << 20, 1608);
  const std::string path = write_job(vm_table("web", dir.file("web.raw")));
  {
    JobLock other_run(load_job_file(path).lock_path());
    CommandResult r = job({"run", path});
    EXPECT_EQ(r.exit_code, exit_code(ErrorCategory::busy));
    EXPECT_EQ(r.err, "arche: " + path + ".lock: another run of this job is still going (it holds the lock)\n");
    EXPECT_TRUE(snapshot_names_of_host(repo, "web").empty());
  }
  EXPECT_EQ(job({"run", path}).exit_code, 0) << "the lock goes with the run that held it";
}

TEST_F(JobRun, ABadJobFileGivesOneClearLine) {
  const std::string path = write_job("[retention]\nkeep-daily = 7\nkeep-dayly = 3\n");
  CommandResult r = job({"run", path});
  EXPECT_EQ(r.exit_code, 64);
  EXPECT_EQ(r.err, "arche: " + path + ": unknown key 'keep-dayly' in [retention] (line 5)\n");
  const std::string typo = write_job("[[vm]]\nname = \"web\"\ndisk = [\"x.raw\"]\n", "typo.toml");
  r = job({"run", typo});
  EXPECT_EQ(r.err, "arche: " + typo + ": unknown key 'disk' in [[vm]] (line 5)\n");
  const std::string broken = write_job("[[vm]\n", "broken.toml");
  r = job({"status", broken});
  EXPECT_EQ(r.exit_code, 64);
  EXPECT_EQ(r.err.rfind("arche: " + broken + ": ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("(line 3, column"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1);
  EXPECT_FALSE(boost::filesystem::exists(path + ".history")) << "nothing ran";
}

}  // namespace
}  // namespace arche::jobs::test
