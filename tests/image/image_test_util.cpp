#include "tests/image/image_test_util.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "image/format.h"

extern char** environ;

namespace arche::test {

CommandResult qemu_img(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"qemu-img"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv);
}

CommandResult qemu_io(const std::string& image, const std::string& format, const std::vector<std::string>& commands) {
  std::vector<std::string> argv{"qemu-io", "-f", format};
  for (const auto& c : commands) {
    argv.push_back("-c");
    argv.push_back(c);
  }
  argv.push_back(image);
  return run(argv);
}

std::vector<uint8_t> read_all(image::BlockDevice& dev) {
  std::vector<uint8_t> out(dev.size());
  const size_t chunk = 8 << 20;
  for (size_t pos = 0; pos < out.size(); pos += chunk)
    dev.read(pos, std::span(out.data() + pos, std::min(chunk, out.size() - pos)));
  return out;
}

std::vector<uint8_t> read_all_arche(const std::string& path, const std::string& format) {
  image::OpenOptions o;
  o.format = format;
  auto dev = image::open_image(path, o);
  return read_all(*dev);
}

std::vector<uint8_t> read_all_qemu(const std::string& path, const std::string& dir) {
  std::string out = dir + "/qemu-reference.raw";
  CommandResult r = qemu_img({"convert", "-O", "raw", path, out});
  if (r.exit_code != 0) throw std::runtime_error("qemu-img convert failed: " + r.err);
  std::vector<uint8_t> data = read_file(out);
  std::remove(out.c_str());
  return data;
}

::testing::AssertionResult qemu_check_clean(const std::string& path) {
  CommandResult r = qemu_img({"check", path});
  if (r.exit_code == 0 && r.out.find("No errors were found") != std::string::npos)
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "qemu-img check " << path << " exit " << r.exit_code << ":\n"
                                       << r.out << r.err;
}

ChildProcess::ChildProcess(const std::vector<std::string>& argv) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, dir_.file("out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, dir_.file("err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  // Default dispositions and an empty mask, whatever the test runner set.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int rc = posix_spawnp(&pid_, args[0], &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) throw std::runtime_error("cannot run " + argv[0] + ": " + std::strerror(rc));
}

ChildProcess::~ChildProcess() {
  if (running()) {
    ::kill(pid_, SIGKILL);
    wait();
  }
}

bool ChildProcess::running() {
  if (status_ >= 0) return false;
  int st = 0;
  pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return false;
  }
  return r == 0;
}

void ChildProcess::signal(int sig) {
  if (status_ < 0) ::kill(pid_, sig);
}

int ChildProcess::wait() {
  while (status_ < 0) {
    int st = 0;
    pid_t r = ::waitpid(pid_, &st, 0);
    if (r == pid_) status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    else if (r < 0 && errno != EINTR) throw std::runtime_error("waitpid failed");
  }
  return status_;
}

std::string ChildProcess::out() const {
  std::vector<uint8_t> b = read_file(dir_.file("out"));
  return std::string(b.begin(), b.end());
}

std::string ChildProcess::err() const {
  std::vector<uint8_t> b = read_file(dir_.file("err"));
  return std::string(b.begin(), b.end());
}

bool wait_for(const std::function<bool()>& done, double seconds) {
  auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

}  // namespace arche::test
