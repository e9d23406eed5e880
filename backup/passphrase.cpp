#include "backup/passphrase.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>

#include "core/error.h"
#include "core/file.h"
#include "core/log.h"

extern char** environ;

namespace arche::backup {

namespace {

// Longest passphrase accepted; anything longer is almost certainly the wrong file.
constexpr size_t kMaxPassphrase = 4096;

// Appends what `fd` delivers to `out` until EOF, refusing more than kMaxPassphrase.
void read_all(int fd, SecretBytes& out, size_t& used, const std::string& what) {
  for (;;) {
    if (used == out.size()) fail(ErrorCategory::usage, "{}: passphrase longer than {} bytes", what, kMaxPassphrase);
    ssize_t n = ::read(fd, out.data() + used, out.size() - used);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno(errno, "read passphrase from " + what);
    }
    if (n == 0) return;
    used += static_cast<size_t>(n);
  }
}

SecretBytes finish(SecretBytes buffer, size_t used, const std::string& what) {
  // One trailing newline (and a \r before it) is how files and commands end lines.
  if (used && buffer.data()[used - 1] == '\n') --used;
  if (used && buffer.data()[used - 1] == '\r') --used;
  buffer.shrink(used);
  if (used == 0) fail(ErrorCategory::usage, "{} gave an empty passphrase", what);
  return buffer;
}

SecretBytes from_file(const std::string& path) {
  File f = File::open(path, OpenMode::read_only);
  struct stat st {};
  if (::fstat(f.fd(), &st) == 0 && (st.st_mode & S_IROTH))
    warn("passphrase file {} is readable by every user of this machine (chmod 600 it)", path);
  SecretBytes buffer(kMaxPassphrase + 1);
  size_t used = 0;
  read_all(f.fd(), buffer, used, path);
  return finish(std::move(buffer), used, "passphrase file " + path);
}

SecretBytes from_command(const std::string& command) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw_errno(errno, "pipe for --passphrase-command");
  UniqueFd read_end(pipe_fds[0]), write_end(pipe_fds[1]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), STDOUT_FILENO);
  const char* argv[] = {"/bin/sh", "-c", command.c_str(), nullptr};
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, "/bin/sh", &actions, nullptr, const_cast<char* const*>(argv), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw_errno(rc, "run --passphrase-command");
  write_end.reset();
  SecretBytes buffer(kMaxPassphrase + 1);
  size_t used = 0;
  try {
    read_all(read_end.get(), buffer, used, "--passphrase-command");
  } catch (...) {
    read_end.reset();
    int ignored;
    ::waitpid(pid, &ignored, 0);
    throw;
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    fail(ErrorCategory::usage, "--passphrase-command failed (exit status {})",
         WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  return finish(std::move(buffer), used, "--passphrase-command");
}

// Passphrases taken out of the environment by capture_passphrase_environment.
std::map<std::string, SecretBytes>& captured() {
  static std::map<std::string, SecretBytes> values;
  return values;
}

// Moves the variable's value into locked memory and wipes the environment's copy so
// it lingers neither in /proc/PID/environ nor in a core dump, and is not inherited by
// programs arche starts.
void capture(const std::string& name) {
  char* value = std::getenv(name.c_str());
  if (!value) return;
  size_t n = std::strlen(value);
  SecretBytes buffer(n);
  if (n) std::memcpy(buffer.data(), value, n);
  wipe(value, n);
  ::unsetenv(name.c_str());
  captured()[name] = std::move(buffer);
}

// The captured value, or nullptr when the variable was not set.
const SecretBytes* environment_secret(const std::string& name) {
  capture(name);
  auto it = captured().find(name);
  return it == captured().end() ? nullptr : &it->second;
}

SecretBytes from_environment(const std::string& name) {
  const SecretBytes* value = environment_secret(name);
  if (!value) return {};
  if (value->size() > kMaxPassphrase) fail(ErrorCategory::usage, "{}: passphrase longer than {} bytes", name, kMaxPassphrase);
  if (value->size() == 0) fail(ErrorCategory::usage, "{} is set but empty", name);
  SecretBytes copy(value->size());
  std::memcpy(copy.data(), value->data(), value->size());
  return copy;
}

// A non-empty environment variable that names a file or a command (no secret).
std::string setting(const std::string& name) {
  if (name.empty()) return {};
  const char* v = std::getenv(name.c_str());
  return v ? v : "";
}

SecretBytes from_terminal(const std::string& prompt) {
  int fd = ::open("/dev/tty", O_RDWR | O_CLOEXEC);
  if (fd < 0) return {};
  UniqueFd tty(fd);
  termios saved{};
  if (::tcgetattr(fd, &saved) != 0) return {};
  termios quiet = saved;
  quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  quiet.c_lflag |= ECHONL;
  if (::write(fd, prompt.data(), prompt.size()) < 0) return {};
  ::tcsetattr(fd, TCSAFLUSH, &quiet);
  SecretBytes buffer(kMaxPassphrase + 1);
  size_t used = 0;
  bool ok = true;
  while (used < buffer.size()) {
    char c;
    ssize_t n = ::read(fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ok = used > 0;
      break;
    }
    if (c == '\n') break;
    buffer.data()[used++] = static_cast<uint8_t>(c);
  }
  ::tcsetattr(fd, TCSAFLUSH, &saved);
  if (!ok) fail(ErrorCategory::usage, "no passphrase entered");
  if (used > kMaxPassphrase) fail(ErrorCategory::usage, "passphrase longer than {} bytes", kMaxPassphrase);
  return finish(std::move(buffer), used, "the terminal");
}

bool stdin_is_terminal() { return ::isatty(STDIN_FILENO) == 1; }

}  // namespace

PassphraseSource new_passphrase_source(std::string file, std::string command, std::string prompt) {
  PassphraseSource s;
  s.file = std::move(file);
  s.command = std::move(command);
  s.file_option = "--new-passphrase-file";
  s.command_option = "--new-passphrase-command";
  s.env = "ARCHE_NEW_PASSPHRASE";
  s.file_env.clear();
  s.command_env.clear();
  s.prompt = std::move(prompt);
  return s;
}

PassphraseSource destination_passphrase_source(std::string file, std::string command, std::string prompt) {
  PassphraseSource s;
  s.file = std::move(file);
  s.command = std::move(command);
  s.file_option = "--dst-passphrase-file";
  s.command_option = "--dst-passphrase-command";
  s.env = "ARCHE_DST_PASSPHRASE";
  s.file_env = "ARCHE_DST_PASSPHRASE_FILE";
  s.command_env = "ARCHE_DST_PASSPHRASE_COMMAND";
  s.prompt = std::move(prompt);
  return s;
}

void capture_passphrase_environment() {
  capture("ARCHE_PASSPHRASE");
  capture("ARCHE_NEW_PASSPHRASE");
  capture("ARCHE_DST_PASSPHRASE");
}

bool passphrase_given(const PassphraseSource& source) {
  return !source.file.empty() || !source.command.empty() || !setting(source.file_env).empty() ||
         !setting(source.command_env).empty() || environment_secret(source.env) != nullptr;
}

SecretBytes read_passphrase(const PassphraseSource& source) {
  if (!source.file.empty() && !source.command.empty())
    fail(ErrorCategory::usage, "give either {} or {}, not both", source.file_option, source.command_option);
  if (!source.file.empty()) return from_file(source.file);
  if (!source.command.empty()) return from_command(source.command);
  const std::string file = setting(source.file_env), command = setting(source.command_env);
  if (!file.empty() && !command.empty())
    fail(ErrorCategory::usage, "both {} and {} are set; unset one", source.file_env, source.command_env);
  if (!file.empty()) return from_file(file);
  if (!command.empty()) return from_command(command);
  if (SecretBytes env = from_environment(source.env); env.size()) return env;
  if (stdin_is_terminal())
    if (SecretBytes typed = from_terminal(source.prompt); typed.size()) return typed;
  std::string variables = source.env;
  if (!source.file_env.empty()) variables += " (or " + source.file_env + ", " + source.command_env + ")";
  fail(ErrorCategory::usage, "no passphrase: set {}, or give {} FILE or {} CMD", variables, source.file_option,
       source.command_option);
}

SecretBytes read_new_passphrase(const PassphraseSource& source) {
  if (!passphrase_given(source) && stdin_is_terminal()) {
    SecretBytes first = from_terminal(source.prompt);
    if (!first.size()) fail(ErrorCategory::usage, "no terminal to ask for the new passphrase");
    SecretBytes second = from_terminal("again: ");
    if (first.size() != second.size() || std::memcmp(first.data(), second.data(), first.size()) != 0)
      fail(ErrorCategory::usage, "the two passphrases differ");
    return first;
  }
  return read_passphrase(source);
}

}  // namespace arche::backup
