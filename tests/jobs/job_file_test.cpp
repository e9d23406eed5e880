// Job files (docs/jobs.md): the commented example parses to what its comments say,
// and each kind of mistake is one clear error naming the file and the line.
#include <gtest/gtest.h>

#include "core/error.h"
#include "jobs/job_file.h"
#include "tests/common/test_util.h"

namespace arche::jobs::test {
namespace {

using arche::test::TempDir;

std::string error_of(const std::string& text) {
  TempDir dir;
  const std::string path = dir.file("j.toml");
  arche::test::write_file(path, {text.begin(), text.end()});
  try {
    load_job_file(path);
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::usage);
    std::string m = e.what();
    return m.substr(m.find(": ") + 2);
  }
  return "parsed";
}

TEST(JobFile, TheExampleParses) {
  const Job job = load_job_file(std::string(ARCHE_SOURCE_DIR) + "/examples/job.toml");
  EXPECT_EQ(job.name, "nightly");
  EXPECT_EQ(job.repository, "/srv/backup/arche");
  EXPECT_EQ(job.passphrase.credential, "arche-passphrase");
  EXPECT_EQ(job.schedule, "*-*-* 01:30:00");
  EXPECT_EQ(job.retention.daily, 7);
  EXPECT_EQ(job.retention.weekly, 4);
  EXPECT_EQ(job.retention.monthly, 12);
  ASSERT_EQ(job.sources.size(), 3u);
  EXPECT_EQ(job.sources[0].kind, JobSource::Kind::vm);
  EXPECT_EQ(job.sources[0].disks.size(), 2u);
  EXPECT_EQ(job.sources[2].kind, JobSource::Kind::files);
  ASSERT_EQ(job.offsite.size(), 1u);
  EXPECT_EQ(job.offsite[0].bwlimit, 4u << 20);
  EXPECT_FALSE(job.hooks.on_failure.empty());
}

TEST(JobFile, MistakesNameTheKeyAndTheLine) {
  const std::string head = "repository = \"/r\"\npassphrase-file = \"/p\"\n";
  const std::string vm = "[[vm]]\nname = \"web\"\ndisks = [\"/d.raw\"]\n";
  EXPECT_EQ(error_of(head + vm + "[retention]\nkeep-daily = -1\n"),
            "'keep-daily' must be a whole number from 0 to 100000 (line 7)");
  EXPECT_EQ(error_of(head + "colour = \"red\"\n" + vm), "unknown key 'colour' (line 3)");
  EXPECT_EQ(error_of(head + vm + "colour = \"red\"\n"), "unknown key 'colour' in [[vm]] (line 6)");
  EXPECT_EQ(error_of(head + vm + vm), "two sources are named 'web' (line 6)");
  EXPECT_EQ(error_of(head), "nothing to back up: add a [[vm]] or [[files]] table");
  EXPECT_EQ(error_of("repository = \"/r\"\n" + vm),
            "give exactly one of passphrase-file, passphrase-env and passphrase-credential");
  EXPECT_EQ(error_of(head + "passphrase-env = \"X\"\n" + vm),
            "give exactly one of passphrase-file, passphrase-env and passphrase-credential");
  EXPECT_EQ(error_of(head + "[[vm]]\nname = \"web\"\n"), "[[vm]] web has no 'disks' (line 3)");
  EXPECT_EQ(error_of(head + "[[vm]]\nname = \"a b\"\ndisks = [\"/d\"]\n"),
            "bad source name 'a b' (1-64 characters, no '/', ':', braces or spaces) (line 3)");
  EXPECT_EQ(error_of(head + vm + "[[offsite]]\nbwlimit = \"1M\"\n"), "an [[offsite]] has no 'repository' (line 6)");
  EXPECT_EQ(error_of(head + "[[files]]\nname = \"etc\"\npaths = \"/etc\"\n"),
            "'paths' must be a list of paths, e.g. [\"/srv/data\"] (line 5)");
}

TEST(JobFile, RelativePathsAreTakenFromTheJobFilesDirectory) {
  TempDir dir;
  const std::string text =
      "repository = \"repo\"\npassphrase-file = \"pass\"\n[[files]]\nname = \"d\"\npaths = [\"data/x\"]\n";
  arche::test::write_file(dir.file("j.toml"), {text.begin(), text.end()});
  const Job job = load_job_file(dir.file("j.toml"));
  EXPECT_EQ(job.passphrase.file, dir.file("pass"));
  EXPECT_EQ(job.sources[0].paths[0], dir.file("data/x"));
  EXPECT_EQ(job.repository, dir.file("repo")) << "a local repository too";
  EXPECT_EQ(job.name, "j");
  EXPECT_EQ(job.history_path(), dir.file("j.toml.history"));
}

}  // namespace
}  // namespace arche::jobs::test
