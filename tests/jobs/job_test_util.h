// Helpers of the job tests: a repository (backup_test_util.h) and a job file beside
// it whose passphrase comes from a file, written by each test with its own sources.
#pragma once

#include <string>
#include <vector>

#include "jobs/job_file.h"
#include "tests/backup/backup_test_util.h"

namespace arche::jobs::test {

using arche::test::CommandResult;

class JobTest : public backup::test::RepositoryTest {
 protected:
  void SetUp() override;
  // Writes dir/JOB.toml: repository and passphrase-file lines, then `body`.
  std::string write_job(const std::string& body, const std::string& name = "nightly.toml");
  // `arche job ARGS...`
  CommandResult job(const std::vector<std::string>& args);
  std::string passphrase_file;
};

// The file's content as text.
std::string read_text(const std::string& path);

// Names of the repository's snapshots of one host, oldest first.
std::vector<std::string> snapshot_names_of_host(const std::string& repo, const std::string& host);

}  // namespace arche::jobs::test
