// Chunk lists, stored as blobs of kind `list`:
//
// Image chunk lists ("ARCHLIST" v1 records, core/bytes.h envelope): the ids of an
// image's fixed-size chunks in disk order, 32 bytes each, at most kImageListEntries
// per blob. Entry i of list blob k covers the disk bytes from
// (k * kImageListEntries + i) * chunk_size; an all-zero id is a hole (the chunk
// reads as zeros and was never stored). So offset -> chunk id is two divisions and
// one blob read: a lazy BlockDevice over a snapshot reads only the lists and chunks
// it touches (snapshot_device.h).
//
// File content lists ("ARCHFLST" v1): (id, length) pairs of a large file's
// content-defined chunks, at most kFileListEntries per blob. An all-zero id is a
// hole of `length` bytes (up to kMaxHoleLength) that was never read nor stored: a
// sparse file's holes (found with SEEK_HOLE) stay holes.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "backup/crypto.h"

namespace arche::backup {

constexpr size_t kImageListEntries = 4096;
constexpr size_t kFileListEntries = 8192;
// Files with more chunks than this keep them in list blobs instead of their tree.
constexpr size_t kInlineChunks = 256;

// Longest hole one file chunk reference stands for.
constexpr uint32_t kMaxHoleLength = 1u << 30;

struct ChunkRef {
  Id id;
  uint32_t length = 0;
  bool is_hole() const { return id.is_zero(); }
  bool operator==(const ChunkRef&) const = default;
};

std::vector<uint8_t> encode_image_list(std::span<const Id> ids);
std::vector<Id> decode_image_list(std::span<const uint8_t> data, const std::string& what);

std::vector<uint8_t> encode_file_list(std::span<const ChunkRef> chunks);
std::vector<ChunkRef> decode_file_list(std::span<const uint8_t> data, const std::string& what);

}  // namespace arche::backup
