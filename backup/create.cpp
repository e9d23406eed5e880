#include "backup/create.h"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>

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

}  // namespace

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
  validate_snapshot_name(options.name);
  if (options.images.empty() && options.paths.empty())
    fail(ErrorCategory::usage, "nothing to back up: give --image FILE and/or PATHs");
  const std::vector<std::string> paths = normalize_backup_paths(options.paths);
  const int level = options.compression_level == INT32_MIN ? repo.settings().compression_level : options.compression_level;
  if (level < -7 || level > 19) fail(ErrorCategory::usage, "compression level {} outside -7..19", level);

  RepoLock lock(repo, LockMode::shared, "backup create " + options.name);
  if (lock.only_local_holders()) {
    if (size_t n = repo.remove_dead_temp_files()) note("removed {} temporary files of interrupted runs", n);
  }
  repo.load_index(/*adopt_unindexed=*/true);
  std::vector<std::string> damaged;
  std::vector<Snapshot> history = load_snapshots(repo, &damaged);
  for (const std::string& d : damaged) warn("{}", d);
  for (const Snapshot& s : history)
    if (s.name == options.name)
      fail(ErrorCategory::exists, "a snapshot named '{}' exists already ({})", options.name, s.short_id());

  Snapshot snap;
  snap.name = options.name;
  snap.time_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
  snap.host = this_host();
  snap.user = this_user();
  snap.tags = options.tags;
  snap.arche_version = kVersion;
  snap.paths = paths;

  const unsigned threads = options.threads ? options.threads : ThreadPool::default_threads();
  ChunkStore store(repo, level);
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

  // Packs durable, then the index that lists them, then the manifest that needs both.
  std::vector<PackInfo> packs = store.finish();
  for (const PackInfo& p : repo.unindexed_packs()) packs.push_back(p);
  if (!packs.empty()) repo.write_index_file(packs);
  const StoreStats& st = store.stats();
  snap.stats.new_blobs = st.new_blobs;
  snap.stats.new_bytes = st.new_bytes;
  snap.stats.stored_bytes = st.stored_bytes;
  snap.stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  write_snapshot(repo, snap);
  return snap;
}

}  // namespace arche::backup
