// A real OpenSSH sshd for tests, on 127.0.0.1 and a free port, with its own host and
// user keys and sshd_config in a temporary directory (internal-sftp, keys only,
// StrictModes no). Nothing of the system's sshd is used or touched, except that sshd
// running as root needs its privilege-separation directory /run/sshd, which is made
// when missing, as the openssh-server package does at boot.
//
// Part of the library arche_test_servers, for any test binary that needs an SFTP
// peer: the store tests here, the end-to-end repository tests, bench helpers.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>

#include "backup/store_sftp.h"
#include "tests/common/test_util.h"

namespace arche::test {

class SshServer {
 public:
  SshServer();  // generates the keys and starts sshd; throws when it does not come up
  ~SshServer();
  SshServer(const SshServer&) = delete;
  SshServer& operator=(const SshServer&) = delete;

  uint16_t port() const { return port_; }
  const std::string& user() const { return user_; }
  // A directory the server's user may write: repositories go below it.
  std::string data_dir() const { return dir_.file("data"); }
  // sftp://USER@127.0.0.1:PORT/ABSOLUTE-PATH of `relative` below data_dir().
  std::string url(const std::string& relative) const;

  std::string known_hosts_file() const { return dir_.file("known_hosts"); }
  std::string user_key_file() const { return dir_.file("user_key"); }
  // "SHA256:..." of the host key, as ssh-keygen -l prints it.
  const std::string& host_fingerprint() const { return fingerprint_; }

  // Store options that trust this server and use its user key, nothing else of the
  // environment (no agent, no password, no ~/.ssh/config); short retries.
  backup::SftpOptions options() const;
  // The same as environment variables, for tests that run the arche CLI.
  std::map<std::string, std::string> environment() const;

  // SIGKILL to the sessions' processes only: connections drop, new ones are accepted.
  void kill_connections();
  // SIGKILL to sshd and every session: the server is gone until start().
  void kill();
  // Starts sshd again on the same port with the same keys.
  void start();
  // A new host key (the server "was reinstalled"): known_hosts now holds the old one.
  void replace_host_key();

 private:
  void write_config();
  std::string read_fingerprint() const;

  TempDir dir_;
  uint16_t port_ = 0;
  std::string user_;
  std::string fingerprint_;
  pid_t pid_ = -1;
};

// A free TCP port on 127.0.0.1 at the time of the call.
uint16_t free_port();

}  // namespace arche::test
