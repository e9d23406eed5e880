#include "backup/chunk_store.h"

#include <algorithm>

#include "core/error.h"
#include "core/log.h"

namespace arche::backup {

namespace {
// Packs being finished at once: two keep a local disk busy (more would only queue
// on it); a remote store takes more requests at once (its parallelism) and each
// pack there waits for its last part and the commit's round trips, so up to four
// are finished while the next fills. Each holds at most what its writer buffers.
size_t max_finishing(const Store& store) {
  return std::clamp<size_t>(store.capabilities().parallelism / 2, 2, 4);
}
}  // namespace

ChunkStore::ChunkStore(Repository& repo, int compression_level, bool dry_run)
    : repo_(repo), level_(compression_level), dry_run_(dry_run), max_finishing_(max_finishing(repo.store())) {}

ChunkStore::~ChunkStore() { abandon(); }

std::vector<PackInfo> ChunkStore::abandon() noexcept {
  std::lock_guard lock(mutex_);
  current_.reset();
  for (auto& f : finishing_) {
    try {
      done_.push_back(f.get());
    repo_.note_write();
    } catch (const std::exception&) {
      // The pack was not completed; its temporary file is gone with its writer.
    }
  }
  finishing_.clear();
  return std::move(done_);
}

Id ChunkStore::store(BlobKind kind, std::span<const uint8_t> data) {
  const Id id = repo_.keys().chunk_id(data);
  stats_.blobs += 1;
  stats_.bytes += data.size();
  if (!repo_.index().claim(id)) return id;
  stats_.new_blobs += 1;
  stats_.new_bytes += data.size();
  if (dry_run_) return id;
  thread_local std::vector<uint8_t> frame;
  if (frame.size() < frame_bound(data.size())) frame.resize(frame_bound(kMaxBlobSize));
  size_t length = encode_frame(frame, repo_.keys(), kind, id, data, level_);
  append(std::span(frame).first(length), id, kind, static_cast<uint32_t>(data.size()));
  return id;
}

void ChunkStore::store_frame(std::span<const uint8_t> frame, const Id& id, BlobKind kind, uint32_t raw_length) {
  if (!repo_.index().claim(id) || dry_run_) return;
  append(frame, id, kind, raw_length);
}

void ChunkStore::append(std::span<const uint8_t> frame, const Id& id, BlobKind kind, uint32_t raw_length) {
  std::lock_guard lock(mutex_);
  if (current_ && current_->size() + frame.size() > repo_.settings().pack_size) rotate_locked();
  if (!current_) {
    Id pack_id = Id::random();
    current_ = std::make_unique<PackWriter>(repo_.store(), pack_id, repo_.id(), repo_.keys());
    current_number_ = repo_.index().add_pack_id(pack_id);
  }
  uint32_t offset = current_->append(frame, id, kind, raw_length);
  repo_.index().place(id, {current_number_, offset, static_cast<uint32_t>(frame.size())});
  stats_.stored_bytes += frame.size();
}

void ChunkStore::rotate_locked() {
  std::shared_ptr<PackWriter> writer(std::move(current_));
  finishing_.push_back(std::async(std::launch::async, [writer] { return writer->finish(); }));
  collect_locked(max_finishing_);
}

void ChunkStore::collect_locked(size_t keep) {
  while (finishing_.size() > keep) {
    std::future<PackInfo> f = std::move(finishing_.front());
    finishing_.pop_front();
    done_.push_back(f.get());
    repo_.note_write();
  }
}

std::vector<PackInfo> ChunkStore::finish() {
  std::lock_guard lock(mutex_);
  if (current_ && current_->count()) rotate_locked();
  current_.reset();
  collect_locked(0);
  return std::move(done_);
}

}  // namespace arche::backup
