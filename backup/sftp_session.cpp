#include "backup/sftp_session.h"

#include <libssh/libssh.h>

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <mutex>

#include "core/error.h"
#include "core/log.h"

namespace arche::backup::sftp {
namespace {

const char* env(const char* name) {
  const char* value = std::getenv(name);
  return value && *value ? value : nullptr;
}

std::string home() {
  const char* h = env("HOME");
  return h ? h : "";
}

// A source only when one is configured (or someone can be asked): otherwise the
// method is not tried at all.
std::optional<PassphraseSource> secret_source(const char* base) {
  const std::string name(base);
  PassphraseSource s;
  s.env = name;
  if (const char* f = env((name + "_FILE").c_str())) s.file = f;
  if (const char* c = env((name + "_COMMAND").c_str())) s.command = c;
  if (s.file.empty() && s.command.empty() && !env(name.c_str()) && !isatty(STDIN_FILENO)) return std::nullopt;
  return s;
}

void init_libssh() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (ssh_init() != SSH_OK) fail(ErrorCategory::internal, "libssh initialisation failed");
  });
}

// The secret as a C string for libssh's API, read once and kept NUL-terminated in
// locked memory; nullptr when no source is configured.
const char* cached_secret(std::optional<SecretBytes>& slot, const std::optional<PassphraseSource>& source,
                          const std::string& prompt) {
  if (!slot) {
    if (!source) return nullptr;
    PassphraseSource s = *source;
    s.prompt = prompt;
    const SecretBytes secret = read_passphrase(s);
    SecretBytes terminated(secret.size() + 1);
    std::copy(secret.data(), secret.data() + secret.size(), terminated.data());
    terminated.data()[secret.size()] = 0;
    slot = std::move(terminated);
  }
  return reinterpret_cast<const char*>(slot->data());
}

}  // namespace

SshOptions SshOptions::from_environment() {
  SshOptions o;
  if (const char* k = env("ARCHE_SSH_KNOWN_HOSTS")) {
    o.known_hosts = k;
    o.global_known_hosts = false;  // an explicit file is the only one
  } else {
    o.known_hosts = home() + "/.ssh/known_hosts";
  }
  if (const char* key = env("ARCHE_SSH_KEY")) {
    o.identity_files = {key};
  } else {
    for (const char* name : {"id_ed25519", "id_ecdsa", "id_rsa"}) o.identity_files.push_back(home() + "/.ssh/" + name);
  }
  if (const char* agent = env("SSH_AUTH_SOCK")) o.agent_socket = agent;
  o.password = secret_source("ARCHE_SSH_PASSWORD");
  o.key_passphrase = secret_source("ARCHE_SSH_KEY_PASSPHRASE");
  return o;
}

std::string server_key_fingerprint(ssh_session session) {
  ssh_key key = nullptr;
  if (ssh_get_server_publickey(session, &key) != SSH_OK) return "(no host key)";
  unsigned char* hash = nullptr;
  size_t length = 0;
  std::string out = ssh_key_type_to_char(ssh_key_type(key));
  if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &length) == SSH_OK) {
    char* text = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, length);
    if (text) out += std::string(" ") + text;
    ssh_string_free_char(text);
    ssh_clean_pubkey_hash(&hash);
  }
  ssh_key_free(key);
  // libssh names ed25519 "ssh-ed25519"; people know the upper-case short form from ssh.
  if (out.starts_with("ssh-")) out = out.substr(4);
  for (char& c : out) {
    if (c == ' ') break;
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

SshConnection::SshConnection(const Endpoint& endpoint, const SshOptions& options, SshSecrets& secrets) {
  init_libssh();
  session_ = ssh_new();
  if (!session_) fail(ErrorCategory::no_space, "{}: cannot create an SSH session", endpoint.label);
  struct Cleanup {  // the destructor does not run when the constructor throws
    SshConnection* self;
    bool armed = true;
    ~Cleanup() {
      if (!armed) return;
      if (self->channel_) ssh_channel_free(self->channel_);
      ssh_disconnect(self->session_);
      ssh_free(self->session_);
    }
  } cleanup{this};

  const long timeout = static_cast<long>(options.connect_timeout.count());
  const int no = 0;
  ssh_options_set(session_, SSH_OPTIONS_HOST, endpoint.host.c_str());
  ssh_options_set(session_, SSH_OPTIONS_PROCESS_CONFIG, &no);  // parsed below, where we say
  if (options.read_ssh_config) ssh_options_parse_config(session_, nullptr);
  if (endpoint.port) {
    const unsigned port = endpoint.port;
    ssh_options_set(session_, SSH_OPTIONS_PORT, &port);
  }
  if (!endpoint.user.empty()) ssh_options_set(session_, SSH_OPTIONS_USER, endpoint.user.c_str());
  ssh_options_set(session_, SSH_OPTIONS_TIMEOUT, &timeout);
  if (!options.known_hosts.empty()) ssh_options_set(session_, SSH_OPTIONS_KNOWNHOSTS, options.known_hosts.c_str());
  if (!options.global_known_hosts) {
    ssh_options_set(session_, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, options.known_hosts.c_str());
  }
  // AES-GCM first: with AES-NI it costs a fraction of ChaCha20-Poly1305 per byte.
  const char* ciphers = "aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,aes256-ctr,aes128-ctr";
  ssh_options_set(session_, SSH_OPTIONS_CIPHERS_C_S, ciphers);
  ssh_options_set(session_, SSH_OPTIONS_CIPHERS_S_C, ciphers);
  ssh_options_set(session_, SSH_OPTIONS_COMPRESSION, "no");

  if (ssh_connect(session_) != SSH_OK) {
    fail(ErrorCategory::io, "{}: cannot connect: {}", endpoint.label, ssh_get_error(session_));
  }
  verify_host_key(endpoint, options);
  authenticate(endpoint, options, secrets);

  channel_ = ssh_channel_new(session_);
  if (!channel_ || ssh_channel_open_session(channel_) != SSH_OK) {
    fail(ErrorCategory::io, "{}: cannot open an SSH channel: {}", endpoint.label, ssh_get_error(session_));
  }
  if (ssh_channel_request_subsystem(channel_, "sftp") != SSH_OK) {
    fail(ErrorCategory::unsupported, "{}: the server offers no SFTP subsystem: {}", endpoint.label, ssh_get_error(session_));
  }
  cleanup.armed = false;
}

SshConnection::~SshConnection() {
  if (channel_) {
    ssh_channel_close(channel_);
    ssh_channel_free(channel_);
  }
  ssh_disconnect(session_);
  ssh_free(session_);
}

void SshConnection::verify_host_key(const Endpoint& endpoint, const SshOptions& options) {
  const ssh_known_hosts_e state = ssh_session_is_known_server(session_);
  if (state == SSH_KNOWN_HOSTS_OK) return;
  const std::string offered = server_key_fingerprint(session_);
  const std::string file = options.known_hosts.empty() ? "~/.ssh/known_hosts" : options.known_hosts;
  const std::string scan = "ssh-keyscan" + (endpoint.port && endpoint.port != 22 ? " -p " + std::to_string(endpoint.port) : "") +
                           " " + endpoint.host + " >> " + file;
  switch (state) {
    case SSH_KNOWN_HOSTS_CHANGED:
      fail(ErrorCategory::crypto,
           "{}: the host key has CHANGED (the server now offers {}); refusing to connect: this can be a man-in-the-middle "
           "attack. If the server's key really changed, remove its old line from {}",
           endpoint.label, offered, file);
    case SSH_KNOWN_HOSTS_OTHER:
      fail(ErrorCategory::crypto,
           "{}: {} holds a key of another type for this host and the server offers {}; refusing to connect", endpoint.label,
           file, offered);
    case SSH_KNOWN_HOSTS_UNKNOWN:
    case SSH_KNOWN_HOSTS_NOT_FOUND:
      fail(ErrorCategory::crypto,
           "{}: unknown host key {} (not in {}); refusing to connect. If that is the server's fingerprint, add it: {}",
           endpoint.label, offered, file, scan);
    default:
      fail(ErrorCategory::io, "{}: cannot check the host key against {}: {}", endpoint.label, file, ssh_get_error(session_));
  }
}

void SshConnection::authenticate(const Endpoint& endpoint, const SshOptions& options, SshSecrets& secrets) {
  if (ssh_userauth_none(session_, nullptr) == SSH_AUTH_SUCCESS) return;
  const int methods = ssh_userauth_list(session_, nullptr);
  std::vector<std::string> tried;
  char* user_name = nullptr;
  ssh_options_get(session_, SSH_OPTIONS_USER, &user_name);
  const std::string user = user_name ? user_name : "?";
  ssh_string_free_char(user_name);
  std::lock_guard lock(secrets.mutex);

  if (methods & SSH_AUTH_METHOD_PUBLICKEY) {
    if (!options.agent_socket.empty()) {
      ssh_options_set(session_, SSH_OPTIONS_IDENTITY_AGENT, options.agent_socket.c_str());
      tried.push_back("agent");
      if (ssh_userauth_agent(session_, nullptr) == SSH_AUTH_SUCCESS) return;
    }
    for (const std::string& path : options.identity_files) {
      if (access(path.c_str(), R_OK) != 0) continue;
      ssh_key key = nullptr;
      int rc = ssh_pki_import_privkey_file(path.c_str(), nullptr, nullptr, nullptr, &key);
      if (rc != SSH_OK) {
        // Encrypted (or unreadable): with a passphrase source, once more with it.
        const char* passphrase =
            cached_secret(secrets.key_passphrase, options.key_passphrase, "passphrase for the key " + path + ": ");
        if (passphrase) rc = ssh_pki_import_privkey_file(path.c_str(), passphrase, nullptr, nullptr, &key);
      }
      if (rc != SSH_OK) {
        note("{}: cannot use the key {} (encrypted without ARCHE_SSH_KEY_PASSPHRASE, or not a key)", endpoint.label, path);
        continue;
      }
      tried.push_back(path);
      rc = ssh_userauth_publickey(session_, nullptr, key);
      ssh_key_free(key);
      if (rc == SSH_AUTH_SUCCESS) return;
    }
  }
  const bool password = methods & SSH_AUTH_METHOD_PASSWORD;
  const bool interactive = methods & SSH_AUTH_METHOD_INTERACTIVE;
  if ((password || interactive) && options.password) {
    const char* secret = cached_secret(secrets.password, options.password, "password for " + user + "@" + endpoint.host + ": ");
    if (password) {
      tried.push_back("password");
      if (ssh_userauth_password(session_, nullptr, secret) == SSH_AUTH_SUCCESS) return;
    } else {
      // keyboard-interactive with one hidden prompt is a password prompt (PAM).
      tried.push_back("keyboard-interactive");
      int rc = ssh_userauth_kbdint(session_, nullptr, nullptr);
      for (int round = 0; rc == SSH_AUTH_INFO && round < 4; ++round) {
        const int prompts = ssh_userauth_kbdint_getnprompts(session_);
        for (int i = 0; i < prompts; ++i) {
          char echo = 0;
          ssh_userauth_kbdint_getprompt(session_, static_cast<unsigned>(i), &echo);
          ssh_userauth_kbdint_setanswer(session_, static_cast<unsigned>(i), echo ? "" : secret);
        }
        rc = ssh_userauth_kbdint(session_, nullptr, nullptr);
      }
      if (rc == SSH_AUTH_SUCCESS) return;
    }
  }

  std::string accepted;
  for (auto [bit, name] : {std::pair{SSH_AUTH_METHOD_PUBLICKEY, "publickey"}, {SSH_AUTH_METHOD_PASSWORD, "password"},
                           {SSH_AUTH_METHOD_INTERACTIVE, "keyboard-interactive"}}) {
    if (methods & bit) accepted += (accepted.empty() ? "" : ", ") + std::string(name);
  }
  std::string attempts;
  for (const std::string& t : tried) attempts += (attempts.empty() ? "" : ", ") + t;
  fail(ErrorCategory::permission, "{}: authentication as {} failed (tried: {}; the server accepts: {})", endpoint.label, user,
       attempts.empty() ? "nothing usable" : attempts, accepted.empty() ? "none" : accepted);
}

}  // namespace arche::backup::sftp
