// Trees and file chunk lists in and out of the repository (formats: tree.h,
// chunk_list.h).
#pragma once

#include <string>
#include <vector>

#include "backup/chunk_store.h"
#include "backup/tree.h"

namespace arche::backup {

// Encodes and stores a tree; returns its pieces.
std::vector<Id> store_tree(ChunkStore& store, const Tree& tree);
Tree load_tree(Repository& repo, const std::vector<Id>& pieces, const std::string& what);

// Puts a file's chunks into the node: inline when few, else in list blobs.
void set_file_chunks(ChunkStore& store, Node& node, std::vector<ChunkRef> chunks);
// A file's chunks, reading list blobs when needed; checks they add up to its size.
std::vector<ChunkRef> load_file_chunks(Repository& repo, const Node& node, const std::string& what);

}  // namespace arche::backup
