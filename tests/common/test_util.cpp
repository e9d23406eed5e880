#include "tests/common/test_util.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/filesystem.hpp>
#include <cstring>
#include <fstream>
#include <random>
#include <stdexcept>

extern char** environ;

namespace arche::test {

TempDir::TempDir() {
  const char* base = std::getenv("ARCHE_TEST_TMPDIR");
  std::string templ = std::string(base ? base : "/var/tmp") + "/arche-test-XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (!::mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed: " + std::string(std::strerror(errno)));
  path_ = buf.data();
}

TempDir::~TempDir() {
  boost::system::error_code ec;
  boost::filesystem::remove_all(path_, ec);
}

CommandResult run(const std::vector<std::string>& argv, const std::string& stdin_data) {
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  CommandResult result;
  if (rc != 0) {
    ::close(in[1]);
    ::close(out[0]);
    ::close(err[0]);
    result.exit_code = 127;
    result.err = "cannot run " + argv[0] + ": " + std::strerror(rc);
    return result;
  }
  // Feed stdin and drain both outputs without deadlocking on full pipes.
  size_t fed = 0;
  if (stdin_data.empty()) ::close(in[1]);
  bool in_open = !stdin_data.empty(), out_open = true, err_open = true;
  char buf[65536];
  while (out_open || err_open || in_open) {
    pollfd fds[3];
    int n = 0;
    if (out_open) fds[n++] = {out[0], POLLIN, 0};
    if (err_open) fds[n++] = {err[0], POLLIN, 0};
    if (in_open) fds[n++] = {in[1], POLLOUT, 0};
    if (::poll(fds, n, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < n; ++i) {
      if (!fds[i].revents) continue;
      if (fds[i].fd == in[1]) {
        ssize_t w = ::write(in[1], stdin_data.data() + fed, stdin_data.size() - fed);
        if (w > 0) fed += static_cast<size_t>(w);
        if (w <= 0 || fed == stdin_data.size()) {
          ::close(in[1]);
          in_open = false;
        }
        continue;
      }
      ssize_t r = ::read(fds[i].fd, buf, sizeof buf);
      bool is_out = fds[i].fd == out[0];
      if (r <= 0) {
        ::close(fds[i].fd);
        (is_out ? out_open : err_open) = false;
      } else {
        (is_out ? result.out : result.err).append(buf, static_cast<size_t>(r));
      }
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

std::string arche_binary() { return ARCHE_BINARY; }

CommandResult arche(const std::vector<std::string>& args) {
  std::vector<std::string> argv{arche_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv);
}

bool have_program(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "/usr/bin:/bin";
  for (size_t start = 0; start <= p.size();) {
    size_t end = p.find(':', start);
    if (end == std::string::npos) end = p.size();
    std::string candidate = p.substr(start, end - start) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return true;
    start = end + 1;
  }
  for (const char* dir : {"/usr/sbin", "/sbin"})
    if (::access((std::string(dir) + "/" + name).c_str(), X_OK) == 0) return true;
  return false;
}

std::vector<uint8_t> random_bytes(size_t size, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> out(size);
  for (size_t i = 0; i < size; i += 8) {
    uint64_t v = rng();
    std::memcpy(out.data() + i, &v, std::min<size_t>(8, size - i));
  }
  return out;
}

void write_file(const std::string& path, const std::vector<uint8_t>& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  if (!f) throw std::runtime_error("cannot write " + path);
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + path);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

bool is_root() { return ::geteuid() == 0; }

LoopMount::LoopMount(const std::string& image, const std::string& dir, const std::string& options) : dir_(dir) {
  boost::filesystem::create_directories(dir);
  CommandResult r = run({"mount", "-o", "loop," + options, image, dir});
  if (r.exit_code != 0) throw std::runtime_error("mount " + image + ": " + r.err);
  mounted_ = true;
}

LoopMount::~LoopMount() { unmount(); }

void LoopMount::unmount() {
  if (!mounted_) return;
  mounted_ = false;
  for (int attempt = 0; attempt < 10; ++attempt) {
    if (run({"umount", dir_}).exit_code == 0) return;
    ::usleep(200000);  // a process of the test may still hold a file open
  }
  run({"umount", "-l", dir_});
}

}  // namespace arche::test
