// One authenticated SSH connection (libssh) with a channel running the "sftp"
// subsystem. What happens when it is made:
//
//  1. TCP connect within the connect timeout; ~/.ssh/config applies as it does for ssh
//     (Host aliases, HostName, Port, User, IdentityFile), the URL's own parts win.
//  2. The server's host key is checked against the known_hosts file
//     (ARCHE_SSH_KNOWN_HOSTS, else ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts).
//     An unknown key, a changed key or a key of another type is refused, with the
//     SHA-256 fingerprint of what the server offered: never accepted silently, never
//     added by arche (the admin checks the fingerprint and adds it with ssh-keyscan).
//  3. Authentication, in order: the ssh agent (SSH_AUTH_SOCK), the key files
//     (ARCHE_SSH_KEY, else ~/.ssh/id_ed25519, id_ecdsa, id_rsa; an encrypted key's
//     passphrase from ARCHE_SSH_KEY_PASSPHRASE[_FILE|_COMMAND]), then a password from
//     ARCHE_SSH_PASSWORD[_FILE|_COMMAND] or a terminal prompt — never from the URL or
//     the command line. Secrets read once are kept in locked memory (SshSecrets) for
//     reconnections, since the environment variables are wiped after reading.
#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "backup/crypto.h"
#include "backup/passphrase.h"

// libssh's handles (<libssh/libssh.h> declares them the same way), so that this header
// does not bring all of libssh to whoever configures a store.
typedef struct ssh_session_struct* ssh_session;
typedef struct ssh_channel_struct* ssh_channel;

namespace arche::backup::sftp {

struct Endpoint {
  std::string user;  // "" : ~/.ssh/config's or the local user name
  std::string host;
  uint16_t port = 0;  // 0 : ~/.ssh/config's or 22
  std::string label;  // "sftp://user@host:port/path", for messages
};

struct SshOptions {
  std::string known_hosts;  // "" : ~/.ssh/known_hosts (+ the global file)
  bool global_known_hosts = true;
  std::vector<std::string> identity_files;
  std::string agent_socket;  // "" : no agent
  std::optional<PassphraseSource> password;
  std::optional<PassphraseSource> key_passphrase;
  std::chrono::seconds connect_timeout{15};
  bool read_ssh_config = true;

  // From the environment variables named above.
  static SshOptions from_environment();
};

// The password and key passphrase, read at most once per store.
struct SshSecrets {
  std::mutex mutex;
  std::optional<SecretBytes> password;
  std::optional<SecretBytes> key_passphrase;
};

class SshConnection {
 public:
  // Throws io (cannot connect), crypto (host key refused) or permission
  // (authentication failed) errors naming the endpoint.
  SshConnection(const Endpoint& endpoint, const SshOptions& options, SshSecrets& secrets);
  ~SshConnection();
  SshConnection(const SshConnection&) = delete;
  SshConnection& operator=(const SshConnection&) = delete;

  ssh_session session() const { return session_; }
  ssh_channel channel() const { return channel_; }

 private:
  void verify_host_key(const Endpoint& endpoint, const SshOptions& options);
  void authenticate(const Endpoint& endpoint, const SshOptions& options, SshSecrets& secrets);

  ssh_session session_ = nullptr;
  ssh_channel channel_ = nullptr;
};

// "ED25519 SHA256:base64..." of the key the server offered on this session.
std::string server_key_fingerprint(ssh_session session);

}  // namespace arche::backup::sftp
