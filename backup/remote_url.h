// The parts of a remote repository URL, `scheme://[user@]host[:port][/path]`, shared by
// the SFTP and S3 stores. Hosts may be names, IPv4 addresses or bracketed IPv6
// addresses ("[::1]"); user and path are percent-decoded. A password in the URL
// ("user:secret@host") is refused: it would sit in shell history and `ps`
// (docs/storage.md says where secrets come from instead).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace arche::backup {

struct RemoteUrl {
  std::string scheme;  // "sftp", "s3", "s3+http"
  std::string user;    // "" when absent
  std::string host;    // without brackets
  uint16_t port = 0;   // 0 when absent
  std::string path;    // decoded, with its leading '/'; "" when absent

  // "host", "host:port" or "[v6]:port", as it goes into messages and Host headers.
  std::string authority() const;
};

// Throws a usage error naming the URL; a URL with a password part is refused before
// anything else, in a message that does not repeat it.
RemoteUrl parse_remote_url(const std::string& url);

// The scheme of `url` in lower case ("" when it has none: a local path).
std::string url_scheme(const std::string& url);

}  // namespace arche::backup
