#include "backup/create.h"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <boost/filesystem.hpp>
#include <chrono>
#include <climits>
#include <ctime>

#include "backup/chunk_store.h"
#include "backup/lock.h"
#include "backup/pipeline.h"
#include "core/error.h"
#include "core/log.h"
#include "core/version.h"

namespace arche::backup {

namespace {

std::string this_host() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

std::string this_user() {
  struct passwd pw {}, *result = nullptr;
  std::vector<char> buf(16384);
  if (::getpwuid_r(::geteuid(), &pw, buf.data(), buf.size(), &result) == 0 && result) return pw.pw_name;
  return std::to_string(::geteuid());
}

// The parent for unchanged files: the newest snapshot of this host whose paths
// overlap ours (its tree holds our files at the same places).
const Snapshot* choose_parent(const std::vector<Snapshot>& history, const std::vector<std::string>& paths,
                              const std::string& host) {
  for (auto s = history.rbegin(); s != history.rend(); ++s) {
    if (s->host != host || s->tree.empty()) continue;
    for (const std::string& p : paths)
      if (std::find(s->paths.begin(), s->paths.end(), p) != s->paths.end()) return &*s;
  }
  return nullptr;
}

void back_up(ChunkStore& store, const CreateOptions& options, const std::vector<std::string>& paths,
             const std::vector<Snapshot>& history, Snapshot& snap, unsigned threads) {
  Pipeline pipeline(threads, 2 * threads + 2);
  for (const std::string& image : options.images) {
    ImageBackupOptions o;
    o.incremental = options.incremental;
    o.force_share = options.force_share;
    ImageRecord rec = backup_image(store, pipeline, image, o, history, nullptr);
    for (const ImageRecord& other : snap.images)
      if (other.name == rec.name)
        fail(ErrorCategory::usage, "two images named '{}' ({} and {}): restore could not tell them apart", rec.name,
             other.source, rec.source);
    snap.stats.total_bytes += rec.size;
    snap.stats.bytes_read += rec.bytes_read;
    snap.images.push_back(std::move(rec));
  }
  if (!paths.empty()) {
    const Snapshot* parent = nullptr;
    if (!options.parent.empty()) parent = &resolve_snapshot(history, options.parent);
    else parent = choose_parent(history, paths, snap.host);
    if (parent) snap.parent = parent->id;
    snap.tree = backup_files(store, pipeline, paths, parent, options.files, snap.stats);
  }
}

}  // namespace

std::string expand_snapshot_name(const std::string& pattern, const std::vector<std::string>& images,
                                 int64_t now_seconds) {
  auto time_text = [&](bool utc, const std::string& format) {
    std::time_t t = static_cast<std::time_t>(now_seconds);
    std::tm tm{};
    if (utc) gmtime_r(&t, &tm);
    else localtime_r(&t, &tm);
    char buf[256];
    size_t n = std::strftime(buf, sizeof buf, format.empty() ? "%Y-%m-%dT%H:%M:%S" : format.c_str(), &tm);
    if (n == 0 && !format.empty()) fail(ErrorCategory::usage, "snapshot name: time format '{}' gives nothing", format);
    return std::string(buf, n);
  };
  std::string out;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if ((c == '{' || c == '}') && i + 1 < pattern.size() && pattern[i + 1] == c) {
      out += c;
      ++i;
      continue;
    }
    if (c == '}') fail(ErrorCategory::usage, "snapshot name '{}': a '}}' without '{{' (write '}}}}' for a brace)", pattern);
    if (c != '{') {
      out += c;
      continue;
    }
    size_t close = pattern.find('}', i);
    if (close == std::string::npos) fail(ErrorCategory::usage, "snapshot name '{}': '{{' is not closed", pattern);
    std::string field = pattern.substr(i + 1, close - i - 1), format;
    if (size_t colon = field.find(':'); colon != std::string::npos) {
      format = field.substr(colon + 1);
      field.resize(colon);
    }
    if (field == "now" || field == "utcnow") {
      out += time_text(field == "utcnow", format);
    } else if (!format.empty()) {
      fail(ErrorCategory::usage, "snapshot name: {{{}}} takes no format", field);
    } else if (field == "hostname") {
      out += this_host();
    } else if (field == "user") {
      out += this_user();
    } else if (field == "image") {
      if (images.size() != 1)
        fail(ErrorCategory::usage, "snapshot name: {{image}} needs exactly one --image (there are {})", images.size());
      out += boost::filesystem::path(images[0]).filename().string();
    } else {
      fail(ErrorCategory::usage, "snapshot name: unknown placeholder {{{}}} (now, utcnow, hostname, user, image)", field);
    }
    i = close;
  }
  return out;
}

void validate_snapshot_name(const std::string& name) {
  if (name.empty()) fail(ErrorCategory::usage, "the snapshot name is empty");
  if (name.size() > 255) fail(ErrorCategory::usage, "snapshot name longer than 255 bytes");
  if (name == "latest") fail(ErrorCategory::usage, "'latest' is reserved (it names the newest snapshot)");
  if (name.find("::") != std::string::npos) fail(ErrorCategory::usage, "a snapshot name cannot contain '::'");
  for (unsigned char c : name)
    if (c < 0x20 || c == 0x7f) fail(ErrorCategory::usage, "the snapshot name contains a control character");
}

Snapshot create_snapshot(Repository& repo, const CreateOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  const auto now = std::chrono::system_clock::now();
  const std::string name =
      expand_snapshot_name(options.name, options.images, std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count());
  validate_snapshot_name(name);
  if (options.images.empty() && options.paths.empty())
    fail(ErrorCategory::usage, "nothing to back up: give --image FILE and/or PATHs");
  const std::vector<std::string> paths = normalize_backup_paths(options.paths);
  const int level = options.compression_level == INT32_MIN ? repo.settings().compression_level : options.compression_level;
  if (level < -7 || level > 19) fail(ErrorCategory::usage, "compression level {} outside -7..19", level);

  RepoLock lock(repo, LockMode::shared, "backup create " + name);
  if (lock.only_local_holders() && !options.dry_run) {
    if (size_t n = repo.remove_dead_temp_files()) note("removed {} temporary files of interrupted runs", n);
  }
  repo.load_index(/*adopt_unindexed=*/true);
  std::vector<DamagedManifest> damaged;
  std::vector<Snapshot> history = load_snapshots(repo, &damaged);
  for (const DamagedManifest& d : damaged) warn("{} (arche backup repair snapshots removes it)", d.error);
  for (const Snapshot& s : history)
    if (s.name == name) fail(ErrorCategory::exists, "a snapshot named '{}' exists already ({})", name, s.short_id());

  Snapshot snap;
  snap.name = name;
  snap.time_ns = options.time_ns ? options.time_ns
                                 : std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  snap.host = options.host.empty() ? this_host() : options.host;
  snap.user = this_user();
  snap.tags = options.tags;
  snap.arche_version = kVersion;
  snap.paths = paths;

  const unsigned threads = options.threads ? options.threads : ThreadPool::default_threads();
  ChunkStore store(repo, level, options.dry_run);
  try {
    back_up(store, options, paths, history, snap, threads);
  } catch (const Error& e) {
    if (e.category() != ErrorCategory::interrupted) throw;
    std::vector<PackInfo> kept = store.abandon();
    fail(ErrorCategory::interrupted, "{}: no snapshot was made; the repository is as it was{}", e.what(),
         kept.empty() ? std::string()
                      : fmt::format(" apart from {} complete pack{} that the next backup reuses", kept.size(),
                                    kept.size() == 1 ? "" : "s"));
  }
  if (options.dry_run) {
    const StoreStats& st = store.stats();
    snap.stats.new_blobs = st.new_blobs;
    snap.stats.new_bytes = st.new_bytes;
    snap.stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return snap;
  }

  // Packs durable, then the index that lists them, then the manifest that needs both.
  std::vector<PackInfo> packs = store.finish();
  for (const PackInfo& p : repo.unindexed_packs()) packs.push_back(p);
  // A lock that could not be refreshed for long may have been taken for dead.
  lock.ensure_fresh();
  const std::string own_index = packs.empty() ? std::string() : repo.write_index_file(packs);
  const StoreStats& st = store.stats();
  snap.stats.new_blobs = st.new_blobs;
  snap.stats.new_bytes = st.new_bytes;
  snap.stats.stored_bytes = st.stored_bytes;
  snap.stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  lock.ensure_fresh();
  write_snapshot(repo, snap);
  // A prune beside this backup, which did not see the manifest, may have taken packs
  // the snapshot needs out of the index (it deletes them only after this backup has
  // ended): they are listed again, after the manifest, for every later prune to see.
  try {
    std::vector<PackInfo> again = repo.packs_to_index_again(packs, own_index, lock.maintenance_beside());
    if (!again.empty()) repo.write_index_file(again);
  } catch (...) {
    repo.remove_file("snapshots", snap.id);  // never leave a snapshot that cannot be restored
    throw;
  }
  return snap;
}

}  // namespace arche::backup
