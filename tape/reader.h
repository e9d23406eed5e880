// Reading one tape file back: records are checked (magic, version, CRC32C, media
// set, tape, file and record number); the content is split into object entries
// again. A damaged record (CRC mismatch, a medium error, a record out of sequence)
// is reported with its tape, file and record number and skipped: reading goes on
// at the next record that says where an entry starts (its "first entry" field), so
// objects after the damage are still found. The objects the damage touched are
// simply not delivered — the caller compares what it wanted with what it got (the
// catalog says what should be there) and never gets a damaged object.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "tape/drive.h"
#include "tape/record.h"

namespace arche::tape {

struct DamagedRecord {
  std::string tape;  // its label
  uint32_t file = 0;
  uint64_t record = 0;
  std::string why;
  std::string text() const;  // "tape T file F record R: why"
};

// What the records of the file must say.
struct ExpectedFile {
  std::string tape_label;  // for messages
  Uuid media_set{};
  uint32_t tape_sequence = 0;
  uint32_t file_number = 0;
};

class ArchiveReader {
 public:
  // The drive is at the start of the file. Reads its first record.
  ArchiveReader(TapeDrive& drive, const ExpectedFile& expect);

  // The file header; nothing when the first record is damaged.
  const std::optional<FileHeader>& header() const { return header_; }
  // The drive was at the end of data: there is no such file.
  bool end_of_data() const { return end_of_data_ && !header_ && damaged_.empty(); }

  using Wants = std::function<bool(const std::string& name)>;
  using Take = std::function<void(const std::string& name, std::vector<uint8_t> bytes)>;
  // Reads to the filemark that ends the file. Every entry whose name `wants` is
  // passed to `take` whole, its CRC32C verified.
  void read_objects(const Wants& wants, const Take& take);
  // Where the buffers of wanted objects come from (a caller that hands the taken
  // buffers back for reuse; their capacity is what counts); default: new ones.
  using Buffers = std::function<std::vector<uint8_t>()>;
  void set_buffers(Buffers buffers) { buffers_ = std::move(buffers); }

  const std::vector<DamagedRecord>& damaged() const { return damaged_; }
  uint64_t records_read() const { return records_read_; }
  uint64_t bytes_read() const { return bytes_read_; }

 private:
  // The next record's payload, or nothing at the end of the file; a damaged record
  // is recorded and returned with `good` false.
  struct Next {
    bool end = false, good = false;
    RecordHeader header;
    std::span<const uint8_t> payload;
  };
  Next next_record();
  void feed(std::span<const uint8_t> data, const Wants& wants, const Take& take);
  void drop_entry();
  std::string what() const;

  TapeDrive& drive_;
  ExpectedFile expect_;
  std::vector<uint8_t> buffer_;
  std::optional<FileHeader> header_;
  std::span<const uint8_t> first_content_;  // the first record's content after the file header
  bool first_good_ = false;
  uint32_t first_entry_ = kNoEntry;
  bool ended_ = false, saw_last_ = false, end_of_data_ = false;
  uint64_t next_number_ = 0;
  uint64_t records_read_ = 0, bytes_read_ = 0;
  std::vector<DamagedRecord> damaged_;
  // The entry being read.
  std::vector<uint8_t> header_bytes_;
  bool in_object_ = false, wanted_ = false;
  EntryHeader entry_;
  uint64_t remaining_ = 0;
  std::vector<uint8_t> object_;
  Buffers buffers_;
};

}  // namespace arche::tape
