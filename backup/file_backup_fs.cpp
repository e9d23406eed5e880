#include "backup/file_backup_fs.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include "backup/tree_store.h"
#include "core/error.h"
#include "volume/volume_path.h"

namespace arche::backup {

namespace {

constexpr size_t kCachedTrees = 4096;

volume::FileType file_type(NodeType t) {
  switch (t) {
    case NodeType::file: return volume::FileType::regular;
    case NodeType::dir: return volume::FileType::directory;
    case NodeType::symlink: return volume::FileType::symlink;
    case NodeType::fifo: return volume::FileType::fifo;
    case NodeType::chardev: return volume::FileType::char_device;
    case NodeType::blockdev: return volume::FileType::block_device;
    case NodeType::socket: return volume::FileType::socket;
  }
  return volume::FileType::unknown;
}

}  // namespace

volume::FileStat node_stat(const Node& n) {
  volume::FileStat s;
  s.type = file_type(n.type);
  s.size = n.type == NodeType::symlink ? n.target.size() : n.size;
  s.mode = n.mode & 07777;
  s.uid = n.uid;
  s.gid = n.gid;
  s.nlink = n.nlink ? n.nlink : 1;
  s.inode = n.ino;
  s.atime_ns = n.atime_ns;
  s.mtime_ns = n.mtime_ns;
  s.ctime_ns = n.ctime_ns;
  return s;
}

FileBackupFilesystem::FileBackupFilesystem(Repository& repo, const Snapshot& snapshot)
    : repo_(repo), snapshot_(snapshot) {
  root_.name.assign(1, '/');
  root_.type = NodeType::dir;
  root_.mode = S_IFDIR | 0755;
  root_.atime_ns = root_.mtime_ns = root_.ctime_ns = snapshot.time_ns;
  root_.subtree = snapshot.tree;
}

uint64_t FileBackupFilesystem::bytes_fetched() const {
  std::lock_guard lock(mutex_);
  return fetched_bytes_;
}

std::span<const uint8_t> FileBackupFilesystem::blob(const Id& id, const std::string& what) {
  std::span<const uint8_t> plain = repo_.read_blob(id, frame_, scratch_, what);
  fetched_bytes_ += frame_.size();
  return plain;
}

std::shared_ptr<const Tree> FileBackupFilesystem::tree_of(const std::string& path, const Node& dir) {
  if (auto it = trees_.find(path); it != trees_.end()) return it->second;
  const std::string what = snapshot_.name + ":" + path;
  // load_tree reads the pieces itself; count them as read from the repository.
  for (const Id& piece : dir.subtree)
    if (auto where = repo_.index().find(piece)) fetched_bytes_ += where->length;
  auto tree = std::make_shared<const Tree>(load_tree(repo_, dir.subtree, what));
  if (trees_.size() >= kCachedTrees) trees_.clear();
  trees_.emplace(path, tree);
  return tree;
}

Node FileBackupFilesystem::node_at(const std::string& path) {
  Node node = root_;
  std::string at = "/";
  size_t pos = 1;
  while (pos < path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string::npos) end = path.size();
    const std::string name = path.substr(pos, end - pos);
    if (node.type != NodeType::dir)
      fail(ErrorCategory::usage, "{}:{}: {} is not a directory", snapshot_.name, path, at);
    std::shared_ptr<const Tree> tree = tree_of(at, node);
    auto it = std::lower_bound(tree->nodes.begin(), tree->nodes.end(), name,
                               [](const Node& n, const std::string& key) { return n.name < key; });
    if (it == tree->nodes.end() || it->name != name)
      fail(ErrorCategory::not_found, "snapshot {} has no {}", snapshot_.name, path.substr(0, end));
    node = *it;
    at = path.substr(0, end);
    pos = end + 1;
  }
  return node;
}

volume::FileStat FileBackupFilesystem::stat(std::string_view path) {
  std::lock_guard lock(mutex_);
  return node_stat(node_at(volume::normalize_path(path)));
}

std::vector<volume::DirEntry> FileBackupFilesystem::list(std::string_view path) {
  std::lock_guard lock(mutex_);
  const std::string p = volume::normalize_path(path);
  Node dir = node_at(p);
  if (dir.type != NodeType::dir) fail(ErrorCategory::usage, "{}:{} is not a directory", snapshot_.name, p);
  std::vector<volume::DirEntry> out;
  for (const Node& n : tree_of(p, dir)->nodes) out.push_back({n.name, node_stat(n)});
  return out;
}

std::string FileBackupFilesystem::readlink(std::string_view path) {
  std::lock_guard lock(mutex_);
  const std::string p = volume::normalize_path(path);
  Node n = node_at(p);
  if (n.type != NodeType::symlink) fail(ErrorCategory::usage, "{}:{} is not a symbolic link", snapshot_.name, p);
  return n.target;
}

std::vector<std::string> FileBackupFilesystem::streams(std::string_view path) {
  std::lock_guard lock(mutex_);
  std::vector<std::string> names;
  for (const auto& [name, value] : node_at(volume::normalize_path(path)).xattrs) names.push_back(name);
  return names;
}

size_t FileBackupFilesystem::read(std::string_view path, uint64_t offset, std::span<uint8_t> out) {
  std::lock_guard lock(mutex_);
  const std::string p = volume::normalize_path(path);
  if (p != open_path_) {
    Node n = node_at(p);
    if (n.type != NodeType::file) fail(ErrorCategory::usage, "{}:{} is not a regular file", snapshot_.name, p);
    for (const Id& list : n.chunk_lists)
      if (auto where = repo_.index().find(list)) fetched_bytes_ += where->length;
    open_chunks_ = load_file_chunks(repo_, n, snapshot_.name + ":" + p);
    open_offsets_.clear();
    uint64_t at = 0;
    for (const ChunkRef& c : open_chunks_) {
      open_offsets_.push_back(at);
      at += c.length;
    }
    open_offsets_.push_back(at);
    open_path_ = p;
    cached_chunk_ = SIZE_MAX;
  }
  const uint64_t file_size = open_offsets_.back();
  if (offset >= file_size) return 0;
  const size_t n = static_cast<size_t>(std::min<uint64_t>(out.size(), file_size - offset));
  // The chunk that holds `offset`: the last one starting at or before it.
  size_t i = static_cast<size_t>(std::upper_bound(open_offsets_.begin(), open_offsets_.end(), offset) -
                                 open_offsets_.begin() - 1);
  for (size_t done = 0; done < n; ++i) {
    const ChunkRef& c = open_chunks_[i];
    const uint64_t within = offset + done - open_offsets_[i];
    const size_t take = static_cast<size_t>(std::min<uint64_t>(n - done, c.length - within));
    if (c.is_hole()) {
      std::memset(out.data() + done, 0, take);
    } else {
      if (cached_chunk_ != i) {
        cached_chunk_ = SIZE_MAX;
        cached_plain_ = blob(c.id, fmt::format("{}:{} at offset {}", snapshot_.name, p, open_offsets_[i]));
        if (cached_plain_.size() != c.length)
          fail(ErrorCategory::corrupt, "{}:{}: chunk {} has {} bytes, expected {}", snapshot_.name, p, c.id.short_hex(),
               cached_plain_.size(), c.length);
        cached_chunk_ = i;
      }
      std::memcpy(out.data() + done, cached_plain_.data() + within, take);
    }
    done += take;
  }
  return n;
}

}  // namespace arche::backup
