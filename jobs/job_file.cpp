#include "jobs/job_file.h"

#include <toml++/toml.h>

#include <boost/filesystem.hpp>
#include <set>

#include "backup/remote_url.h"
#include "core/error.h"
#include "core/units.h"

namespace arche::jobs {

namespace {

namespace fs = boost::filesystem;

// The reading of one file: every error names the file and, where it can, the line.
class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)), dir_(fs::path(file_).parent_path()) {}

  [[noreturn]] void error(const toml::node& at, const std::string& message) const {
    fail(ErrorCategory::usage, "{}: {} (line {})", file_, message, at.source().begin.line);
  }

  void reject_unknown(const toml::table& t, const std::set<std::string>& known, const std::string& where) const {
    for (const auto& [key, value] : t)
      if (!known.count(std::string(key.str())))
        error(value, fmt::format("unknown key '{}'{}", key.str(), where));
  }

  std::string string(const toml::table& t, const std::string& key, std::string fallback = {}) const {
    const toml::node* n = t.get(key);
    if (!n) return fallback;
    if (auto v = n->value<std::string>()) return *v;
    error(*n, fmt::format("'{}' must be a string", key));
  }

  int64_t integer(const toml::table& t, const std::string& key, int64_t min, int64_t max, int64_t fallback) const {
    const toml::node* n = t.get(key);
    if (!n) return fallback;
    auto v = n->value<int64_t>();
    if (!v || *v < min || *v > max) error(*n, fmt::format("'{}' must be a whole number from {} to {}", key, min, max));
    return *v;
  }

  // A list of paths, relative ones taken from the job file's directory.
  std::vector<std::string> paths(const toml::table& t, const std::string& key, const std::string& where) const {
    const toml::node* n = t.get(key);
    if (!n) fail(ErrorCategory::usage, "{}: {} has no '{}' (line {})", file_, where, key, t.source().begin.line);
    const toml::array* a = n->as_array();
    if (!a || a->empty()) error(*n, fmt::format("'{}' must be a list of paths, e.g. [\"/srv/data\"]", key));
    std::vector<std::string> out;
    for (const toml::node& e : *a) {
      auto s = e.value<std::string>();
      if (!s || s->empty()) error(e, fmt::format("'{}' must be a list of paths, e.g. [\"/srv/data\"]", key));
      fs::path p(*s);
      out.push_back(p.is_absolute() ? *s : (dir_ / p).lexically_normal().string());
    }
    return out;
  }

  // [[key]] tables.
  std::vector<const toml::table*> tables(const toml::table& root, const std::string& key) const {
    std::vector<const toml::table*> out;
    const toml::node* n = root.get(key);
    if (!n) return out;
    const toml::array* a = n->as_array();
    if (!a) error(*n, fmt::format("'{}' must be written as [[{}]] tables", key, key));
    for (const toml::node& e : *a) {
      if (!e.as_table()) error(e, fmt::format("'{}' must be written as [[{}]] tables", key, key));
      out.push_back(e.as_table());
    }
    return out;
  }

  // A repository URL; a relative local path is taken from the job file's directory
  // (a timer runs the job from /).
  std::string repository(const toml::table& t, const std::string& key) const {
    std::string url = string(t, key);
    if (!url.empty() && backup::url_scheme(url).empty() && !fs::path(url).is_absolute())
      url = (dir_ / url).lexically_normal().string();
    return url;
  }

  const std::string& file() const { return file_; }

 private:
  std::string file_;
  fs::path dir_;
};

void check_source_name(const Reader& r, const toml::table& t, const std::string& name, std::set<std::string>& seen) {
  if (name.empty() || name.size() > 64 || name.find_first_of("/ \t\n:{}") != std::string::npos || name[0] == '.')
    r.error(t, fmt::format("bad source name '{}' (1-64 characters, no '/', ':', braces or spaces)", name));
  if (!seen.insert(name).second) r.error(t, fmt::format("two sources are named '{}'", name));
}

void read_retention(const Reader& r, const toml::table& root, backup::KeepPolicy& keep) {
  const toml::node* n = root.get("retention");
  if (!n) return;
  const toml::table* t = n->as_table();
  if (!t) r.error(*n, "'retention' must be a [retention] table");
  r.reject_unknown(*t, {"keep-last", "keep-hourly", "keep-daily", "keep-weekly", "keep-monthly", "keep-yearly"},
                   " in [retention]");
  constexpr int64_t kMax = 100000;
  keep.last = int(r.integer(*t, "keep-last", 0, kMax, 0));
  keep.hourly = int(r.integer(*t, "keep-hourly", 0, kMax, 0));
  keep.daily = int(r.integer(*t, "keep-daily", 0, kMax, 0));
  keep.weekly = int(r.integer(*t, "keep-weekly", 0, kMax, 0));
  keep.monthly = int(r.integer(*t, "keep-monthly", 0, kMax, 0));
  keep.yearly = int(r.integer(*t, "keep-yearly", 0, kMax, 0));
}

void read_hooks(const Reader& r, const toml::table& root, JobHooks& hooks) {
  const toml::node* n = root.get("hooks");
  if (!n) return;
  const toml::table* t = n->as_table();
  if (!t) r.error(*n, "'hooks' must be a [hooks] table");
  r.reject_unknown(*t, {"before", "after", "on-failure"}, " in [hooks]");
  hooks.before = r.string(*t, "before");
  hooks.after = r.string(*t, "after");
  hooks.on_failure = r.string(*t, "on-failure");
}

void read_passphrase(const Reader& r, const toml::table& root, JobPassphrase& p) {
  p.file = r.string(root, "passphrase-file");
  p.env = r.string(root, "passphrase-env");
  p.credential = r.string(root, "passphrase-credential");
  const int given = !p.file.empty() + !p.env.empty() + !p.credential.empty();
  if (given != 1)
    fail(ErrorCategory::usage, "{}: give exactly one of passphrase-file, passphrase-env and passphrase-credential",
         r.file());
  if (!p.file.empty() && !fs::path(p.file).is_absolute())
    p.file = (fs::path(r.file()).parent_path() / p.file).lexically_normal().string();
  if (!p.credential.empty() && p.credential.find('/') != std::string::npos)
    r.error(*root.get("passphrase-credential"), "a credential name has no '/'");
}

}  // namespace

Job load_job_file(const std::string& path) {
  Job job;
  job.path = fs::absolute(fs::path(path)).lexically_normal().string();
  Reader r(path);
  toml::table root;
  try {
    root = toml::parse_file(job.path);
  } catch (const toml::parse_error& e) {
    fail(ErrorCategory::usage, "{}: {} (line {}, column {})", path, e.description(), e.source().begin.line,
         e.source().begin.column);
  }
  r.reject_unknown(root,
                   {"name", "repository", "passphrase-file", "passphrase-env", "passphrase-credential", "schedule",
                    "randomized-delay", "verify-parts", "retention", "hooks", "vm", "files", "offsite"},
                   "");
  std::string stem = fs::path(job.path).filename().string();
  if (stem.size() > 5 && stem.ends_with(".toml")) stem.resize(stem.size() - 5);
  job.name = r.string(root, "name", stem);
  if (job.name.empty() || job.name.find_first_of(" \t\n/,") != std::string::npos)
    fail(ErrorCategory::usage, "{}: bad job name '{}' (no spaces, '/' or ',')", path, job.name);
  job.repository = r.repository(root, "repository");
  if (job.repository.empty()) fail(ErrorCategory::usage, "{}: no 'repository' given", path);
  read_passphrase(r, root, job.passphrase);
  job.schedule = r.string(root, "schedule", job.schedule);
  job.randomized_delay = r.string(root, "randomized-delay", job.randomized_delay);
  job.verify_parts = uint32_t(r.integer(root, "verify-parts", 0, 10000, job.verify_parts));
  read_retention(r, root, job.retention);
  read_hooks(r, root, job.hooks);

  std::set<std::string> names;
  for (const toml::table* t : r.tables(root, "vm")) {
    r.reject_unknown(*t, {"name", "disks"}, " in [[vm]]");
    JobSource s;
    s.kind = JobSource::Kind::vm;
    s.name = r.string(*t, "name");
    check_source_name(r, *t, s.name, names);
    s.disks = r.paths(*t, "disks", "[[vm]] " + s.name);
    job.sources.push_back(std::move(s));
  }
  for (const toml::table* t : r.tables(root, "files")) {
    r.reject_unknown(*t, {"name", "paths"}, " in [[files]]");
    JobSource s;
    s.name = r.string(*t, "name");
    check_source_name(r, *t, s.name, names);
    s.paths = r.paths(*t, "paths", "[[files]] " + s.name);
    job.sources.push_back(std::move(s));
  }
  if (job.sources.empty()) fail(ErrorCategory::usage, "{}: nothing to back up: add a [[vm]] or [[files]] table", path);
  for (const toml::table* t : r.tables(root, "offsite")) {
    r.reject_unknown(*t, {"repository", "bwlimit"}, " in [[offsite]]");
    OffsiteTarget o;
    o.repository = r.repository(*t, "repository");
    if (o.repository.empty()) r.error(*t, "an [[offsite]] has no 'repository'");
    if (const std::string limit = r.string(*t, "bwlimit"); !limit.empty()) o.bwlimit = parse_size(limit, "bwlimit");
    job.offsite.push_back(std::move(o));
  }
  return job;
}

}  // namespace arche::jobs
