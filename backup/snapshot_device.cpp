#include "backup/snapshot_device.h"

#include <cstring>

#include "backup/chunk_list.h"
#include "core/error.h"

namespace arche::backup {

namespace {
constexpr size_t kCachedChunks = 4;
}

SnapshotImageDevice::SnapshotImageDevice(Repository& repo, const Snapshot& snapshot, const ImageRecord& image)
    : repo_(repo), image_(image), name_(repo.location() + "::" + snapshot.name + ":" + image.name) {}

void SnapshotImageDevice::read_only() const { fail(ErrorCategory::unsupported, "{}: a snapshot is read-only", name_); }
void SnapshotImageDevice::write(uint64_t, std::span<const uint8_t>) { read_only(); }
void SnapshotImageDevice::write_zeroes(uint64_t, uint64_t, bool) { read_only(); }
void SnapshotImageDevice::discard(uint64_t, uint64_t) { read_only(); }

Id SnapshotImageDevice::chunk_id(uint64_t chunk) {
  const uint64_t block = chunk / kImageListEntries;
  if (block != list_loaded_) {
    const std::string what = name_ + ": chunk list " + std::to_string(block);
    list_ = decode_image_list(repo_.read_blob(image_.lists[block], what), what);
    list_loaded_ = block;
  }
  const uint64_t i = chunk % kImageListEntries;
  if (i >= list_.size()) fail(ErrorCategory::corrupt, "{}: chunk list too short", name_);
  return list_[i];
}

std::vector<uint8_t> SnapshotImageDevice::chunk_data(uint64_t chunk, const Id& id) {
  for (auto it = cache_.begin(); it != cache_.end(); ++it)
    if (it->first == chunk) {
      cache_.splice(cache_.begin(), cache_, it);
      return cache_.front().second;
    }
  std::vector<uint8_t> data = repo_.read_blob(id, fmt::format("{} at offset {:#x}", name_, chunk * image_.chunk_size));
  const uint64_t expected = std::min<uint64_t>(image_.chunk_size, image_.size - chunk * image_.chunk_size);
  if (data.size() != expected)
    fail(ErrorCategory::corrupt, "{}: chunk {} has {} bytes, expected {}", name_, id.short_hex(), data.size(), expected);
  ++fetched_;
  cache_.emplace_front(chunk, data);
  if (cache_.size() > kCachedChunks) cache_.pop_back();
  return data;
}

void SnapshotImageDevice::read(uint64_t offset, std::span<uint8_t> out) {
  check_request(offset, out.size(), "read");
  std::lock_guard lock(mutex_);
  for (uint64_t done = 0; done < out.size();) {
    const uint64_t pos = offset + done;
    const uint64_t chunk = pos / image_.chunk_size;
    const uint64_t within = pos % image_.chunk_size;
    const uint64_t n = std::min<uint64_t>(out.size() - done, image_.chunk_size - within);
    const Id id = chunk_id(chunk);
    if (id.is_zero()) {
      std::memset(out.data() + done, 0, n);
    } else {
      std::vector<uint8_t> data = chunk_data(chunk, id);
      std::memcpy(out.data() + done, data.data() + within, n);
    }
    done += n;
  }
}

image::LayerStatus SnapshotImageDevice::layer_status(uint64_t offset, uint64_t max_length) {
  std::lock_guard lock(mutex_);
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
