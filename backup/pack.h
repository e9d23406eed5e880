// Packs (data/<xx>/<pack id>): many frames (frame.h) in one file, with an encrypted
// footer that indexes them, so the repository index can always be rebuilt from the
// packs alone, and a trailer that lets a reader find the footer and verify the whole
// file without the key (tape verification):
//
//   header (48): "ARCHPACK" | major (u16) | minor (u16) | header length (u32, 48)
//                | repository id (32)
//   frames, each starting at a multiple of 16
//   footer: nonce (24) | XChaCha20-Poly1305(entries) | tag (16);  AAD = header + pack id
//           entries: count (u32) | count x [id (32) | kind (u8) | offset (u32)
//                    | frame length (u32) | plaintext length (u32)]
//   trailer (32): "ARCHPEND" | footer offset (u64) | footer length (u32)
//                 | entry count (u32) | CRC32C of every byte before the trailer (u32)
//                 | CRC32C of the trailer's first 28 bytes (u32)
//
// A pack is written front to back through the Store (ObjectWriter) and appears
// under its name only when complete. Pack ids are random.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backup/crypto.h"
#include "backup/frame.h"
#include "backup/store.h"

namespace arche::backup {

constexpr size_t kPackHeaderSize = 48;
constexpr size_t kPackTrailerSize = 32;
constexpr size_t kPackEntrySize = 45;
// Frames of a pack end before 32 MiB: offsets fit the in-memory index (index.h).
constexpr uint64_t kMaxPackSize = 32u << 20;

struct PackEntry {
  Id id;
  BlobKind kind = BlobKind::data;
  uint32_t offset = 0;      // of the frame in the pack
  uint32_t length = 0;      // of the frame, padding included
  uint32_t raw_length = 0;  // of the plaintext
};

struct PackInfo {
  Id id;
  uint64_t size = 0;  // of the pack file
  std::vector<PackEntry> entries;
};

struct PackTrailer {
  uint64_t footer_offset;
  uint32_t footer_length;
  uint32_t count;
  uint32_t crc;  // of every byte before the trailer
};

std::vector<uint8_t> encode_pack_header(const Id& repo_id);
// Checks magic, version and the repository id (a pack from another repository is corrupt here).
void check_pack_header(std::span<const uint8_t> header, const Id& repo_id, const std::string& what);
std::vector<uint8_t> encode_pack_trailer(const PackTrailer& t);
PackTrailer decode_pack_trailer(std::span<const uint8_t> data, uint64_t pack_size, const std::string& what);
std::vector<uint8_t> encode_footer_entries(const std::vector<PackEntry>& entries);
// Validates every entry against the pack layout (aligned, inside the frame area,
// sorted, not overlapping).
std::vector<PackEntry> decode_footer_entries(std::span<const uint8_t> data, uint64_t frames_end,
                                             const std::string& what);

// "data/ab/ab12...": where a pack lives below the repository root.
std::string pack_relative_path(const Id& pack_id);

// Reads a pack's trailer and footer (a few KB at the end of the file) and returns its
// entries; throws corrupt errors naming the pack when anything does not verify.
PackInfo read_pack_index(ObjectReader& pack, const Id& pack_id, const Id& repo_id, const RepoKeys& keys);

// Reads a pack front to back without trusting its footer: every frame header in turn
// (a damaged frame whose length field still makes sense is skipped over). Calls
// `frame(header, offset, bytes)`; stops at the footer or at the first byte that is
// not a frame. Used by repair when a footer is damaged.
void scan_pack_frames(ObjectReader& pack, const std::string& what,
                      const std::function<void(const FrameHeader&, uint64_t, std::span<uint8_t>)>& frame);

// Builds one pack. Not thread-safe: the chunk store serialises appends.
class PackWriter {
 public:
  PackWriter(Store& store, const Id& pack_id, const Id& repo_id, const RepoKeys& keys);
  PackWriter(const PackWriter&) = delete;
  PackWriter& operator=(const PackWriter&) = delete;

  const Id& id() const { return id_; }
  uint64_t size() const { return size_; }
  size_t count() const { return entries_.size(); }
  // Appends a frame (length a multiple of 16); returns its offset.
  uint32_t append(std::span<const uint8_t> frame, const Id& id, BlobKind kind, uint32_t raw_length);
  // Writes footer and trailer and commits the pack (durable, under its name).
  PackInfo finish();

 private:
  Id id_;
  const RepoKeys& keys_;
  std::vector<uint8_t> header_;
  std::unique_ptr<ObjectWriter> writer_;
  uint64_t size_ = 0;
  uint32_t crc_ = 0;
  std::vector<PackEntry> entries_;
};

}  // namespace arche::backup
