// Shared by the volume tests: the fixtures of make_fixture.sh, and a comparison
// of what a Filesystem shows with the host directory the fixture was made from.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "image/block_device.h"
#include "tests/common/test_util.h"
#include "volume/filesystem.h"
#include "volume/tree.h"

namespace arche::volume::testing {

// Runs make_fixture.sh with the arguments; fails the test when it fails.
// Returns its standard output (the VG name for the lvm modes).
std::string make_fixture(const std::vector<std::string>& args);

// A raw image opened read-only.
std::shared_ptr<image::BlockDevice> open_raw(const std::string& path);

// The index of the volume with this name ("p1", "vg/root", "" for the disk) on disk 0.
size_t volume_index(const Tree& tree, const std::string& name, uint32_t disk = 0);

struct Compare {
  bool mode = true;      // permission bits (NTFS has none)
  bool owner = true;     // uid/gid (when the fixture was made as root)
  bool symlinks = true;  // symbolic links are links (FAT has none)
  std::vector<std::string> ignore;  // names in the file system's root that the host tree lacks (lost+found)
};

// Every entry below host_dir is in `fs` below fs_dir with the same type, size,
// mtime (seconds), mode/owner (as asked), link target and bytes; and every
// directory lists exactly the host's names. Returns the number of files compared.
size_t expect_same_tree(Filesystem& fs, const std::string& fs_dir, const std::string& host_dir, const Compare& how);

// The same for two host directories (an extraction against the original).
void expect_same_host_tree(const std::string& a, const std::string& b, bool owner);

}  // namespace arche::volume::testing
