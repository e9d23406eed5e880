#include "jobs/hooks.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/file.h"

extern char** environ;

namespace arche::jobs {

std::string run_hook(const std::string& command, const std::string& input, const std::string& job,
                     const std::string& result) {
  // The environment is built before fork(): between fork and exec a child of a
  // threaded process may only call async-signal-safe functions.
  std::vector<std::string> env{"ARCHE_JOB=" + job, "ARCHE_JOB_RESULT=" + result};
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, "ARCHE_JOB=", 10) != 0 && std::strncmp(*e, "ARCHE_JOB_RESULT=", 17) != 0) env.emplace_back(*e);
  std::vector<char*> envp;
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno(errno, "pipe");
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  const pid_t pid = ::fork();
  if (pid < 0) throw_errno(errno, "fork");
  if (pid == 0) {
    ::dup2(read_end.get(), 0);
    ::execle("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr), envp.data());
    ::_exit(127);
  }
  read_end.reset();
  // A hook that does not read its input must not kill arche with SIGPIPE.
  struct sigaction ignore {}, old {};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ignore, &old);
  for (size_t done = 0; done < input.size();) {
    const ssize_t n = ::write(write_end.get(), input.data() + done, input.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the hook closed its input: it has what it wanted
    done += size_t(n);
  }
  write_end.reset();
  ::sigaction(SIGPIPE, &old, nullptr);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) throw_errno(errno, "waitpid");
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {};
  const std::string why = WIFEXITED(status) ? fmt::format("exited with status {}", WEXITSTATUS(status))
                                            : fmt::format("killed by signal {}", WTERMSIG(status));
  return fmt::format("'{}' {}", command, why);
}

}  // namespace arche::jobs
