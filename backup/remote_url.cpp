#include "backup/remote_url.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "core/error.h"

namespace arche::backup {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

std::string percent_decode(std::string_view text, const std::string& url) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    const int hi = i + 2 < text.size() ? hex_value(text[i + 1]) : -1;
    const int lo = i + 2 < text.size() ? hex_value(text[i + 2]) : -1;
    if (hi < 0 || lo < 0) fail(ErrorCategory::usage, "{}: bad percent escape in the URL", url);
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

}  // namespace

std::string RemoteUrl::authority() const {
  std::string out = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (port) out += ":" + std::to_string(port);
  return out;
}

std::string url_scheme(const std::string& url) {
  const size_t colon = url.find("://");
  if (colon == std::string::npos || colon == 0) return "";
  std::string scheme = url.substr(0, colon);
  const bool plain = std::all_of(scheme.begin(), scheme.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '+' || c == '-' || c == '.';
  });
  if (!plain) return "";
  std::transform(scheme.begin(), scheme.end(), scheme.begin(), [](unsigned char c) { return std::tolower(c); });
  return scheme;
}

RemoteUrl parse_remote_url(const std::string& url) {
  RemoteUrl out;
  out.scheme = url_scheme(url);
  if (out.scheme.empty()) fail(ErrorCategory::usage, "{}: not a URL (scheme://host/path)", url);
  std::string_view rest = std::string_view(url).substr(out.scheme.size() + 3);
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  // Checked first, so that no later message repeats the secret.
  const size_t at_sign = authority.rfind('@');
  if (at_sign != std::string_view::npos && authority.substr(0, at_sign).find(':') != std::string_view::npos) {
    fail(ErrorCategory::usage,
         "{}://...: the URL holds a password; give it through the environment or a file instead (docs/storage.md)",
         out.scheme);
  }
  if (slash != std::string_view::npos) out.path = percent_decode(rest.substr(slash), url);
  if (out.path.find('?') != std::string::npos || out.path.find('#') != std::string::npos) {
    fail(ErrorCategory::usage, "{}: a repository URL has no query or fragment", url);
  }

  const size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    out.user = percent_decode(authority.substr(0, at), url);
    authority = authority.substr(at + 1);
  }

  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) fail(ErrorCategory::usage, "{}: unterminated [IPv6 address]", url);
    out.host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') fail(ErrorCategory::usage, "{}: junk after the [IPv6 address]", url);
      port = after.substr(1);
    }
  } else {
    const size_t colon = authority.rfind(':');
    out.host = authority.substr(0, colon);
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (out.host.empty()) fail(ErrorCategory::usage, "{}: no host in the URL", url);
  if (!port.empty() || authority.ends_with(":")) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
      fail(ErrorCategory::usage, "{}: bad port '{}'", url, port);
    }
    out.port = static_cast<uint16_t>(value);
  }
  return out;
}

}  // namespace arche::backup
