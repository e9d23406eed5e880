#include "backup/s3_credentials.h"

#include <sys/stat.h>

#include <cstdlib>
#include <cstring>
#include <optional>

#include "backup/s3_http.h"
#include "core/error.h"
#include "core/file.h"
#include "core/log.h"

namespace arche::backup::s3 {
namespace {

SecretBytes secret_copy(std::string_view text) {
  SecretBytes out(text.size());
  std::memcpy(out.data(), text.data(), text.size());
  return out;
}

// The file's bytes in locked memory (they hold secrets).
std::optional<SecretBytes> read_secret_file(const std::string& path) {
  File file;
  try {
    file = File::open(path, OpenMode::read_only);
  } catch (const Error& e) {
    if (e.category() == ErrorCategory::not_found) return std::nullopt;
    throw;
  }
  const uint64_t size = file.size();
  if (size > (1u << 20)) fail(ErrorCategory::format, "{}: {} bytes, too large for an S3 credentials file", path, size);
  SecretBytes data(size);
  file.read_exact(0, data.span());
  return data;
}

std::string home_file(const EnvLookup& env, const char* relative) {
  const char* home = env("HOME");
  return std::string(home ? home : "") + "/" + relative;
}

}  // namespace

EnvLookup process_environment() {
  return [](const char* name) { return static_cast<const char*>(std::getenv(name)); };
}

std::vector<IniEntry> parse_ini(std::string_view text, const std::string& what) {
  std::vector<IniEntry> out;
  std::string_view section;
  size_t line_number = 0;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    std::string_view line = trim_blanks(text.substr(0, end));
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    ++line_number;
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    if (line.front() == '[') {
      if (line.back() != ']') fail(ErrorCategory::format, "{}, line {}: unterminated [section]", what, line_number);
      section = trim_blanks(line.substr(1, line.size() - 2));
      continue;
    }
    const size_t equals = line.find('=');
    if (equals == std::string_view::npos) {
      fail(ErrorCategory::format, "{}, line {}: neither [section] nor key = value", what, line_number);
    }
    out.push_back({section, trim_blanks(line.substr(0, equals)), trim_blanks(line.substr(equals + 1))});
  }
  return out;
}

Credentials load_credentials(std::string_view url_access_key, const EnvLookup& env) {
  const char* env_id = env("AWS_ACCESS_KEY_ID");
  const char* env_secret = env("AWS_SECRET_ACCESS_KEY");
  if (env_id && *env_id && env_secret && *env_secret && (url_access_key.empty() || url_access_key == env_id)) {
    Credentials out;
    out.access_key_id = env_id;
    out.secret_access_key = secret_copy(env_secret);
    if (const char* token = env("AWS_SESSION_TOKEN"); token && *token) out.session_token = secret_copy(token);
    out.source = "environment";
    return out;
  }

  const char* file_env = env("AWS_SHARED_CREDENTIALS_FILE");
  const std::string path = file_env && *file_env ? file_env : home_file(env, ".aws/credentials");
  const char* profile_env = env("AWS_PROFILE");
  const std::string profile = profile_env && *profile_env ? profile_env : "default";
  if (std::optional<SecretBytes> text = read_secret_file(path)) {
    const std::vector<IniEntry> entries = parse_ini(text->view(), path);
    auto value_of = [&](std::string_view section, std::string_view key) -> std::optional<std::string_view> {
      for (const IniEntry& e : entries) {
        if (e.section == section && e.key == key) return e.value;
      }
      return std::nullopt;
    };
    // With a key id in the URL, the profile holding it; AWS_PROFILE's own first.
    std::optional<std::string_view> chosen;
    if (url_access_key.empty()) {
      if (value_of(profile, "aws_access_key_id")) chosen = profile;
    } else if (value_of(profile, "aws_access_key_id") == url_access_key) {
      chosen = profile;
    } else {
      for (const IniEntry& e : entries) {
        if (e.key == "aws_access_key_id" && e.value == url_access_key) {
          chosen = e.section;
          break;
        }
      }
    }
    if (chosen) {
      const std::optional<std::string_view> secret = value_of(*chosen, "aws_secret_access_key");
      if (!secret || secret->empty()) {
        fail(ErrorCategory::usage, "{} [{}]: aws_access_key_id without aws_secret_access_key", path, *chosen);
      }
      struct stat st{};
      if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 0077)) {
        // Like ssh with a private key: a readable secret is worth a line, not a refusal.
        warn("{} is readable by others (chmod 600 it)", path);
      }
      Credentials out;
      out.access_key_id = std::string(*value_of(*chosen, "aws_access_key_id"));
      out.secret_access_key = secret_copy(*secret);
      if (auto token = value_of(*chosen, "aws_session_token"); token && !token->empty()) {
        out.session_token = secret_copy(*token);
      }
      out.source = path + " [" + std::string(*chosen) + "]";
      return out;
    }
  }

  if (!url_access_key.empty()) {
    fail(ErrorCategory::usage,
         "no secret for the S3 access key {}: AWS_ACCESS_KEY_ID names another key or is unset, and no profile of {} holds it",
         url_access_key, path);
  }
  fail(ErrorCategory::usage,
       "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or put them in {} (profile {})", path, profile);
}

}  // namespace arche::backup::s3
