#include "backup/snapshot_device.h"

#include <algorithm>
#include <cstring>

#include "backup/chunk_list.h"
#include "core/error.h"

namespace arche::backup {

SnapshotImageDevice::SnapshotImageDevice(Repository& repo, const Snapshot& snapshot, const ImageRecord& image,
                                         SnapshotDeviceOptions options)
    : repo_(repo),
      image_(image),
      name_(repo.location() + "::" + snapshot.name + ":" + image.name),
      options_(options),
      lists_(options.cached_lists),
      chunks_(options.cached_chunks) {}

SnapshotImageDevice::~SnapshotImageDevice() {
  {
    std::lock_guard lock(ahead_mutex_);
    stopping_ = true;
    ahead_queue_.clear();
  }
  ahead_wake_.notify_all();
  if (ahead_thread_.joinable()) ahead_thread_.join();
}

void SnapshotImageDevice::read_only() const { fail(ErrorCategory::unsupported, "{}: a snapshot is read-only", name_); }
void SnapshotImageDevice::write(uint64_t, std::span<const uint8_t>) { read_only(); }
void SnapshotImageDevice::write_zeroes(uint64_t, uint64_t, bool) { read_only(); }
void SnapshotImageDevice::discard(uint64_t, uint64_t) { read_only(); }

Id SnapshotImageDevice::chunk_id(uint64_t chunk) {
  const uint64_t block = chunk / kImageListEntries;
  if (block >= image_.lists.size()) fail(ErrorCategory::corrupt, "{}: chunk {} has no chunk list", name_, chunk);
  std::shared_ptr<const IdList> list = lists_.get(block, [&] {
    const std::string what = name_ + ": chunk list " + std::to_string(block);
    std::vector<uint8_t> frame, scratch;
    std::span<const uint8_t> plain = repo_.read_blob(image_.lists[block], frame, scratch, what);
    fetched_bytes_ += frame.size();
    return std::make_shared<const IdList>(decode_image_list(plain, what));
  });
  const uint64_t i = chunk % kImageListEntries;
  if (i >= list->size()) fail(ErrorCategory::corrupt, "{}: chunk list too short", name_);
  return (*list)[i];
}

std::shared_ptr<const SnapshotImageDevice::Buffer> SnapshotImageDevice::fetch_chunk(uint64_t chunk, const Id& id) {
  std::vector<uint8_t> frame, scratch;
  std::span<const uint8_t> plain =
      repo_.read_blob(id, frame, scratch, fmt::format("{} at offset {:#x}", name_, chunk * image_.chunk_size));
  fetched_bytes_ += frame.size();
  const uint64_t expected = std::min<uint64_t>(image_.chunk_size, image_.size - chunk * image_.chunk_size);
  if (plain.size() != expected)
    fail(ErrorCategory::corrupt, "{}: chunk {} has {} bytes, expected {}", name_, id.short_hex(), plain.size(), expected);
  ++fetched_chunks_;
  // The plaintext is in one of the two buffers; take it over instead of copying.
  for (std::vector<uint8_t>* b : {&scratch, &frame})
    if (plain.data() == b->data() && plain.size() == b->size()) return std::make_shared<const Buffer>(std::move(*b));
  return std::make_shared<const Buffer>(plain.begin(), plain.end());
}

std::shared_ptr<const SnapshotImageDevice::Buffer> SnapshotImageDevice::chunk_data(uint64_t chunk, const Id& id) {
  return chunks_.get(chunk, [&] { return fetch_chunk(chunk, id); });
}

void SnapshotImageDevice::read(uint64_t offset, std::span<uint8_t> out) {
  check_request(offset, out.size(), "read");
  if (out.empty()) return;
  note_access(offset, out.size());
  for (uint64_t done = 0; done < out.size();) {
    const uint64_t pos = offset + done;
    const uint64_t chunk = pos / image_.chunk_size;
    const uint64_t within = pos % image_.chunk_size;
    const uint64_t n = std::min<uint64_t>(out.size() - done, image_.chunk_size - within);
    const Id id = chunk_id(chunk);
    if (id.is_zero()) {
      std::memset(out.data() + done, 0, n);
    } else {
      std::shared_ptr<const Buffer> data = chunk_data(chunk, id);
      std::memcpy(out.data() + done, data->data() + within, n);
    }
    done += n;
  }
}

// A read that starts where the last one ended and reaches into a chunk after the
// run's last one extends the run: the next `window` chunks are queued, the window
// doubling each step. Anything else ends the run.
void SnapshotImageDevice::note_access(uint64_t offset, uint64_t length) {
  if (options_.max_read_ahead == 0) return;
  const uint64_t last = (offset + length - 1) / image_.chunk_size;
  const uint64_t chunks = (image_.size + image_.chunk_size - 1) / image_.chunk_size;
  std::unique_lock lock(ahead_mutex_);
  const bool sequential = offset == next_offset_;
  next_offset_ = offset + length;
  if (!sequential) {
    window_ = 0;
    run_chunk_ = last;
    queued_until_ = last + 1;
    return;
  }
  if (last <= run_chunk_) return;
  run_chunk_ = last;
  window_ = std::min<uint64_t>(window_ ? window_ * 2 : 1, options_.max_read_ahead);
  const uint64_t until = std::min(chunks, last + 1 + window_);
  for (uint64_t c = std::max(queued_until_, last + 1); c < until; ++c) ahead_queue_.push_back(c);
  queued_until_ = std::max(queued_until_, until);
  if (ahead_queue_.empty()) return;
  if (!ahead_thread_.joinable()) ahead_thread_ = std::thread([this] { read_ahead_loop(); });
  lock.unlock();
  ahead_wake_.notify_one();
}

void SnapshotImageDevice::read_ahead_loop() {
  std::unique_lock lock(ahead_mutex_);
  for (;;) {
    ahead_wake_.wait(lock, [&] { return stopping_ || !ahead_queue_.empty(); });
    if (stopping_) return;
    const uint64_t chunk = ahead_queue_.front();
    ahead_queue_.pop_front();
    ahead_busy_ = true;
    lock.unlock();
    try {
      const Id id = chunk_id(chunk);
      if (!id.is_zero()) chunks_.prefetch(chunk, [&] { return fetch_chunk(chunk, id); });
    } catch (...) {
      // The reader that gets there fetches the chunk itself and sees the error.
    }
    lock.lock();
    ahead_busy_ = false;
    if (ahead_queue_.empty()) ahead_idle_.notify_all();
  }
}

void SnapshotImageDevice::settle_read_ahead() {
  std::unique_lock lock(ahead_mutex_);
  ahead_idle_.wait(lock, [&] { return stopping_ || (ahead_queue_.empty() && !ahead_busy_); });
}

image::LayerStatus SnapshotImageDevice::layer_status(uint64_t offset, uint64_t max_length) {
  const uint64_t chunk = offset / image_.chunk_size;
  const bool hole = chunk_id(chunk).is_zero();
  uint64_t length = std::min<uint64_t>(max_length, (chunk + 1) * image_.chunk_size - offset);
  length = std::min(length, image_.size - offset);
  return {hole ? image::ExtentKind::zero : image::ExtentKind::data, length, std::nullopt, false};
}

image::ImageInfo SnapshotImageDevice::info() const {
  image::ImageInfo i;
  i.filename = name_;
  i.format = format();
  i.virtual_size = image_.size;
  i.cluster_size = image_.chunk_size;
  return i;
}

}  // namespace arche::backup
