#include "backup/tree_store.h"

#include "core/error.h"

namespace arche::backup {

std::vector<Id> store_tree(ChunkStore& store, const Tree& tree) {
  std::vector<uint8_t> bytes = encode_tree(tree);
  std::vector<Id> pieces;
  for (size_t pos = 0; pos < bytes.size(); pos += kTreePieceSize) {
    size_t n = std::min(kTreePieceSize, bytes.size() - pos);
    pieces.push_back(store.store(BlobKind::tree, std::span(bytes).subspan(pos, n)));
  }
  return pieces;
}

Tree load_tree(Repository& repo, const std::vector<Id>& pieces, const std::string& what) {
  if (pieces.empty()) fail(ErrorCategory::corrupt, "{}: directory without a tree", what);
  if (pieces.size() == 1) return decode_tree(repo.read_blob(pieces[0], what), what);
  std::vector<uint8_t> bytes;
  for (const Id& id : pieces) {
    std::vector<uint8_t> piece = repo.read_blob(id, what);
    if (bytes.size() + piece.size() > (size_t{1} << 32)) fail(ErrorCategory::corrupt, "{}: tree too large", what);
    bytes.insert(bytes.end(), piece.begin(), piece.end());
  }
  return decode_tree(bytes, what);
}

void set_file_chunks(ChunkStore& store, Node& node, std::vector<ChunkRef> chunks) {
  node.chunk_count = chunks.size();
  node.chunk_lists.clear();
  if (chunks.size() <= kInlineChunks) {
    node.chunks = std::move(chunks);
    return;
  }
  node.chunks.clear();
  for (size_t pos = 0; pos < chunks.size(); pos += kFileListEntries) {
    size_t n = std::min(kFileListEntries, chunks.size() - pos);
    node.chunk_lists.push_back(store.store(BlobKind::list, encode_file_list(std::span(chunks).subspan(pos, n))));
  }
}

std::vector<ChunkRef> load_file_chunks(Repository& repo, const Node& node, const std::string& what) {
  std::vector<ChunkRef> chunks;
  if (node.chunk_lists.empty()) {
    chunks = node.chunks;
  } else {
    if (node.chunk_count > node.chunk_lists.size() * kFileListEntries)
      fail(ErrorCategory::corrupt, "{}: {} chunks cannot be in {} lists", what, node.chunk_count, node.chunk_lists.size());
    chunks.reserve(node.chunk_count);
    for (const Id& id : node.chunk_lists) {
      std::vector<ChunkRef> part = decode_file_list(repo.read_blob(id, what), what);
      chunks.insert(chunks.end(), part.begin(), part.end());
    }
  }
  uint64_t total = 0;
  for (const ChunkRef& c : chunks) total += c.length;
  if (chunks.size() != node.chunk_count || total != node.size)
    fail(ErrorCategory::corrupt, "{}: chunks add up to {} bytes, the file has {}", what, total, node.size);
  return chunks;
}

}  // namespace arche::backup
