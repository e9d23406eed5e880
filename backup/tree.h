// Directory trees of file backups. One directory is one Tree: its entries (Nodes)
// sorted by name, encoded as an "ARCHTREE" v1 record (core/bytes.h envelope) and
// stored as blobs of kind `tree`, cut into pieces of at most kTreePieceSize. A
// directory entry names the pieces of its subtree; unchanged directories therefore
// encode to the same bytes, the same ids, and are stored once.
//
// A snapshot's root tree is a virtual directory holding the backed-up paths with
// their full path below it (/home/kunde -> "home" -> "kunde"), like restic.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "backup/chunk_list.h"
#include "backup/crypto.h"

namespace arche::backup {

constexpr size_t kTreePieceSize = 1u << 20;

enum class NodeType : uint8_t { file = 1, dir = 2, symlink = 3, fifo = 4, chardev = 5, blockdev = 6, socket = 7 };
const char* to_string(NodeType type);

struct Node {
  std::string name;  // one path component: not empty, no '/', no NUL, not . or ..
  NodeType type = NodeType::file;
  uint32_t mode = 0;  // st_mode (type and permission bits)
  uint32_t uid = 0, gid = 0;
  std::string user, group;  // names at backup time (restore uses the numbers)
  int64_t atime_ns = 0, mtime_ns = 0, ctime_ns = 0;
  uint64_t size = 0;
  uint64_t dev = 0, ino = 0;  // to recognise unchanged files and hard links
  uint32_t nlink = 0;
  uint64_t rdev = 0;           // device nodes
  std::string target;          // symlinks
  std::vector<std::pair<std::string, std::string>> xattrs;
  // Files: content chunks, inline (small files) or in list blobs (chunk_list.h).
  std::vector<ChunkRef> chunks;
  std::vector<Id> chunk_lists;
  uint64_t chunk_count = 0;
  // Directories: the pieces of the subtree.
  std::vector<Id> subtree;

  bool same_metadata(const Node& other) const;  // everything but content and atime
};

struct Tree {
  std::vector<Node> nodes;  // sorted by name, names unique
};

std::vector<uint8_t> encode_tree(const Tree& tree);
// Validates names, order and field ranges; throws corrupt/format errors naming `what`.
Tree decode_tree(std::span<const uint8_t> data, const std::string& what);
// True when `name` is acceptable as a node name.
bool valid_node_name(std::string_view name);

}  // namespace arche::backup
