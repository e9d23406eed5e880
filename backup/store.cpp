// Which Store a repository URL names. The one place that knows the schemes, so a new
// backend is one hunk here (docs/storage.md).
#include "backup/store.h"

#include <cctype>

#include "backup/store_local.h"
#include "core/error.h"

namespace arche::backup {

namespace {

// "sftp" for "sftp://...", "" for a local path.
std::string scheme_of(const std::string& url) {
  const size_t colon = url.find("://");
  if (colon == std::string::npos || colon == 0) return {};
  for (size_t i = 0; i < colon; ++i)
    if (!std::isalnum(static_cast<unsigned char>(url[i])) && url[i] != '+') return {};
  return url.substr(0, colon);
}

[[noreturn]] void unsupported_scheme(const std::string& url, const std::string& scheme) {
  if (scheme == "sftp" || scheme == "s3" || scheme == "s3+http")
    fail(ErrorCategory::unsupported, "{}: {} repositories are not supported by this build yet", url, scheme);
  fail(ErrorCategory::usage, "{}: unknown repository scheme '{}' (a directory, sftp://... or s3://...)", url, scheme);
}

}  // namespace

std::unique_ptr<Store> open_store(const std::string& url) {
  const std::string scheme = scheme_of(url);
  if (scheme.empty()) return std::make_unique<LocalStore>(url);
  unsupported_scheme(url, scheme);
}

std::unique_ptr<Store> create_store(const std::string& url) {
  const std::string scheme = scheme_of(url);
  if (scheme.empty()) return LocalStore::create(url);
  unsupported_scheme(url, scheme);
}

}  // namespace arche::backup
