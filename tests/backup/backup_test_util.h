// Helpers of the backup tests: a repository made through the CLI with a passphrase
// from the environment (as cron jobs give it), fixtures built at test time.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backup/repository.h"
#include "backup/snapshot.h"
#include "core/file.h"
#include "tests/common/test_util.h"

namespace arche::backup::test {

using arche::test::CommandResult;
using arche::test::TempDir;

inline constexpr const char* kPassphrase = "correct horse battery staple";

// Puts the passphrase into ARCHE_PASSPHRASE for the programs the test runs.
void use_passphrase(const std::string& passphrase = kPassphrase);

// `arche backup ARGS...`
CommandResult backup(const std::vector<std::string>& args);
// The same, and a test failure (with stderr) unless it exits 0.
CommandResult backup_ok(const std::vector<std::string>& args);

// `arche backup init` with a cheap KDF: tests unlock the repository hundreds of times.
void init_repo(const std::string& repo, const std::vector<std::string>& extra = {});
std::unique_ptr<Repository> open_repo(const std::string& repo);

// A small disk image like the benchmark's (tests/backup/make_test_image.sh).
void make_test_image(const std::string& path, const std::string& size = "96M",
                     const std::string& marker = "Kundendaten Mueller GmbH");
void write_random_file(const std::string& path, size_t size, uint64_t seed);
bool same_content(const std::string& a, const std::string& b);
// Every regular file below `dir`.
std::vector<std::string> files_below(const std::string& dir);
// True when `needle` occurs in the file.
bool file_contains(const std::string& path, const std::string& needle);

// A pid that belonged to a process of this machine that has exited.
pid_t dead_pid();

// Rewrites one snapshot's manifest (its id changes with its content): how tests give
// snapshots other times or hosts than the machine's. Returns the new id.
std::string rewrite_snapshot(const std::string& repo, const std::string& id,
                             const std::function<void(Snapshot&)>& change);

// `arche ARGS...` (with `program`: ARGS[0] from PATH with the rest) started in the
// background, stdout and stderr to files in `dir`.
class Background {
 public:
  Background(const std::vector<std::string>& args, const std::string& dir, bool program = false);
  ~Background();
  pid_t pid() const { return pid_; }
  // Sends `sig`; returns false when the process had ended already.
  bool signal(int sig);
  // Waits (at most 60 s) until arche itself runs and has its handler for `sig` in
  // place: a signal sent sooner meets the default action and kills it without a
  // word, which is not what a test of arche's clean stop means to try. False when
  // the process ended first.
  bool wait_until_catching(int sig);
  // Waits; the exit code, or 128 + the signal that ended it.
  int wait();
  bool finished();  // without waiting
  std::string err() const;

 private:
  pid_t pid_ = 0;
  int status_ = -1;
  std::string err_path_;
};

// A fixture with a fresh repository in a temporary directory, the passphrase in
// the environment.
class RepositoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    use_passphrase();
    repo = dir.file("repo");
    init_repo(repo);
  }
  TempDir dir;
  std::string repo;
};

}  // namespace arche::backup::test
