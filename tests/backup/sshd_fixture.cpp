#include "tests/backup/sshd_fixture.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <vector>

extern char** environ;

namespace arche::test {
namespace {

constexpr const char* kSshd = "/usr/sbin/sshd";  // sshd re-executes itself: an absolute path

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool accepts(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

// Every process whose parent chain leads to `root` (sshd's sessions and their helpers).
std::vector<pid_t> descendants(pid_t root) {
  std::vector<std::pair<pid_t, pid_t>> parent_of;  // pid, ppid
  if (DIR* proc = ::opendir("/proc")) {
    while (dirent* e = ::readdir(proc)) {
      const pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
      if (pid <= 0) continue;
      const std::string stat = slurp("/proc/" + std::string(e->d_name) + "/stat");
      const size_t close = stat.rfind(')');
      if (close == std::string::npos) continue;
      std::istringstream rest(stat.substr(close + 2));
      char state = 0;
      pid_t ppid = 0;
      rest >> state >> ppid;
      parent_of.emplace_back(pid, ppid);
    }
    ::closedir(proc);
  }
  std::vector<pid_t> out = {root};
  for (size_t i = 0; i < out.size(); ++i) {
    for (auto [pid, ppid] : parent_of) {
      if (ppid == out[i]) out.push_back(pid);
    }
  }
  out.erase(out.begin());
  return out;
}

void must_run(const std::vector<std::string>& argv) {
  const CommandResult r = run(argv);
  if (r.exit_code != 0) throw std::runtime_error(argv[0] + " failed: " + r.err);
}

}  // namespace

uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) throw std::runtime_error("bind to port 0 failed");
  socklen_t length = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length);
  ::close(fd);
  return ntohs(addr.sin_port);
}

SshServer::SshServer() {
  if (const passwd* pw = ::getpwuid(::geteuid())) user_ = pw->pw_name;
  if (::geteuid() == 0) ::mkdir("/run/sshd", 0755);  // sshd's privilege separation directory
  ::mkdir(data_dir().c_str(), 0700);
  must_run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "arche-test-host", "-f", dir_.file("host_key")});
  must_run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "arche-test-user", "-f", user_key_file()});
  const std::string user_pub = slurp(user_key_file() + ".pub");
  write_file(dir_.file("authorized_keys"), std::vector<uint8_t>(user_pub.begin(), user_pub.end()));
  port_ = free_port();
  write_config();
  fingerprint_ = read_fingerprint();
  start();
}

SshServer::~SshServer() { kill(); }

std::string SshServer::url(const std::string& relative) const { return "sftp://" + user_ + "@127.0.0.1:" + std::to_string(port_) + data_dir() + "/" + relative; }

void SshServer::write_config() {
  const std::string config = "Port " + std::to_string(port_) +
                             "\n"
                             "ListenAddress 127.0.0.1\n"
                             "HostKey " + dir_.file("host_key") + "\n"
                             "PidFile " + dir_.file("sshd.pid") + "\n"
                             "AuthorizedKeysFile " + dir_.file("authorized_keys") + "\n"
                             "StrictModes no\n"
                             "PermitRootLogin prohibit-password\n"
                             "PubkeyAuthentication yes\n"
                             "PasswordAuthentication no\n"
                             "KbdInteractiveAuthentication no\n"
                             "UsePAM no\n"
                             "Subsystem sftp internal-sftp\n"
                             "X11Forwarding no\n"
                             "AllowTcpForwarding no\n"
                             "PrintMotd no\n"
                             "MaxStartups 100\n"
                             "LogLevel VERBOSE\n";
  write_file(dir_.file("sshd_config"), std::vector<uint8_t>(config.begin(), config.end()));
  // known_hosts: the host key under "[127.0.0.1]:PORT", as ssh writes a non-22 port.
  std::istringstream pub(slurp(dir_.file("host_key.pub")));
  std::string type, key;
  pub >> type >> key;
  const std::string line = "[127.0.0.1]:" + std::to_string(port_) + " " + type + " " + key + "\n";
  write_file(known_hosts_file(), std::vector<uint8_t>(line.begin(), line.end()));
}

std::string SshServer::read_fingerprint() const {
  const CommandResult r = run({"ssh-keygen", "-l", "-E", "sha256", "-f", dir_.file("host_key.pub")});
  std::istringstream out(r.out);
  std::string bits, fingerprint;
  out >> bits >> fingerprint;
  return fingerprint;
}

void SshServer::start() {
  if (pid_ > 0) return;
  const std::string config = dir_.file("sshd_config"), log = dir_.file("sshd.log");
  std::vector<std::string> args = {kSshd, "-D", "-f", config, "-E", log};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  const int rc = posix_spawn(&pid_, kSshd, &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("cannot start sshd: " + std::string(std::strerror(rc)));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!accepts(port_)) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("sshd exited at start: " + slurp(log));
    }
    if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("sshd does not listen: " + slurp(log));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void SshServer::kill_connections() {
  if (pid_ <= 0) return;
  for (pid_t pid : descendants(pid_)) ::kill(pid, SIGKILL);
}

void SshServer::kill() {
  if (pid_ <= 0) return;
  const std::vector<pid_t> children = descendants(pid_);
  ::kill(pid_, SIGKILL);
  for (pid_t pid : children) ::kill(pid, SIGKILL);
  while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

void SshServer::replace_host_key() {
  kill();
  ::unlink(dir_.file("host_key").c_str());
  ::unlink(dir_.file("host_key.pub").c_str());
  must_run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "arche-test-host", "-f", dir_.file("host_key")});
  fingerprint_ = read_fingerprint();
  start();
}

backup::SftpOptions SshServer::options() const {
  backup::SftpOptions o;
  o.ssh.known_hosts = known_hosts_file();
  o.ssh.global_known_hosts = false;
  o.ssh.identity_files = {user_key_file()};
  o.ssh.agent_socket.clear();
  o.ssh.password.reset();
  o.ssh.key_passphrase.reset();
  o.ssh.read_ssh_config = false;
  o.ssh.connect_timeout = std::chrono::seconds(10);
  o.retry.attempts = 4;
  o.retry.first_delay = std::chrono::milliseconds(100);
  o.retry.max_delay = std::chrono::milliseconds(400);
  o.stall_timeout = std::chrono::seconds(30);
  return o;
}

std::map<std::string, std::string> SshServer::environment() const {
  return {{"ARCHE_SSH_KNOWN_HOSTS", known_hosts_file()}, {"ARCHE_SSH_KEY", user_key_file()}, {"SSH_AUTH_SOCK", ""}};
}

}  // namespace arche::test
