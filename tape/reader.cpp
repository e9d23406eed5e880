#include "tape/reader.h"

#include <fmt/format.h>

#include "core/crc32c.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "tape/buffers.h"

namespace arche::tape {

std::string DamagedRecord::text() const {
  return fmt::format("tape {} file {} record {}: {}", tape, file, record, why);
}

ArchiveReader::ArchiveReader(TapeDrive& drive, const ExpectedFile& expect)
    : drive_(drive), expect_(expect), buffer_(kMaxRecordSize) {
  Next n = next_record();
  if (n.end) {
    ended_ = true;
    return;
  }
  if (!n.good) return;
  first_good_ = true;
  try {
    size_t length = 0;
    header_ = decode_file_header(n.payload, length, what());
    first_content_ = n.payload.subspan(length);
    first_entry_ = n.header.first_entry;
  } catch (const Error& e) {
    damaged_.push_back({expect_.tape_label, expect_.file_number, 0, e.what()});
    first_good_ = false;
  }
}

std::string ArchiveReader::what() const {
  return fmt::format("tape {} file {}", expect_.tape_label, expect_.file_number);
}

ArchiveReader::Next ArchiveReader::next_record() {
  Next n;
  if (ended_) {
    n.end = true;
    return n;
  }
  if (saw_last_) {
    // The filemark after the last record ends the file.
    ended_ = true;
    n.end = true;
    if (drive_.read_record(buffer_).kind == ReadKind::record)
      damaged_.push_back({expect_.tape_label, expect_.file_number, next_number_, "a record after the file's last one"});
    return n;
  }
  const uint64_t number = next_number_++;
  ReadResult r;
  try {
    r = drive_.read_record(buffer_);
  } catch (const Error& e) {
    if (e.category() != ErrorCategory::io && e.category() != ErrorCategory::format) throw;
    ++records_read_;
    damaged_.push_back({expect_.tape_label, expect_.file_number, number, e.what()});
    return n;
  }
  if (r.kind != ReadKind::record) {
    ended_ = true;
    n.end = true;
    end_of_data_ = r.kind == ReadKind::end_of_data;
    if (!saw_last_ && number > 0)
      damaged_.push_back({expect_.tape_label, expect_.file_number, number,
                          r.kind == ReadKind::end_of_data
                              ? "the tape ends inside this file (its last record is missing)"
                              : "the file ends before its last record"});
    return n;
  }
  ++records_read_;
  bytes_read_ += r.length;
  std::span<const uint8_t> record(buffer_.data(), r.length);
  std::optional<std::string> bad = check_record(record, n.header);
  if (!bad && n.header.media_set != expect_.media_set) bad = "belongs to another media set";
  if (!bad && (n.header.tape_sequence != expect_.tape_sequence || n.header.file_number != expect_.file_number))
    bad = fmt::format("says tape {} file {} of its set", n.header.tape_sequence, n.header.file_number);
  if (!bad && n.header.record_number != number)
    bad = fmt::format("out of sequence (says record {})", n.header.record_number);
  if (bad) {
    damaged_.push_back({expect_.tape_label, expect_.file_number, number, *bad});
    return n;
  }
  if (n.header.flags & kFlagLast) saw_last_ = true;
  n.good = true;
  n.payload = record.subspan(kRecordHeaderSize, n.header.payload_length);
  return n;
}

void ArchiveReader::drop_entry() {
  header_bytes_.clear();
  in_object_ = false;
  object_.clear();
  remaining_ = 0;
}

void ArchiveReader::feed(std::span<const uint8_t> data, const Wants& wants, const Take& take) {
  while (!data.empty()) {
    if (in_object_) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, data.size()));
      if (wanted_) object_.insert(object_.end(), data.begin(), data.begin() + static_cast<long>(n));
      remaining_ -= n;
      data = data.subspan(n);
      if (remaining_ == 0) {
        in_object_ = false;
        if (wanted_ && crc32c(object_.data(), object_.size()) == entry_.data_crc) take(entry_.name, std::move(object_));
        else if (wanted_)
          damaged_.push_back({expect_.tape_label, expect_.file_number, next_number_ - 1,
                              fmt::format("object {}: CRC32C mismatch", entry_.name)});
        object_.clear();
      }
      continue;
    }
    const size_t old = header_bytes_.size();
    header_bytes_.insert(header_bytes_.end(), data.begin(), data.end());
    const size_t total = decode_entry_header(header_bytes_, entry_, what());
    if (total == 0) return;  // the rest of the header is in the next record
    data = data.subspan(total - old);
    header_bytes_.clear();
    in_object_ = true;
    wanted_ = wants(entry_.name);
    remaining_ = entry_.size;
    if (wanted_) {
      object_ = buffers_ ? buffers_() : std::vector<uint8_t>();
      object_.clear();
      reserve_buffer(object_, entry_.size);
    }
    if (remaining_ == 0) {
      in_object_ = false;
      if (wanted_) take(entry_.name, {});
    }
  }
}

void ArchiveReader::read_objects(const Wants& wants, const Take& take) {
  bool lost_sync = !first_good_;
  if (first_good_) {
    try {
      feed(first_content_, wants, take);
    } catch (const Error& e) {
      if (e.category() != ErrorCategory::corrupt) throw;
      damaged_.push_back({expect_.tape_label, expect_.file_number, 0, e.what()});
      drop_entry();
      lost_sync = true;
    }
  }
  for (;;) {
    interrupt::check();
    Next n = next_record();
    if (n.end) break;
    if (!n.good) {
      drop_entry();
      lost_sync = true;
      continue;
    }
    std::span<const uint8_t> content = n.payload;
    if (lost_sync) {
      if (n.header.first_entry == kNoEntry) continue;
      content = content.subspan(n.header.first_entry);
      lost_sync = false;
    }
    try {
      feed(content, wants, take);
    } catch (const Error& e) {
      if (e.category() != ErrorCategory::corrupt) throw;
      damaged_.push_back({expect_.tape_label, expect_.file_number, n.header.record_number, e.what()});
      drop_entry();
      lost_sync = true;
    }
  }
  if (in_object_ || !header_bytes_.empty()) drop_entry();  // the file ended inside an entry
}

}  // namespace arche::tape
