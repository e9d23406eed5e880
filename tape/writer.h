// Writing tape files: ArchiveWriter cuts a tape file's content into fixed-size
// records (record.h) and hands them to a RecordPump, whose thread keeps the drive
// streaming while the next records are prepared (double buffering: a few records
// in flight, so a drive never waits for compression of the catalog, a store's read
// of the next pack and so on, and never stops and repositions — "shoe-shining").
// The record buffers go round: written ones come back to the pump's free list and
// are filled again, so a long backup allocates (and the kernel zeroes) only the
// first few.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "tape/drive.h"
#include "tape/record.h"

namespace arche::tape {

class RecordPump {
 public:
  // `depth` records may wait for the drive.
  explicit RecordPump(TapeDrive& drive, size_t depth = 8);
  // Stops the thread; what was not written yet is dropped (call drain() first).
  ~RecordPump();
  RecordPump(const RecordPump&) = delete;
  RecordPump& operator=(const RecordPump&) = delete;

  // A record buffer of `size` bytes to fill: a written one when one is free (its
  // old bytes still in it), else a new one.
  std::vector<uint8_t> take_buffer(size_t size);
  // Blocks while `depth` records wait; rethrows the writer thread's error.
  void submit_record(std::vector<uint8_t> record);
  void submit_filemark();
  // Waits until everything submitted is on the tape; rethrows the thread's error.
  void drain();
  // The drive reported its early-warning zone (a few records after the fact).
  bool early_warning() const;
  uint64_t bytes_written() const;

 private:
  struct Item {
    std::vector<uint8_t> record;  // empty: a filemark
  };
  void run();
  void check_error_locked();

  TapeDrive& drive_;
  const size_t depth_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Item> queue_;
  std::vector<std::vector<uint8_t>> free_;  // written record buffers
  bool busy_ = false, stop_ = false, warned_ = false;
  uint64_t bytes_ = 0;
  std::exception_ptr error_;
  std::thread thread_;
};

// Where the records of a tape file go: the media set, the tape's sequence in it
// and the file number are in every record header.
struct RecordContext {
  Uuid media_set{};
  uint32_t tape_sequence = 0;
  uint32_t file_number = 0;
  uint32_t record_size = kDefaultRecordSize;
};

// Where an object entry starts: the record within the tape file, the offset in
// that record's payload.
struct EntryPosition {
  uint64_t record = 0;
  uint32_t offset = 0;
};

class ArchiveWriter {
 public:
  ArchiveWriter(RecordPump& pump, const RecordContext& context, const FileHeader& header);
  // Appends an object (entry header and bytes); returns where its entry starts.
  EntryPosition add_object(const std::string& name, std::span<const uint8_t> bytes);
  // The last record and the filemark; returns the file's record count.
  uint64_t finish();
  uint64_t records() const { return record_number_ + (fill_ > 0 ? 1 : 0); }
  uint64_t content_bytes() const { return content_bytes_; }

 private:
  void append(std::span<const uint8_t> bytes);
  void flush_record(bool last);

  RecordPump& pump_;
  RecordContext context_;
  std::vector<uint8_t> record_;
  size_t fill_ = 0;  // payload bytes in record_
  uint32_t first_entry_ = kNoEntry;
  uint64_t record_number_ = 0;
  uint64_t content_bytes_ = 0;
  bool finished_ = false;
};

}  // namespace arche::tape
