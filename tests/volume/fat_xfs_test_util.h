// Helpers the FAT and XFS reader tests share: a host tree and a reader's tree as
// comparable maps, content digests, the P2V copy of used ranges, real images.
#pragma once

#include <sys/stat.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "image/block_device.h"
#include "tests/common/test_util.h"
#include "volume/filesystem.h"

namespace arche::test {

// ../shared/fixtures/real-images (README.md there), or "" when it is absent.
std::string real_images_dir();

// Two independent digests of a byte stream: equal content, equal digests.
struct Content {
  uint64_t size = 0;
  uint32_t crc = 0;
  uint64_t fnv = 0;
  bool operator==(const Content&) const = default;
};
Content content_of_host_file(const std::string& path);
// Reads the file through the reader in pieces of `piece` bytes.
Content content_of(volume::Filesystem& fs, const std::string& path, size_t piece = 1 << 20);

struct HostEntry {
  volume::FileType type = volume::FileType::unknown;
  struct stat st {};
  std::string target;  // symlinks
  Content content;     // regular files
};
// Every entry under root by its path inside ("/", "/a", "/a/b"), from lstat.
std::map<std::string, HostEntry> scan_host_tree(const std::string& root);

struct FsEntry {
  volume::FileStat stat;
  std::string target;
  Content content;
};
// The whole tree as the reader lists it, every regular file read and every symlink resolved.
std::map<std::string, FsEntry> walk_filesystem(volume::Filesystem& fs);

std::shared_ptr<image::BlockDevice> open_raw(const std::string& path);

// The P2V property: only the used ranges of `source` copied into an otherwise
// zero (sparse) file of the same size.
void copy_ranges(const std::string& source, const std::string& target, const std::vector<volume::ByteRange>& ranges);
uint64_t total_length(const std::vector<volume::ByteRange>& ranges);

// The paths of one tree that the other lacks, for a readable failure message.
template <typename A, typename B>
std::string path_difference(const std::map<std::string, A>& a, const std::map<std::string, B>& b) {
  std::string out;
  for (const auto& [p, e] : a)
    if (!b.count(p)) out += " -" + p;
  for (const auto& [p, e] : b)
    if (!a.count(p)) out += " +" + p;
  return out;
}

// Runs a command, failing the test with its output when it does not exit 0.
CommandResult run_ok(const std::vector<std::string>& argv);

}  // namespace arche::test
