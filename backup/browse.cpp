#include "backup/browse.h"

#include <algorithm>

#include "core/error.h"
#include "core/interrupt.h"
#include "volume/listing.h"
#include "volume/volume_path.h"

namespace arche::backup {

BrowseSession open_browse_session(Repository& repo, const std::string& command) {
  BrowseSession s;
  s.lock = std::make_unique<RepoLock>(repo, LockMode::shared, command);
  repo.load_index(/*adopt_unindexed=*/false);
  s.snapshots = load_snapshots(repo, &s.damaged);
  return s;
}

std::unique_ptr<SnapshotBrowser> browse_snapshot(Repository& repo, const std::string& ref,
                                                 std::unique_ptr<volume::Sandbox> sandbox, const std::string& command) {
  BrowseSession s = open_browse_session(repo, command);
  const Snapshot& snapshot = resolve_snapshot(s.snapshots, ref, s.damaged);
  return std::make_unique<SnapshotBrowser>(repo, snapshot, std::move(sandbox), SnapshotDeviceOptions{},
                                           std::move(s.lock));
}

SnapshotBrowser::SnapshotBrowser(Repository& repo, const Snapshot& snapshot, std::unique_ptr<volume::Sandbox> sandbox,
                                 SnapshotDeviceOptions device_options, std::unique_ptr<RepoLock> lock)
    : lock_(std::move(lock)), snapshot_(snapshot), sandbox_(std::move(sandbox)) {
  if (!snapshot_.tree.empty()) files_ = std::make_unique<FileBackupFilesystem>(repo, snapshot_);
  for (const ImageRecord& image : snapshot_.images)
    devices_.push_back(std::make_shared<SnapshotImageDevice>(repo, snapshot_, image, device_options));
}

volume::Tree& SnapshotBrowser::images() {
  if (tree_) return *tree_;
  if (snapshot_.images.empty()) fail(ErrorCategory::not_found, "snapshot {} holds no images", snapshot_.name);
  if (!sandbox_)
    fail(ErrorCategory::unsupported, "the images of snapshot {} cannot be looked into: no volume sandbox left for it",
         snapshot_.name);
  std::vector<volume::Disk> disks;
  for (size_t i = 0; i < devices_.size(); ++i) disks.push_back({snapshot_.images[i].name, devices_[i]});
  tree_ = sandbox_->explore(std::move(disks));
  return *tree_;
}

SnapshotBrowser::~SnapshotBrowser() = default;

std::string SnapshotBrowser::image_names() const {
  std::string names;
  for (const ImageRecord& i : snapshot_.images) names += (names.empty() ? "" : ", ") + i.name;
  return names.empty() ? "none" : names;
}

volume::Filesystem* SnapshotBrowser::open_volume(size_t index, std::string* error) {
  if (index >= images().volumes().size() || !images().volumes()[index].browsable) return nullptr;
  try {
    return &images().filesystem(index);
  } catch (const Error& e) {
    if (e.category() == ErrorCategory::interrupted) throw;
    if (error) *error = e.what();
    return nullptr;
  }
}

BrowseTarget SnapshotBrowser::resolve(std::string_view address) {
  BrowseTarget t;
  while (address.size() > 1 && address.back() == '/') address.remove_suffix(1);
  if (address.empty() || (address == "/" && !files_)) return t;
  // An image's name first: "disk.raw", "disk.raw/p1/...".
  std::string_view rest = address;
  if (!rest.empty() && rest.front() == '/' && !files_) rest.remove_prefix(1);
  const size_t slash = rest.find('/');
  const std::string_view first = rest.substr(0, slash);
  for (uint32_t i = 0; i < snapshot_.images.size(); ++i) {
    if (snapshot_.images[i].name != first) continue;
    t.image = i;
    if (slash == std::string_view::npos || slash + 1 == rest.size()) {
      t.kind = BrowseTarget::Kind::image;
      return t;
    }
    std::string_view inner = rest.substr(slash + 1);
    volume::Location loc = volume::resolve(images(), i, inner);
    t.kind = BrowseTarget::Kind::entry;
    t.fs = &images().filesystem(loc.volume);
    t.path = loc.path;
    t.volume = volume::volume_address(images().volumes()[loc.volume]);
    t.fs->stat(t.path);  // not_found now, naming the path
    return t;
  }
  if (!files_) {
    fail(ErrorCategory::not_found, "snapshot {} has no image '{}' (it has: {}; addresses are IMAGE/PARTITION/PATH)",
         snapshot_.name, first, image_names());
  }
  t.kind = BrowseTarget::Kind::entry;
  t.fs = files_.get();
  t.path = volume::normalize_path(address);
  try {
    t.fs->stat(t.path);  // not_found now, naming the path
  } catch (const Error& e) {
    if (e.category() != ErrorCategory::not_found || snapshot_.images.empty()) throw;
    fail(ErrorCategory::not_found, "{}, and no image '{}' (images: {})", e.what(), first, image_names());
  }
  return t;
}

std::vector<BrowseEntry> SnapshotBrowser::list(const BrowseTarget& target, bool with_streams) {
  if (target.kind != BrowseTarget::Kind::entry) fail(ErrorCategory::internal, "list: not a file system entry");
  volume::Filesystem& fs = *target.fs;
  volume::PathListing listing = volume::list_path(fs, target.path);
  const std::string& parent = listing.parent;
  std::vector<volume::DirEntry>& entries = listing.entries;
  std::vector<BrowseEntry> out;
  for (volume::DirEntry& e : entries) {
    interrupt::check();
    BrowseEntry b{std::move(e), {}, {}, {}};
    b.path = parent == "/" ? "/" + b.entry.name : parent + "/" + b.entry.name;
    if (b.entry.stat.type == volume::FileType::symlink) {
      try {
        b.target = fs.readlink(b.path);
      } catch (const Error& err) {
        if (err.category() == ErrorCategory::interrupted) throw;
        b.target = fmt::format("? ({})", err.what());
      }
    }
    if (with_streams && b.entry.stat.type == volume::FileType::regular) b.streams = fs.streams(b.path);
    out.push_back(std::move(b));
  }
  return out;
}

volume::ExtractStats SnapshotBrowser::restore(const std::vector<std::string>& addresses, const std::string& to,
                                              const volume::ExtractOptions& options) {
  // Every address first: a typo in the last one fails before anything is written.
  std::vector<BrowseTarget> targets;
  for (const std::string& a : addresses) {
    BrowseTarget t = resolve(a);
    if (t.kind != BrowseTarget::Kind::entry)
      fail(ErrorCategory::usage, "'{}' is {}: give IMAGE/PARTITION/PATH (e.g. {}/p1/home), or IMAGE/p1 for a whole file system",
           a, t.kind == BrowseTarget::Kind::image ? "a whole image (restore it with `arche backup restore --image`)"
                                                  : "the whole snapshot",
           snapshot_.images.empty() ? "disk.raw" : snapshot_.images[0].name);
    targets.push_back(std::move(t));
  }
  volume::ExtractStats total;
  for (const BrowseTarget& t : targets) {
    volume::ExtractStats s = volume::extract(*t.fs, t.path, to, options);
    total.files += s.files;
    total.dirs += s.dirs;
    total.links += s.links;
    total.other += s.other;
    total.bytes += s.bytes;
    total.warnings += s.warnings;
  }
  return total;
}

uint64_t SnapshotBrowser::bytes_fetched() const {
  uint64_t n = files_ ? files_->bytes_fetched() : 0;
  for (const auto& d : devices_) n += d->bytes_fetched();
  return n;
}

}  // namespace arche::backup
