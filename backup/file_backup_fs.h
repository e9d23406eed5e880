// The files of a file backup as a read-only volume::Filesystem, so that `backup ls`,
// `backup restore-file` and `backup mount` treat them exactly like a file system
// inside an image backup (volume/filesystem.h, volume/extract.h).
//
// The root is the snapshot's virtual root directory (tree.h: /home/kunde was
// stored as "home" -> "kunde"). Directories are read from their tree blobs when
// first visited and kept; a file's chunk list is read when the file is first read,
// and its chunks are fetched as reads reach them (the last one kept), so reading
// one file touches only its own chunks. Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backup/chunk_list.h"
#include "backup/repository.h"
#include "backup/snapshot.h"
#include "backup/tree.h"
#include "volume/filesystem.h"

namespace arche::backup {

// A tree node's metadata as the volume readers give it.
volume::FileStat node_stat(const Node& node);

class FileBackupFilesystem final : public volume::Filesystem {
 public:
  // `repo` must have its index loaded and outlive this object.
  FileBackupFilesystem(Repository& repo, const Snapshot& snapshot);

  std::string type() const override { return "files"; }
  uint64_t size_bytes() const override { return snapshot_.stats.total_bytes; }
  uint64_t used_bytes() const override { return snapshot_.stats.total_bytes; }

  volume::FileStat stat(std::string_view path) override;
  std::vector<volume::DirEntry> list(std::string_view path) override;
  size_t read(std::string_view path, uint64_t offset, std::span<uint8_t> out) override;
  std::string readlink(std::string_view path) override;
  std::vector<std::string> streams(std::string_view path) override;
  // Not a volume: nothing to map.
  std::vector<volume::ByteRange> used_ranges() override { return {}; }

  // Bytes read from the repository so far (encrypted frames as stored).
  uint64_t bytes_fetched() const;

 private:
  // The node at a normalised path ("/" is the virtual root, returned as a directory).
  Node node_at(const std::string& path);
  std::shared_ptr<const Tree> tree_of(const std::string& path, const Node& dir);
  std::span<const uint8_t> blob(const Id& id, const std::string& what);

  Repository& repo_;
  Snapshot snapshot_;
  Node root_;
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<const Tree>> trees_;  // directory path -> its entries
  // The file read last: its chunks with their offsets, and its chunk last fetched.
  std::string open_path_;
  std::vector<ChunkRef> open_chunks_;
  std::vector<uint64_t> open_offsets_;  // start of each chunk in the file
  size_t cached_chunk_ = SIZE_MAX;
  std::vector<uint8_t> frame_, scratch_;
  std::span<const uint8_t> cached_plain_;
  uint64_t fetched_bytes_ = 0;
};

}  // namespace arche::backup
