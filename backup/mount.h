// `arche backup mount REPO MOUNTPOINT`: the repository as a read-only FUSE 3 file
// system (docs/backup.md "Files out of backups"):
//
//   MOUNTPOINT/NAME/                   one directory per snapshot (NAME-<short id>
//                                      when two snapshots share a name; "/" in a
//                                      name shows as "_")
//   MOUNTPOINT/NAME/disk.raw           an image of the snapshot as a raw file
//   MOUNTPOINT/NAME/disk.raw.d/p1/...  its partitions, NAME.d/VG/LV/... its logical
//                                      volumes, NAME.d/... a whole-disk file system:
//                                      the same addresses as `backup ls` takes
//   MOUNTPOINT/NAME/files/...          a file backup's files
//
// Everything is read lazily (snapshot_device.h, file_backup_fs.h); the guest file
// systems are parsed in volume sandboxes (volume/sandbox.h). A sandbox is a copy of
// this process and must be started before the repository is opened, so the caller
// starts a few (`sandboxes`) and each snapshot whose images are looked into takes
// one; when they are used up, the images of further snapshots answer EIO (their raw
// images and files still read) and a line on stderr says why.
//
// The mount holds a shared lock for its life. It runs in the foreground until it is
// unmounted (fusermount3 -u, umount) or gets SIGINT, SIGTERM or SIGHUP, which
// unmount it cleanly.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backup/repository.h"
#include "volume/sandbox.h"

namespace arche::backup {

struct MountOptions {
  std::string mountpoint;
  std::string fsname;  // shown by mount(8); the repository's location
  // Called once the file system is mounted and answering (tests, "mounted" line).
  std::function<void()> on_mounted;
};

void mount_repository(Repository& repo, std::vector<std::unique_ptr<volume::Sandbox>> sandboxes,
                      const MountOptions& options);

}  // namespace arche::backup
