// XFS test images: v5 populated through a loop mount (the kernel as the writer),
// v4 through a mkfs.xfs protofile (v4 cannot be mounted here), and the referees
// (xfs_db, xfs_repair) that say what a reader must see.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "tests/volume/fat_xfs_test_util.h"

namespace arche::test {

// xfs_db -r with the commands; its stdout.
std::string xfs_db(const std::string& image, const std::vector<std::string>& commands);
// One "field = value" of xfs_db's print output.
std::string xfs_db_field(const std::string& image, const std::string& path, const std::string& field);
// The data extents of a file as xfs_db's bmap lists them, as byte ranges of the volume.
std::vector<volume::ByteRange> xfs_db_extents(const std::string& image, const std::string& path, uint32_t block_size,
                                              uint32_t ag_blocks);

// A v5 image (1 GiB) filled through a loop mount with nested directories, one
// directory of each shape (short form, block, leaf, node, btree), a 110 MiB file,
// a fragmented file with a btree block map, sparse and unwritten ranges,
// symlinks (inline, remote, the longest: 1023 bytes), hard links, non-ASCII names, special
// files, owners, modes and timestamps before 1970 and after 2038. Returns the
// tree as the mounted file system showed it (lstat), the reader's reference.
std::map<std::string, HostEntry> make_xfs_v5(const std::string& image, const std::string& work);

// The same kinds of content in a v4 image made with a protofile (no hard links,
// sparse files or timestamps: protofiles have none). `expected` gets the tree.
struct ProtoEntry {
  volume::FileType type;
  uint32_t mode, uid, gid;
  std::string source;  // regular files: the host file copied in
  std::string target;  // symlinks
};
std::map<std::string, ProtoEntry> make_xfs_v4(const std::string& image, const std::string& work);

}  // namespace arche::test
