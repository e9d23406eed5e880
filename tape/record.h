// The on-tape format (docs/tape-format.md): every block written to a tape is one
// fixed-size record with a 64-byte header carrying a magic, the format version,
// the media set, the tape's place in it, the tape file and record number, and a
// CRC32C, so a damaged record is found and the rest of the tape still reads:
//
//   0  "ARCHTREC"        8   magic
//   8  major, minor      u16 u16 (1.0)
//   12 record size       u32 bytes of the whole record (header + payload + zeros)
//   16 payload length    u32
//   20 flags             u32 bit 0: first record of its tape file, bit 1: last
//   24 media-set uuid    16  (zeros on a tape not in a set yet)
//   40 tape sequence     u32 the tape's place in its media set (1 = first)
//   44 file number       u32 the tape file (1 = the media label)
//   48 record number     u64 within the tape file, from 0
//   56 first entry       u32 offset in the payload of the first object entry that
//                            starts in this record; 0xffffffff when none does
//   60 CRC32C            u32 of bytes 0..59 and the payload
//   64 payload, then zeros up to the record size
//
// A tape file's first record begins with the file header (content type, part,
// archive uuid, metadata JSON); the payloads of its records, concatenated, are the
// file's content: object entries (encode_entry_header) each followed by the
// object's bytes.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/json.h"

namespace arche::tape {

constexpr uint32_t kDefaultRecordSize = 256u << 10;
constexpr uint32_t kMinRecordSize = 4096;
constexpr uint32_t kMaxRecordSize = 4u << 20;
constexpr size_t kRecordHeaderSize = 64;
constexpr uint32_t kNoEntry = 0xffffffffu;
constexpr uint16_t kFormatMajor = 1, kFormatMinor = 0;

constexpr uint32_t kFlagFirst = 1, kFlagLast = 2;

using Uuid = std::array<uint8_t, 16>;
Uuid random_uuid();
std::string uuid_text(const Uuid& u);  // 8-4-4-4-12 hex
Uuid parse_uuid(const std::string& text, const std::string& what);
bool is_nil(const Uuid& u);

struct RecordHeader {
  uint32_t record_size = kDefaultRecordSize;
  uint32_t payload_length = 0;
  uint32_t flags = 0;
  Uuid media_set{};
  uint32_t tape_sequence = 0;
  uint32_t file_number = 0;
  uint64_t record_number = 0;
  uint32_t first_entry = kNoEntry;
};

// Fills `record` (record_size bytes, payload already at offset 64, zeros after it)
// with the header and its CRC.
void seal_record_header(std::span<uint8_t> record, const RecordHeader& h);
// Why a record is not good, or nothing: wrong magic, unknown major version, bad
// lengths, CRC mismatch. On success `h` is filled.
std::optional<std::string> check_record(std::span<const uint8_t> record, RecordHeader& h);

// What a tape file holds (file header field "content type").
enum class ContentType : uint16_t { media_label = 1, chunk_archive = 2, snapshot_archive = 3, catalog_archive = 4 };
const char* to_string(ContentType t);

// The header at the start of every tape file's content:
//   "ARCHTFIL" | major u16 | minor u16 | content type u16 | 0 u16 | part u32
//   | archive uuid (16) | metadata length u32 | metadata (JSON) | CRC32C u32
struct FileHeader {
  ContentType type = ContentType::chunk_archive;
  uint32_t part = 1;  // an archive continued on the next tape is part 2, ...
  Uuid archive{};
  Json metadata = Json::object();
};
std::vector<uint8_t> encode_file_header(const FileHeader& h);
// From the start of a file's content; returns the header and sets `length` to its size.
FileHeader decode_file_header(std::span<const uint8_t> data, size_t& length, const std::string& what);

// An object entry: "ARCHTOBJ" | name length u16 | size u64 | name | CRC32C of the
// object's bytes u32 | CRC32C of the entry header before this field u32.
constexpr size_t kEntryFixedSize = 8 + 2 + 8 + 4 + 4;
constexpr size_t kMaxObjectName = 1024;
constexpr uint64_t kMaxObjectSize = 64ull << 20;
struct EntryHeader {
  std::string name;
  uint64_t size = 0;
  uint32_t data_crc = 0;
};
std::vector<uint8_t> encode_entry_header(const EntryHeader& e);
// Needs the whole header in `data`; returns its length or 0 when more bytes are needed.
size_t decode_entry_header(std::span<const uint8_t> data, EntryHeader& e, const std::string& what);

}  // namespace arche::tape
