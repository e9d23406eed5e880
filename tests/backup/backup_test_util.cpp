#include "tests/backup/backup_test_util.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>

#include <boost/filesystem.hpp>

#include "backup/passphrase.h"

extern char** environ;

namespace arche::backup::test {

void use_passphrase(const std::string& passphrase) { ::setenv("ARCHE_PASSPHRASE", passphrase.c_str(), 1); }

CommandResult backup(const std::vector<std::string>& args) {
  std::vector<std::string> all{"backup"};
  all.insert(all.end(), args.begin(), args.end());
  return arche::test::arche(all);
}

CommandResult backup_ok(const std::vector<std::string>& args) {
  CommandResult r = backup(args);
  if (r.exit_code != 0) {
    std::string line = "arche backup";
    for (const auto& a : args) line += " " + a;
    ADD_FAILURE() << line << " exited " << r.exit_code << "\nstderr: " << r.err << "\nstdout: " << r.out;
  }
  return r;
}

void init_repo(const std::string& repo, const std::vector<std::string>& extra) {
  std::vector<std::string> args{"init", repo, "--kdf-memory", "8M", "--kdf-ops", "1"};
  args.insert(args.end(), extra.begin(), extra.end());
  backup_ok(args);
}

std::unique_ptr<Repository> open_repo(const std::string& repo) {
  std::string pass = std::getenv("ARCHE_PASSPHRASE") ? std::getenv("ARCHE_PASSPHRASE") : kPassphrase;
  return Repository::open(repo, std::span(reinterpret_cast<const uint8_t*>(pass.data()), pass.size()));
}

void make_test_image(const std::string& path, const std::string& size, const std::string& marker) {
  CommandResult r = arche::test::run({std::string(ARCHE_SOURCE_DIR) + "/tests/backup/make_test_image.sh", path, size, marker});
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

void write_random_file(const std::string& path, size_t size, uint64_t seed) {
  arche::test::write_file(path, arche::test::random_bytes(size, seed));
}

bool same_content(const std::string& a, const std::string& b) {
  return arche::test::run({"cmp", "-s", a, b}).exit_code == 0;
}

std::vector<std::string> files_below(const std::string& dir) {
  std::vector<std::string> out;
  for (auto it = boost::filesystem::recursive_directory_iterator(dir); it != boost::filesystem::recursive_directory_iterator();
       ++it)
    if (boost::filesystem::is_regular_file(it->symlink_status())) out.push_back(it->path().string());
  return out;
}

bool file_contains(const std::string& path, const std::string& needle) {
  std::vector<uint8_t> data = arche::test::read_file(path);
  return std::search(data.begin(), data.end(), needle.begin(), needle.end()) != data.end();
}

pid_t dead_pid() {
  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  return child;
}

std::string rewrite_snapshot(const std::string& repo, const std::string& id,
                             const std::function<void(Snapshot&)>& change) {
  auto r = open_repo(repo);
  Snapshot s = read_snapshot(*r, id);
  change(s);
  write_snapshot(*r, s);
  if (s.id != id) r->remove_file("snapshots", id);
  return s.id;
}

Background::Background(const std::vector<std::string>& args, const std::string& dir, bool program) {
  std::vector<std::string> all;
  if (!program) all.push_back(arche::test::arche_binary());
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  err_path_ = dir + "/background.err";
  const std::string out_path = dir + "/background.out";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  int rc = ::posix_spawnp(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("posix_spawn failed");
}

Background::~Background() {
  if (status_ < 0 && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    wait();
  }
}

bool Background::signal(int sig) { return !finished() && ::kill(pid_, sig) == 0; }

bool Background::wait_until_catching(int sig) {
  const std::string exe = boost::filesystem::canonical(arche::test::arche_binary()).string();
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < give_up) {
    if (finished()) return false;
    // Between fork and exec the child is still the test; after exec, /proc shows arche.
    boost::system::error_code ec;
    const bool is_arche = boost::filesystem::read_symlink(fmt::format("/proc/{}/exe", pid_), ec).string() == exe;
    std::ifstream status(fmt::format("/proc/{}/status", pid_));
    for (std::string line; is_arche && std::getline(status, line);) {
      if (line.rfind("SigCgt:", 0) != 0) continue;
      const uint64_t caught = std::stoull(line.substr(7), nullptr, 16);
      if (caught >> (sig - 1) & 1) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ADD_FAILURE() << "arche (pid " << pid_ << ") did not install its handler for signal " << sig << " within 60 s";
  return false;
}

bool Background::finished() {
  if (status_ >= 0) return true;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) != pid_) return false;
  status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return true;
}

int Background::wait() {
  if (status_ >= 0) return status_;
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return status_;
}

std::string Background::err() const {
  std::vector<uint8_t> data = arche::test::read_file(err_path_);
  return std::string(data.begin(), data.end());
}

}  // namespace arche::backup::test
