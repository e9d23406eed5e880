// Issue 16, acceptance 4: the job's offsite copy to an SFTP repository on a real
// sshd on 127.0.0.1. sshd killed in the middle of the copy: the run says so and
// exits with the failure code; the next run completes the copy, and the replica then
// holds every snapshot and checks clean.
#include <gtest/gtest.h>

#include <boost/filesystem.hpp>
#include <chrono>
#include <thread>

#include "core/json.h"
#include "jobs/history.h"
#include "tests/backup/sshd_fixture.h"
#include "tests/jobs/job_test_util.h"

namespace fs = boost::filesystem;

namespace arche::jobs::test {
namespace {

using backup::test::Background;
using backup::test::backup_ok;

// Complete pack files below `repo_dir` (temporaries start with '.'). Called while
// the copy renames its temporaries: no call here may throw.
size_t packs_in(const std::string& repo_dir) {
  size_t n = 0;
  boost::system::error_code ec;
  fs::recursive_directory_iterator it(repo_dir + "/data", ec), end;
  for (; !ec && it != end; it.increment(ec))
    n += it->path().filename().string()[0] != '.' && fs::is_regular_file(it->path(), ec);
  return n;
}

class JobOffsite : public JobTest {};

TEST_F(JobOffsite, SshdKilledMidCopyIsAFailureAndTheNextRunCompletes) {
  arche::test::SshServer sshd;
  for (const auto& [name, value] : sshd.environment()) ::setenv(name.c_str(), value.c_str(), 1);
  ::setenv("ARCHE_STORE_RETRIES", "2", 1);
  ::setenv("ARCHE_STORE_RETRY_DELAY_MS", "100", 1);
  // Small packs, and a bandwidth limit on the copy (16 MiB at 4 MiB/s: about 4 s),
  // so the kill lands in its middle whatever the machine's speed.
  repo = dir.file("local");
  backup::test::init_repo(repo, {"--pack-size", "1M"});
  const std::string offsite = sshd.url("offsite");
  backup_ok({"init", offsite, "--same-key-as", repo, "--kdf-memory", "8M", "--kdf-ops", "1"});
  fs::create_directories(dir.file("data"));
  backup::test::write_random_file(dir.file("data/big.bin"), 16u << 20, 1620);
  const std::string path = write_job("[[files]]\nname = \"data\"\npaths = [\"" + dir.file("data") +
                                     "\"]\n[[offsite]]\nrepository = \"" + offsite + "\"\nbwlimit = \"4M\"\n");

  Background first({"job", "run", path, "--json"}, dir.path());
  const std::string server_repo = sshd.data_dir() + "/offsite";
  for (int i = 0; i < 12000 && packs_in(server_repo) < 2 && !first.finished(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_FALSE(first.finished()) << "the copy ended before the kill: " << first.err();
  sshd.kill();
  EXPECT_EQ(first.wait(), 2) << first.err();
  History h = read_history(path + ".history");
  ASSERT_EQ(h.runs.size(), 1u);
  const RunRecord& failed = h.runs[0];
  EXPECT_EQ(failed.result, RunResult::failure);
  ASSERT_TRUE(failed.sources[0].ok()) << "the local backup was made";
  ASSERT_EQ(failed.offsite.size(), 1u);
  EXPECT_EQ(failed.offsite[0].what, offsite);
  EXPECT_FALSE(failed.offsite[0].ok());
  EXPECT_NE(failed.offsite[0].error.find("127.0.0.1"), std::string::npos) << failed.offsite[0].error;
  EXPECT_NE(format_summary(failed).find("offsite " + offsite + ": FAILED: "), std::string::npos);
  EXPECT_EQ(job({"status", path}).exit_code, 1) << "backed up, but the run failed";

  sshd.start();
  CommandResult next = job({"run", path, "--json"});
  ASSERT_EQ(next.exit_code, 0) << next.err << next.out;
  const Json j = Json::parse(next.out);
  EXPECT_TRUE(j["offsite"][0]["ok"].get<bool>());
  EXPECT_EQ(j["offsite"][0]["count"], 2) << "tonight's snapshot and the one the failed run did not copy";
  // The replica holds both snapshots and every chunk of them reads back.
  const Json listed = Json::parse(backup_ok({"list", offsite, "--json"}).out);
  EXPECT_EQ(listed.size(), 2u);
  EXPECT_EQ(backup::test::backup({"check", "--read-data", offsite}).exit_code, 0);
  backup_ok({"restore", offsite + "::" + failed.sources[0].snapshot, "--to", dir.file("out")});
  EXPECT_TRUE(backup::test::same_content(dir.file("data/big.bin"), dir.file("out") + dir.file("data/big.bin")));
}

}  // namespace
}  // namespace arche::jobs::test
