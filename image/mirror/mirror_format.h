// The on-leg format of arche's RAID-1 mirror: pure layout arithmetic, encoding and
// decoding (no I/O), so the fuzz target can reach every parser. docs/raid.md
// describes the same layout for readers without arche.
//
// One leg (a raw file, a block device, a qcow2 image: any BlockDevice):
//
//   0 ............... data_size        the guest's disk, byte for byte at its offsets
//   align_up(data_size, 64 KiB)        checksum table: one le32 per block (checksum.h)
//   next 4 KiB boundary                write-intent bitmap: 4 KiB pages, one bit per region
//   ... unused ...
//   leg_size - 16 KiB                  superblock copy 0 (8 KiB slot)
//   leg_size -  8 KiB                  superblock copy 1 (8 KiB slot)
//
// The metadata sits at the end so that the data area starts at offset 0: a leg is a
// plain disk image to every other tool (qemu-img, a loop device, a boot loader), and
// the superblock is found from the leg's size alone, like md's version 1.0 superblock.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "image/foreign/ids.h"
#include "image/mirror/checksum.h"

namespace arche::image::mirror {

using Uuid = foreign::Id128;

inline constexpr std::string_view kSuperblockMagic = "ARCHEMIR";
inline constexpr uint16_t kSuperblockMajor = 1;
inline constexpr uint16_t kSuperblockMinor = 0;
inline constexpr uint64_t kSuperblockSlot = 8 * 1024;               // one copy
inline constexpr uint64_t kSuperblockArea = 2 * kSuperblockSlot;   // both, at the very end
inline constexpr uint64_t kMetadataAlign = 64 * 1024;               // where the metadata starts
inline constexpr uint64_t kBitmapPage = 4096;
inline constexpr uint64_t kBitmapHeader = 16;  // le32 crc32c, le32 page index, le64 cleared event
inline constexpr uint64_t kRegionsPerBitmapPage = (kBitmapPage - kBitmapHeader) * 8;
inline constexpr uint64_t kTableEntry = 4;
inline constexpr uint64_t kTablePage = 4096;
inline constexpr uint64_t kEntriesPerTablePage = kTablePage / kTableEntry;
inline constexpr uint64_t kMinBlockSize = 4096, kMaxBlockSize = 64 * 1024, kDefaultBlockSize = 4096;
inline constexpr uint64_t kMinRegionSize = 64 * 1024, kMaxRegionSize = 1ull << 30;
inline constexpr uint64_t kDefaultRegionSize = 4ull << 20;
inline constexpr size_t kMaxLegs = 8;
inline constexpr size_t kMaxEvents = 32;  // the superblock keeps the most recent ones

// What every leg of one array shares.
struct Geometry {
  uint64_t data_size = 0;
  uint64_t block_size = kDefaultBlockSize;    // one checksum per block
  uint64_t region_size = kDefaultRegionSize;  // one bitmap bit per region
  ChecksumKind checksum = kDefaultChecksum;

  uint64_t regions() const { return (data_size + region_size - 1) / region_size; }
  uint64_t blocks() const { return (data_size + block_size - 1) / block_size; }
};

// Throws a usage error naming what is wrong (sizes not powers of two, out of range,
// a data size that is not a multiple of the block size).
void validate(const Geometry& g);

// Where one leg keeps its metadata. Legs of one array may differ in size (a bigger
// disk replaced a smaller one), so each leg's superblock records its own layout.
struct LegLayout {
  uint64_t table_offset = 0, table_bytes = 0;  // table_bytes 0 without checksums
  uint64_t bitmap_offset = 0, bitmap_bytes = 0;
  uint64_t superblock_offset = 0;  // copy 0; copy 1 follows
  uint64_t leg_size = 0;
};

// The smallest leg that holds `g`.
uint64_t min_leg_size(const Geometry& g);
// The layout on a leg of `leg_size` bytes; throws a usage error when it is too small.
LegLayout layout_for(const Geometry& g, uint64_t leg_size);
// The biggest data size (a multiple of 64 KiB) whose metadata fits on a leg of
// `leg_size` bytes; 0 when none does.
uint64_t max_data_size(uint64_t leg_size, const Geometry& shape);
// The layout is inside the leg, in order, and big enough for `g`.
bool layout_consistent(const Geometry& g, const LegLayout& l);

enum class LegState : uint8_t {
  empty = 0,       // a free slot
  active = 1,      // in sync: reads and writes
  rebuilding = 2,  // being copied onto; in sync below rebuild_cursor
  failed = 3,      // kicked out: never read, never written, never trusted
};
const char* to_string(LegState state);

enum class ScrubState : uint8_t { idle = 0, running = 1, paused = 2 };
const char* to_string(ScrubState state);

enum class EventKind : uint8_t {
  healed_mismatch = 1,    // a copy failed its checksum and was rewritten from a good one
  healed_read_error = 2,  // a copy could not be read and was rewritten
  unrecoverable = 3,      // no leg had a good copy: the read failed
  scrub_mismatch = 4,     // without checksums: legs differed, the first leg's copy won
  leg_failed = 5,
  leg_removed = 6,
  leg_added = 7,
  rebuild_done = 8,
};
const char* to_string(EventKind kind);

struct EventRecord {
  int64_t time_ns = 0;
  uint32_t slot = 0;
  EventKind kind = EventKind::healed_mismatch;
  uint64_t block = 0;  // for block events; 0 otherwise
};

struct SlotRecord {
  Uuid uuid{};
  LegState state = LegState::empty;
  uint64_t rebuild_cursor = 0;  // bytes of the data area in sync (rebuilding legs)
  int32_t replaces = -1;        // the slot this leg takes over when its rebuild ends
  std::string path;             // absolute, as last assembled
  uint64_t healed = 0, read_errors = 0, write_errors = 0;
};

struct ScrubRecord {
  ScrubState state = ScrubState::idle;
  uint64_t cursor = 0;  // bytes of the data area already scrubbed in this pass
  int64_t started_ns = 0, finished_ns = 0;
  uint64_t checked = 0, healed = 0, unrecoverable = 0, mismatches = 0;  // of the last/current pass
};

struct SyncRecord {  // the last resync after a crash, or the last rebuild
  int64_t time_ns = 0;
  uint32_t slot = 0;  // rebuild: the leg rebuilt
  uint64_t regions = 0, bytes_read = 0, bytes_written = 0, bytes_zeroed = 0;
  uint64_t milliseconds = 0;
};

struct Superblock {
  Uuid array_uuid{};
  uint32_t slot = 0;  // the slot of the leg this copy sits on; slots[slot].uuid is its uuid
  uint64_t event = 0;  // +1 on every superblock write; the newest copy wins
  int64_t created_ns = 0, updated_ns = 0;
  Geometry geometry;
  LegLayout layout;  // of this leg
  std::vector<SlotRecord> slots;
  ScrubRecord scrub;
  SyncRecord last_resync, last_rebuild;
  uint64_t unrecoverable = 0;  // reads that failed because no leg had a good copy
  std::vector<EventRecord> events;  // oldest first, at most kMaxEvents

  const Uuid& leg_uuid() const { return slots.at(slot).uuid; }
};

// Exactly kSuperblockSlot bytes: the sealed record (core/bytes.h) padded with zeros.
// Throws a usage error when the paths do not fit.
std::vector<uint8_t> encode_superblock(const Superblock& sb);
// Throws format/corrupt/unsupported errors starting with `what`.
Superblock decode_superblock(std::span<const uint8_t> slot, const std::string& what);

// One bitmap page: the bits of regions [page * kRegionsPerBitmapPage, ...) and the
// event at which bits of it were last cleared, sealed with a CRC32C that also covers
// the array uuid (a page of another array fails). A leg whose superblock is older
// than every page's cleared event cannot have missed a write whose bit is gone.
std::vector<uint8_t> encode_bitmap_page(const Uuid& array, uint64_t page, uint64_t cleared_event,
                                        std::span<const uint8_t> bits);
// False when the page is torn or not this array's page `page`: every region it
// covers must then be taken as dirty.
bool decode_bitmap_page(const Uuid& array, uint64_t page, std::span<const uint8_t> raw, std::span<uint8_t> bits_out,
                        uint64_t& cleared_event);

std::string uuid_text(const Uuid& id);

}  // namespace arche::image::mirror
