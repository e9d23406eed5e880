// The repository index: which pack holds each chunk, and where in it.
//
// On disk, index files (index/<content hash>) are encrypted objects (object.h,
// "ARCHEIDX" v1) listing packs and their entries:
//   pack count (u32) | per pack: pack id (32) | pack size (u64) | entry count (u32)
//                      | entries as in the pack footer (pack.h), 45 bytes each
// Every backup adds one index file for the packs it wrote; prune and repair replace
// them all by one. The index holds nothing that the pack footers do not also hold,
// so it can always be rebuilt from the packs.
//
// In memory, ChunkIndex keeps 40 bytes per chunk: the 32-byte id and one 64-bit
// location (pack number: 24 bits, frame offset / 16: 21 bits, frame length / 16:
// 19 bits), in a sorted vector that is searched by bisection. Chunks added during a
// backup go to a hash map beside it that is merged into the vector whenever it grows
// past an eighth of it, so even a first backup of many terabytes stays near 40 B
// per chunk.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <shared_mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "backup/crypto.h"
#include "backup/pack.h"

namespace arche::backup {

std::vector<uint8_t> encode_index_payload(const std::vector<PackInfo>& packs);
// Validates every entry; throws corrupt errors naming `what`.
std::vector<PackInfo> decode_index_payload(std::span<const uint8_t> data, const std::string& what);

class ChunkIndex {
 public:
  struct Location {
    uint32_t pack;    // pack number (pack_id() gives the id)
    uint32_t offset;  // of the frame in the pack
    uint32_t length;  // of the frame
  };

  // Loading (not thread-safe): add packs, then finalize() once.
  void add_pack(const PackInfo& pack);
  void reserve(size_t chunks) { sorted_.reserve(chunks); }
  void finalize();
  // Forgets everything (prune rebuilds the index from the packs it keeps).
  void clear();

  // Thread-safe from here on.
  std::optional<Location> find(const Id& id) const;
  bool contains(const Id& id) const { return find(id).has_value(); }
  // During a backup: true when `id` is new and the caller must store it; false when
  // the repository has it already (its pack is then remembered as referenced) or
  // another worker is storing it.
  bool claim(const Id& id);
  // A chunk a backup relies on without storing it (an unchanged file's, an image
  // chunk taken from the earlier snapshot): true when the index has it, and its pack
  // is remembered as referenced.
  bool reference(const Id& id);
  // The packs of loaded index entries that claim() or reference() met.
  std::vector<Id> referenced_packs() const;
  // Records where a claimed chunk was written.
  void place(const Id& id, const Location& where);
  // Registers a pack id and returns its number.
  uint32_t add_pack_id(const Id& pack_id);
  Id pack_id(uint32_t number) const;
  size_t pack_count() const;
  size_t size() const;
  // Bytes of RAM per chunk (for `info` and the tests of the 40-byte budget).
  static constexpr size_t kBytesPerEntry = 40;

 private:
  struct Entry {
    Id id;
    uint64_t location;
  };
  static_assert(sizeof(Entry) == kBytesPerEntry, "the index must stay at 40 bytes per chunk");
  static uint64_t encode(const Location& where);
  static Location decode(uint64_t location);
  uint32_t pack_number_locked(const Id& pack_id);
  bool in_sorted(const Id& id) const;
  void mark_referenced(uint32_t pack);
  void merge_placed_locked();

  mutable std::shared_mutex mutex_;
  std::vector<Entry> sorted_;
  std::unordered_map<Id, uint64_t, IdHash> added_;
  size_t placed_ = 0;  // entries of added_ that are not pending
  std::deque<Id> packs_;
  std::unordered_map<Id, uint32_t, IdHash> pack_numbers_;
  mutable std::mutex referenced_mutex_;
  std::vector<bool> referenced_;  // by pack number
};

}  // namespace arche::backup
