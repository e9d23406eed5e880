// Addresses of files inside a disk, as `arche image ls|extract` and backup's
// single-file restore take them (the backup form puts the image name in front:
// IMAGE/ADDRESS):
//
//   p1/home/kunde/wichtig.txt   partition 1, then the path in its file system
//   p1                          the root of partition 1's file system
//   vg0/root/etc/fstab          logical volume root of volume group vg0
//   /etc/fstab, /               a file system on the whole disk (no partition table)
//
// The first component is a partition of the disk ("p<N>") or a volume group (then
// the second is the LV); a leading '/' means the whole-disk file system. A disk
// that holds a file system directly also takes paths without the leading '/'.
// Paths inside a file system are normalised lexically ("a//b/./c" -> "/a/b/c",
// ".." never climbs above the root) before any reader sees them.
#pragma once

#include <string>
#include <string_view>

#include "volume/tree.h"

namespace arche::volume {

struct Location {
  size_t volume = 0;  // index into Tree::volumes()
  std::string path;   // absolute, normalised, inside the volume's file system ("/" for its root)
  bool is_root() const { return path == "/"; }
};

// Throws not_found naming what does not exist (listing what does), or usage
// when the address is empty.
Location resolve(const Tree& tree, uint32_t disk, std::string_view address);

// "/a/b/c" from "a//b/./c"; ".." above the root stays at the root.
std::string normalize_path(std::string_view path);

// The display name of a volume in messages and listings: "p1", "vg0/root", "/".
std::string volume_address(const VolumeInfo& volume);

}  // namespace arche::volume
