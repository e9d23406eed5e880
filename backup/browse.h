// Looking into one snapshot: what `backup ls`, `backup restore-file` and `backup
// mount` share. A SnapshotBrowser holds a shared lock for its life, loads the index,
// finds the snapshot (damaged manifests of others do not stand in the way) and
// opens what it holds:
//
//   - its disk images as lazy devices (snapshot_device.h), explored as one tree by
//     the volume sandbox (volume/sandbox.h): partitions, LVM2 volumes, file systems
//     are parsed in a child process without keys or privileges;
//   - its files (a file backup) as one more file system (file_backup_fs.h).
//
// Addresses inside a snapshot (docs/backup.md "Files out of backups"):
//
//   disk.raw                      the image: its partitions and volumes
//   disk.raw/p1/home/kunde/a.txt  partition 1 of disk.raw, then the path
//   disk.raw/vg0/root/etc/fstab   logical volume vg0/root on disk.raw
//   disk.raw/etc/fstab            a file system on the whole disk (also disk.raw//etc)
//   /home/kunde/a.txt             a file backup's path (as create stored it)
//
// The first component names an image when the snapshot has one of that name;
// otherwise the address is a path of the file backup.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backup/file_backup_fs.h"
#include "backup/lock.h"
#include "backup/repository.h"
#include "backup/snapshot.h"
#include "backup/snapshot_device.h"
#include "volume/extract.h"
#include "volume/sandbox.h"
#include "volume/tree.h"

namespace arche::backup {

// Where an address leads.
struct BrowseTarget {
  enum class Kind {
    snapshot,  // "" or "/" of a snapshot without files: the images (and the files' root)
    image,     // "disk.raw": the volumes of one image
    entry,     // a file or directory inside a file system
  };
  Kind kind = Kind::snapshot;
  std::optional<uint32_t> image;         // index into snapshot().images (image, entry in an image)
  volume::Filesystem* fs = nullptr;      // entry: the file system
  std::string path;                      // entry: normalised path inside fs
  std::string volume;                    // entry in an image: "p1", "vg0/root", "/"
};

// One entry of a listing: its stat, its path inside the file system, what a
// symbolic link points to ("? (why)" when unreadable), named streams (NTFS) or
// extended attributes (file backups), when asked for.
struct BrowseEntry {
  volume::DirEntry entry;
  std::string path;
  std::string target;
  std::vector<std::string> streams;
};

// The snapshots of a repository under a shared lock, with the index loaded: what
// browsing needs before a snapshot is opened (`backup mount` keeps it for its life).
struct BrowseSession {
  std::unique_ptr<RepoLock> lock;
  std::vector<Snapshot> snapshots;         // oldest first
  std::vector<DamagedManifest> damaged;    // skipped; named by resolve_snapshot
};
BrowseSession open_browse_session(Repository& repo, const std::string& command);

class SnapshotBrowser {
 public:
  // The caller holds a lock and has loaded the index (open_browse_session), or
  // hands the lock over in `lock`. `sandbox` must have been started before the
  // repository was opened (it is a copy of this process: it must not hold the
  // keys); it explores the images when they are first looked into. Without one,
  // only the files and the raw images can be read. `repo` must outlive the browser.
  SnapshotBrowser(Repository& repo, const Snapshot& snapshot, std::unique_ptr<volume::Sandbox> sandbox,
                  SnapshotDeviceOptions device_options = {}, std::unique_ptr<RepoLock> lock = nullptr);
  ~SnapshotBrowser();

  const Snapshot& snapshot() const { return snapshot_; }
  bool has_files() const { return files_ != nullptr; }

  // The tree of the images (disk i = snapshot().images[i]), explored in the
  // sandbox on first use. Throws without images, or without a sandbox.
  volume::Tree& images();
  // The file system of volume `index` of images(), or why it cannot be opened.
  volume::Filesystem* open_volume(size_t index, std::string* error);
  SnapshotImageDevice& device(uint32_t image) { return *devices_.at(image); }
  // The file backup's files; null without.
  FileBackupFilesystem* files() { return files_.get(); }

  // not_found naming what exists when the address leads nowhere.
  BrowseTarget resolve(std::string_view address);

  // A directory's entries sorted by name, or the one entry of a file.
  std::vector<BrowseEntry> list(const BrowseTarget& target, bool with_streams);

  // Copies entries out (volume/extract.h): each under `to` by its base name; a
  // volume's or file system's root: its contents.
  volume::ExtractStats restore(const std::vector<std::string>& addresses, const std::string& to,
                               const volume::ExtractOptions& options);

  // Bytes read from the repository so far by the images and the files.
  uint64_t bytes_fetched() const;

 private:
  std::string image_names() const;  // "disk.raw, data.qcow2" or "none"

  std::unique_ptr<RepoLock> lock_;
  Snapshot snapshot_;
  std::vector<std::shared_ptr<SnapshotImageDevice>> devices_;
  std::unique_ptr<volume::Sandbox> sandbox_;
  std::unique_ptr<volume::Tree> tree_;
  std::unique_ptr<FileBackupFilesystem> files_;
};

// For one command: a shared lock, the index, the snapshot `ref` (name, "latest" or
// id prefix), and a browser on it that keeps the lock.
std::unique_ptr<SnapshotBrowser> browse_snapshot(Repository& repo, const std::string& ref,
                                                 std::unique_ptr<volume::Sandbox> sandbox, const std::string& command);

}  // namespace arche::backup
