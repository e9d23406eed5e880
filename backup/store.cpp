// Which Store a repository URL names, and the object names every store accepts. The
// one place that knows the schemes, so a new backend is one hunk here (docs/storage.md).
#include "backup/store.h"

#include <algorithm>

#include "backup/remote_url.h"
#include "backup/store_local.h"
#include "backup/store_remote.h"
#include "core/error.h"

namespace arche::backup {

namespace {

[[noreturn]] void unknown_scheme(const std::string& url, const std::string& scheme) {
  fail(ErrorCategory::usage, "{}: unknown repository scheme '{}' (a directory, sftp://..., s3://... or s3+http://...)",
       url, scheme);
}

}  // namespace

void check_object_name(std::string_view name, const std::string& location) {
  bool ok = !name.empty() && name.size() <= 1024;
  for (std::string_view rest = name; ok;) {
    const size_t slash = rest.find('/');
    const std::string_view part = rest.substr(0, slash);
    ok = !part.empty() && part != "." && part != ".." &&
         std::none_of(part.begin(), part.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; });
    if (slash == std::string_view::npos) break;
    rest = rest.substr(slash + 1);
  }
  if (!ok) fail(ErrorCategory::usage, "{}: '{}' is not a valid object name", location, name);
}

std::unique_ptr<Store> open_store(const std::string& url) {
  const std::string scheme = url_scheme(url);
  if (scheme.empty()) return std::make_unique<LocalStore>(url);
  if (std::unique_ptr<Store> remote = open_remote_store(url)) return remote;
  unknown_scheme(url, scheme);
}

// A remote store has no directory to make: its objects' parents come with them (SFTP
// makes them on write, S3 has none), so creating is opening; Repository::init then
// refuses a location that already holds a repository.
std::unique_ptr<Store> create_store(const std::string& url) {
  const std::string scheme = url_scheme(url);
  if (scheme.empty()) return LocalStore::create(url);
  if (std::unique_ptr<Store> remote = open_remote_store(url)) return remote;
  unknown_scheme(url, scheme);
}

}  // namespace arche::backup
