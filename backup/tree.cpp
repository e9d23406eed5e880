#include "backup/tree.h"

#include "core/bytes.h"
#include "core/error.h"

namespace arche::backup {

namespace {
constexpr std::string_view kTreeMagic = "ARCHTREE";
constexpr RecordVersion kTreeVersion{1, 0};

void put_string16(ByteWriter& w, std::string_view s) {
  if (s.size() > 65535) fail(ErrorCategory::internal, "string of {} bytes in a tree", s.size());
  w.le16(static_cast<uint16_t>(s.size()));
  w.string(s);
}
void put_string32(ByteWriter& w, std::string_view s) {
  w.le32(static_cast<uint32_t>(s.size()));
  w.string(s);
}
std::string get_string32(ByteReader& r) {
  uint32_t n = r.le32();
  if (n > r.remaining()) fail(ErrorCategory::corrupt, "tree: string of {} bytes exceeds the record", n);
  return r.string(n);
}
}  // namespace

const char* to_string(NodeType type) {
  switch (type) {
    case NodeType::file: return "file";
    case NodeType::dir: return "dir";
    case NodeType::symlink: return "symlink";
    case NodeType::fifo: return "fifo";
    case NodeType::chardev: return "chardev";
    case NodeType::blockdev: return "blockdev";
    case NodeType::socket: return "socket";
  }
  return "?";
}

bool valid_node_name(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos &&
         name.find('\0') == std::string_view::npos;
}

bool Node::same_metadata(const Node& o) const {
  return type == o.type && mode == o.mode && uid == o.uid && gid == o.gid && mtime_ns == o.mtime_ns &&
         size == o.size && target == o.target && xattrs == o.xattrs && rdev == o.rdev;
}

std::vector<uint8_t> encode_tree(const Tree& tree) {
  ByteWriter w;
  w.le32(static_cast<uint32_t>(tree.nodes.size()));
  for (const Node& n : tree.nodes) {
    put_string16(w, n.name);
    w.u8(static_cast<uint8_t>(n.type));
    w.le32(n.mode);
    w.le32(n.uid);
    w.le32(n.gid);
    put_string16(w, n.user);
    put_string16(w, n.group);
    w.le64(static_cast<uint64_t>(n.atime_ns));
    w.le64(static_cast<uint64_t>(n.mtime_ns));
    w.le64(static_cast<uint64_t>(n.ctime_ns));
    w.le64(n.size);
    w.le64(n.dev);
    w.le64(n.ino);
    w.le32(n.nlink);
    w.le64(n.rdev);
    put_string32(w, n.target);
    w.le32(static_cast<uint32_t>(n.xattrs.size()));
    for (const auto& [k, v] : n.xattrs) {
      put_string16(w, k);
      put_string32(w, v);
    }
    w.le64(n.chunk_count);
    w.le32(static_cast<uint32_t>(n.chunks.size()));
    for (const ChunkRef& c : n.chunks) {
      w.bytes(c.id.bytes);
      w.le32(c.length);
    }
    w.le32(static_cast<uint32_t>(n.chunk_lists.size()));
    for (const Id& id : n.chunk_lists) w.bytes(id.bytes);
    w.le32(static_cast<uint32_t>(n.subtree.size()));
    for (const Id& id : n.subtree) w.bytes(id.bytes);
  }
  return seal_record(kTreeMagic, kTreeVersion, w.buffer());
}

Tree decode_tree(std::span<const uint8_t> data, const std::string& what) {
  OpenedRecord rec = open_record(data, kTreeMagic, kTreeVersion.major, what);
  ByteReader r(rec.payload, what);
  uint32_t count = r.le32();
  // The smallest node takes well over 64 bytes: a larger count is damage.
  if (uint64_t{count} * 64 > r.remaining()) fail(ErrorCategory::corrupt, "{}: {} entries cannot fit", what, count);
  Tree tree;
  tree.nodes.resize(count);
  for (size_t i = 0; i < count; ++i) {
    Node& n = tree.nodes[i];
    n.name = r.string(r.le16());
    if (!valid_node_name(n.name)) fail(ErrorCategory::corrupt, "{}: invalid entry name", what);
    if (i && !(tree.nodes[i - 1].name < n.name))
      fail(ErrorCategory::corrupt, "{}: entries out of order at '{}'", what, n.name);
    uint8_t type = r.u8();
    if (type < 1 || type > 7) fail(ErrorCategory::corrupt, "{}: '{}' has unknown type {}", what, n.name, type);
    n.type = static_cast<NodeType>(type);
    n.mode = r.le32();
    n.uid = r.le32();
    n.gid = r.le32();
    n.user = r.string(r.le16());
    n.group = r.string(r.le16());
    n.atime_ns = static_cast<int64_t>(r.le64());
    n.mtime_ns = static_cast<int64_t>(r.le64());
    n.ctime_ns = static_cast<int64_t>(r.le64());
    n.size = r.le64();
    n.dev = r.le64();
    n.ino = r.le64();
    n.nlink = r.le32();
    n.rdev = r.le64();
    n.target = get_string32(r);
    uint32_t xattrs = r.le32();
    if (uint64_t{xattrs} * 6 > r.remaining()) fail(ErrorCategory::corrupt, "{}: {} xattrs cannot fit", what, xattrs);
    n.xattrs.resize(xattrs);
    for (auto& [k, v] : n.xattrs) {
      k = r.string(r.le16());
      v = get_string32(r);
    }
    n.chunk_count = r.le64();
    uint32_t chunks = r.le32();
    if (uint64_t{chunks} * (kIdSize + 4) > r.remaining())
      fail(ErrorCategory::corrupt, "{}: {} chunks cannot fit", what, chunks);
    n.chunks.resize(chunks);
    for (ChunkRef& c : n.chunks) {
      c.id = Id::from(r.bytes(kIdSize));
      c.length = r.le32();
    }
    uint32_t lists = r.le32();
    if (uint64_t{lists} * kIdSize > r.remaining()) fail(ErrorCategory::corrupt, "{}: {} lists cannot fit", what, lists);
    n.chunk_lists.resize(lists);
    for (Id& id : n.chunk_lists) id = Id::from(r.bytes(kIdSize));
    uint32_t pieces = r.le32();
    if (uint64_t{pieces} * kIdSize > r.remaining())
      fail(ErrorCategory::corrupt, "{}: {} subtree pieces cannot fit", what, pieces);
    n.subtree.resize(pieces);
    for (Id& id : n.subtree) id = Id::from(r.bytes(kIdSize));
    // Content must fit the type: only files have chunks, only directories subtrees.
    const bool is_file = n.type == NodeType::file, is_dir = n.type == NodeType::dir;
    if ((!is_file && (chunks || lists || n.chunk_count)) || (!is_dir && pieces) ||
        (is_file && lists == 0 && n.chunk_count != chunks) || (is_file && lists && chunks))
      fail(ErrorCategory::corrupt, "{}: '{}' has content that does not fit its type", what, n.name);
  }
  if (r.remaining()) fail(ErrorCategory::corrupt, "{}: {} stray bytes at the end", what, r.remaining());
  return tree;
}

}  // namespace arche::backup
