#include "tape/writer.h"

#include <cstring>

#include "core/crc32c.h"
#include "core/error.h"

namespace arche::tape {

RecordPump::RecordPump(TapeDrive& drive, size_t depth) : drive_(drive), depth_(depth) {
  thread_ = std::thread([this] { run(); });
}

RecordPump::~RecordPump() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

void RecordPump::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    changed_.wait(lock, [this] { return stop_ || (!queue_.empty() && !error_); });
    if (stop_) return;
    Item item = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    lock.unlock();
    changed_.notify_all();
    std::exception_ptr error;
    bool warned = false;
    try {
      if (item.record.empty()) drive_.write_filemark();
      else warned = drive_.write_record(item.record);
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    busy_ = false;
    if (error) {
      error_ = error;
      queue_.clear();
    }
    warned_ |= warned;
    if (!error && !item.record.empty()) bytes_ += item.record.size();
    if (!item.record.empty() && free_.size() <= depth_) free_.push_back(std::move(item.record));
    changed_.notify_all();
  }
}

void RecordPump::check_error_locked() {
  if (error_) std::rethrow_exception(error_);
}

std::vector<uint8_t> RecordPump::take_buffer(size_t size) {
  std::unique_lock lock(mutex_);
  for (size_t i = free_.size(); i-- > 0;) {
    if (free_[i].size() != size) continue;
    std::vector<uint8_t> buffer = std::move(free_[i]);
    free_.erase(free_.begin() + static_cast<long>(i));
    return buffer;
  }
  lock.unlock();
  return std::vector<uint8_t>(size);
}

void RecordPump::submit_record(std::vector<uint8_t> record) {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [this] { return error_ || queue_.size() < depth_; });
  check_error_locked();
  queue_.push_back({std::move(record)});
  changed_.notify_all();
}

void RecordPump::submit_filemark() {
  std::unique_lock lock(mutex_);
  check_error_locked();
  queue_.push_back({});
  changed_.notify_all();
}

void RecordPump::drain() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [this] { return error_ || (queue_.empty() && !busy_); });
  check_error_locked();
}

bool RecordPump::early_warning() const {
  std::lock_guard lock(mutex_);
  return warned_;
}

uint64_t RecordPump::bytes_written() const {
  std::lock_guard lock(mutex_);
  return bytes_;
}

ArchiveWriter::ArchiveWriter(RecordPump& pump, const RecordContext& context, const FileHeader& header)
    : pump_(pump), context_(context) {
  record_ = pump_.take_buffer(context_.record_size);
  append(encode_file_header(header));
}

void ArchiveWriter::append(std::span<const uint8_t> bytes) {
  const size_t capacity = context_.record_size - kRecordHeaderSize;
  while (!bytes.empty()) {
    if (fill_ == capacity) flush_record(false);
    const size_t n = std::min(bytes.size(), capacity - fill_);
    std::memcpy(record_.data() + kRecordHeaderSize + fill_, bytes.data(), n);
    fill_ += n;
    content_bytes_ += n;
    bytes = bytes.subspan(n);
  }
}

void ArchiveWriter::flush_record(bool last) {
  RecordHeader h;
  h.record_size = context_.record_size;
  h.payload_length = static_cast<uint32_t>(fill_);
  h.flags = (record_number_ == 0 ? kFlagFirst : 0) | (last ? kFlagLast : 0);
  h.media_set = context_.media_set;
  h.tape_sequence = context_.tape_sequence;
  h.file_number = context_.file_number;
  h.record_number = record_number_;
  h.first_entry = first_entry_;
  // A reused buffer still holds an older record: the format wants zeros after the payload.
  std::memset(record_.data() + kRecordHeaderSize + fill_, 0, record_.size() - kRecordHeaderSize - fill_);
  seal_record_header(record_, h);
  pump_.submit_record(std::move(record_));
  if (!last) record_ = pump_.take_buffer(context_.record_size);
  ++record_number_;
  fill_ = 0;
  first_entry_ = kNoEntry;
}

EntryPosition ArchiveWriter::add_object(const std::string& name, std::span<const uint8_t> bytes) {
  const size_t capacity = context_.record_size - kRecordHeaderSize;
  if (fill_ == capacity) flush_record(false);
  EntryPosition at{record_number_, static_cast<uint32_t>(fill_)};
  if (first_entry_ == kNoEntry) first_entry_ = static_cast<uint32_t>(fill_);
  EntryHeader e;
  e.name = name;
  e.size = bytes.size();
  e.data_crc = crc32c(bytes.data(), bytes.size());
  append(encode_entry_header(e));
  append(bytes);
  return at;
}

uint64_t ArchiveWriter::finish() {
  if (finished_) fail(ErrorCategory::internal, "tape file finished twice");
  finished_ = true;
  flush_record(true);
  pump_.submit_filemark();
  return record_number_;
}

}  // namespace arche::tape
