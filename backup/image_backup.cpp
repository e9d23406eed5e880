#include "backup/image_backup.h"

#include <algorithm>
#include <atomic>
#include <boost/filesystem.hpp>
#include <chrono>
#include <climits>
#include <cstring>
#include <memory>

#include "backup/chunk_list.h"
#include "core/bytes.h"
#include "core/error.h"
#include "core/log.h"
#include "core/units.h"
#include "image/format.h"

namespace arche::backup {

namespace {

// A layer whose mtime or ctime is this close to the start of the backup may still
// be changing within one timestamp tick: it is recorded but never trusted as
// unchanged later (2 s also covers file systems with coarse timestamps).
constexpr int64_t kSettleNs = 2'000'000'000;
// The disk is planned in windows of this size, so a fragmented image's extent list
// never has to be held for the whole disk.
constexpr uint64_t kPlanWindow = 256u << 20;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

enum class PieceKind : uint8_t { read, zero, previous };

struct Piece {
  uint64_t offset;
  uint64_t length;
  PieceKind kind;
  int depth;
};

// Where a chunk's bytes come from.
struct ChunkPlan {
  uint64_t index = 0, offset = 0, length = 0;
  std::vector<Piece> pieces;
  bool patch = false;  // start from the earlier chunk `previous`
  Id previous;
};

// The earlier image an incremental backup builds on.
struct Base {
  const Snapshot* snapshot = nullptr;
  const ImageRecord* image = nullptr;
  int depth = INT_MAX;  // the layer of the current chain that it recorded
};

Base find_base(const std::vector<LayerIdentity>& chain, uint32_t chunk_size, const std::vector<Snapshot>& history,
               const ChunkIndex& index) {
  Base best;
  for (auto s = history.rbegin(); s != history.rend(); ++s) {
    for (const ImageRecord& img : s->images) {
      if (img.layers.empty() || !img.layers[0].trusted || img.chunk_size != chunk_size) continue;
      if (!std::all_of(img.lists.begin(), img.lists.end(), [&](const Id& id) { return index.contains(id); })) continue;
      for (int k = 0; k < static_cast<int>(chain.size()) && k < best.depth; ++k)
        if (chain[k].same_file(img.layers[0])) best = {&*s, &img, k};
    }
  }
  return best;
}

PieceKind classify(const image::Extent& e, int base_depth) {
  const bool below_base = e.depth >= base_depth;
  switch (e.kind) {
    case image::ExtentKind::data: return below_base ? PieceKind::previous : PieceKind::read;
    case image::ExtentKind::zero: return below_base ? PieceKind::previous : PieceKind::zero;
    case image::ExtentKind::unallocated: return below_base ? PieceKind::previous : PieceKind::zero;
  }
  return PieceKind::zero;
}

// The earlier image's chunk ids, one list blob at a time (the plan walks in order).
class PreviousList {
 public:
  PreviousList(Repository& repo, const ImageRecord* image) : repo_(repo), image_(image) {}
  Id at(uint64_t chunk) {
    if (!image_ || chunk >= image_->chunk_count) return {};
    uint64_t block = chunk / kImageListEntries;
    if (block != loaded_) {
      ids_ = decode_image_list(repo_.read_blob(image_->lists[block], "earlier chunk list"), "earlier chunk list");
      loaded_ = block;
    }
    uint64_t i = chunk % kImageListEntries;
    if (i >= ids_.size()) fail(ErrorCategory::corrupt, "earlier chunk list of {} is short", image_->name);
    return ids_[i];
  }

 private:
  Repository& repo_;
  const ImageRecord* image_;
  uint64_t loaded_ = UINT64_MAX;
  std::vector<Id> ids_;
};

}  // namespace

LayerIdentity identify_layer(const image::BlockDevice& layer, int64_t now) {
  // A layer over several files (a mirror's legs) changes when any of them does:
  // every write sets that file's ctime to now, so the newest times, the summed sizes
  // and the first file's inode stand for all of them.
  std::vector<image::FileIdentity> files = image::layer_identity(layer);
  LayerIdentity l;
  l.path = files.size() == 1 ? files[0].path : layer.filename();
  l.format = layer.format();
  l.virtual_size = layer.size();
  l.dev = files[0].dev;
  l.ino = files[0].ino;
  bool regular = true;
  for (const image::FileIdentity& f : files) {
    l.file_size += f.size;
    l.mtime_ns = std::max(l.mtime_ns, f.mtime_ns);
    l.ctime_ns = std::max(l.ctime_ns, f.ctime_ns);
    regular = regular && f.regular;
  }
  l.trusted = regular && now - std::max(l.mtime_ns, l.ctime_ns) > kSettleNs;
  return l;
}

ImageRecord backup_image(ChunkStore& store, Pipeline& pipeline, const std::string& path,
                         const ImageBackupOptions& options, const std::vector<Snapshot>& history,
                         Progress* outer_progress) {
  Repository& repo = store.repository();
  const int64_t started = now_ns();
  image::OpenOptions open_options;
  open_options.force_share = options.force_share;
  std::unique_ptr<image::BlockDevice> dev = image::open_image(path, open_options);

  ImageRecord rec;
  rec.name = options.name.empty() ? boost::filesystem::path(path).filename().string() : options.name;
  rec.format = dev->format();
  rec.size = dev->size();
  rec.chunk_size = repo.settings().image_chunk_size;
  rec.chunk_count = div_round_up(rec.size, rec.chunk_size);
  std::vector<const image::BlockDevice*> chain;
  for (image::BlockDevice* layer = dev.get(); layer; layer = layer->backing()) {
    chain.push_back(layer);
    rec.layers.push_back(identify_layer(*layer, started));
  }
  rec.source = rec.layers[0].path;
  const int depth_count = static_cast<int>(rec.layers.size());

  Base base;
  if (options.incremental) base = find_base(rec.layers, rec.chunk_size, history, repo.index());
  if (base.image) {
    rec.incremental_from = fmt::format("{} {} depth {}", base.snapshot->id, base.image->name, base.depth);
    note("{}: layer {} ({}) is unchanged since snapshot {}: reading only the layers above it", rec.name, base.depth,
         rec.layers[base.depth].path, base.snapshot->name);
  }
  PreviousList previous(repo, base.image);

  // Pass 1: what will be read, for the progress line.
  uint64_t to_read = 0;
  for (uint64_t w = 0; w < rec.size; w += kPlanWindow)
    for (const image::Extent& e : dev->map(w, std::min(kPlanWindow, rec.size - w))) {
      if (e.kind == image::ExtentKind::data) rec.allocated_bytes += e.length;
      if (classify(e, base.depth) == PieceKind::read) to_read += e.length;
    }
  Progress own_progress("backup " + rec.name, to_read);
  Progress& progress = outer_progress ? *outer_progress : own_progress;

  std::vector<std::atomic<uint64_t>> read_per_layer(depth_count);
  std::atomic<uint64_t> hole_chunks{0}, patched{0};
  const std::string what = "image " + rec.name;

  // A worker: assemble the chunk from its pieces, then store it.
  auto run = [&](const ChunkPlan& plan, Id* out) {
    thread_local std::vector<uint8_t> buffer, frame, scratch;
    buffer.resize(plan.length);
    std::span<uint8_t> chunk(buffer.data(), plan.length);
    if (plan.patch && !plan.previous.is_zero()) {
      std::span<const uint8_t> earlier = repo.read_blob(plan.previous, frame, scratch, what + " (earlier chunk)");
      // The earlier image may have been smaller: its last chunk is then shorter, and
      // what lies beyond it reads as zeros.
      if (earlier.size() > plan.length)
        fail(ErrorCategory::corrupt, "{}: earlier chunk {} has {} bytes, expected at most {}", what,
             plan.previous.short_hex(), earlier.size(), plan.length);
      std::memcpy(chunk.data(), earlier.data(), earlier.size());
      std::memset(chunk.data() + earlier.size(), 0, plan.length - earlier.size());
    } else {
      std::memset(chunk.data(), 0, plan.length);
    }
    for (const Piece& p : plan.pieces) {
      std::span<uint8_t> dst = chunk.subspan(p.offset - plan.offset, p.length);
      if (p.kind == PieceKind::read) {
        dev->read(p.offset, dst);
        read_per_layer[p.depth] += p.length;
        progress.add(p.length);
      } else if (p.kind == PieceKind::zero && plan.patch) {
        std::memset(dst.data(), 0, dst.size());
      }
    }
    if (plan.patch) patched += 1;
    if (all_zero(chunk)) {
      *out = Id{};
      hole_chunks += 1;
      return;
    }
    *out = store.store(BlobKind::data, chunk);
  };

  // Pass 2: plan chunk by chunk, one list block at a time.
  try {
  for (uint64_t block_start = 0; block_start < rec.chunk_count; block_start += kImageListEntries) {
    const uint64_t block_end = std::min<uint64_t>(rec.chunk_count, block_start + kImageListEntries);
    auto ids = std::make_shared<std::vector<Id>>(block_end - block_start);
    std::vector<image::Extent> extents;
    uint64_t window_end = 0;
    size_t cursor = 0;
    for (uint64_t i = block_start; i < block_end; ++i) {
      ChunkPlan plan;
      plan.index = i;
      plan.offset = i * rec.chunk_size;
      plan.length = std::min<uint64_t>(rec.chunk_size, rec.size - plan.offset);
      const uint64_t end = plan.offset + plan.length;
      if (plan.offset >= window_end) {
        window_end = std::min(rec.size, plan.offset + kPlanWindow);
        extents = dev->map(plan.offset, window_end - plan.offset);
        cursor = 0;
      }
      bool has_read = false, has_previous = false, has_zero = false;
      while (cursor < extents.size() && extents[cursor].offset + extents[cursor].length <= plan.offset) ++cursor;
      for (size_t c = cursor; c < extents.size() && extents[c].offset < end; ++c) {
        const image::Extent& e = extents[c];
        uint64_t s = std::max(e.offset, plan.offset), t = std::min(e.offset + e.length, end);
        PieceKind kind = classify(e, base.depth);
        plan.pieces.push_back({s, t - s, kind, e.depth});
        has_read |= kind == PieceKind::read;
        has_previous |= kind == PieceKind::previous;
        has_zero |= kind == PieceKind::zero;
      }
      Id& slot = (*ids)[i - block_start];
      if (!has_read && !has_previous) {
        ++rec.hole_chunks;  // nothing allocated: a hole, not even read
        continue;
      }
      if (has_previous) {
        plan.previous = previous.at(i);
        // reference(): the backup relies on the earlier chunk (a prune beside it must keep it).
        if (!plan.previous.is_zero() && !repo.index().reference(plan.previous)) {
          // The earlier chunk is gone (damaged repository): read this one in full.
          for (Piece& p : plan.pieces)
            if (p.kind == PieceKind::previous) p.kind = PieceKind::read;
          has_previous = false;
        } else if (!has_read && !has_zero && plan.offset + plan.length <= base.image->size &&
                   (plan.length == rec.chunk_size || plan.offset + plan.length == base.image->size)) {
          slot = plan.previous;  // unchanged: neither read nor stored
          ++rec.reused_chunks;
          continue;
        } else {
          plan.patch = true;
        }
      }
      pipeline.submit([&run, plan = std::move(plan), &slot] { run(plan, &slot); });
    }
    pipeline.wait();
    rec.lists.push_back(store.store(BlobKind::list, encode_image_list(*ids)));
  }
  } catch (...) {
    pipeline.drain();  // no job may outlive the locals it refers to
    throw;
  }
  if (!outer_progress) progress.finish();

  rec.hole_chunks += hole_chunks;
  rec.patched_chunks = patched;
  for (int d = 0; d < depth_count; ++d) {
    rec.bytes_read_per_layer.push_back(read_per_layer[d]);
    rec.bytes_read += read_per_layer[d];
  }
  // An image that changed while it was read may be inconsistent: say so, and never
  // build on it later.
  for (int d = 0; d < depth_count; ++d) {
    LayerIdentity after = identify_layer(*chain[d], started);
    if (!after.same_file(rec.layers[d])) {
      warn("{} changed while it was being backed up; the snapshot may hold a mix of old and new data",
           rec.layers[d].path);
      for (LayerIdentity& l : rec.layers) l.trusted = false;
      break;
    }
  }
  return rec;
}

}  // namespace arche::backup
