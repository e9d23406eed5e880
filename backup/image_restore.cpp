#include "backup/image_restore.h"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>

#include "backup/chunk_list.h"
#include "backup/pipeline.h"
#include "core/bytes.h"
#include "core/error.h"
#include "core/progress.h"
#include "image/format.h"

namespace arche::backup {

namespace {

bool is_block_device(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISBLK(st.st_mode);
}

std::vector<Id> load_list_block(Repository& repo, const ImageRecord& image, size_t block) {
  const std::string what = fmt::format("image {}: chunk list {}", image.name, block);
  std::vector<Id> ids = decode_image_list(repo.read_blob(image.lists[block], what), what);
  const uint64_t expected = std::min<uint64_t>(kImageListEntries, image.chunk_count - block * kImageListEntries);
  if (ids.size() != expected)
    fail(ErrorCategory::corrupt, "{}: {} entries, expected {}", what, ids.size(), expected);
  return ids;
}

}  // namespace

std::vector<Id> load_image_chunks(Repository& repo, const ImageRecord& image) {
  std::vector<Id> all;
  all.reserve(image.chunk_count);
  for (size_t b = 0; b < image.lists.size(); ++b) {
    std::vector<Id> ids = load_list_block(repo, image, b);
    all.insert(all.end(), ids.begin(), ids.end());
  }
  return all;
}

ImageRestoreStats restore_image(Repository& repo, const ImageRecord& image, const std::string& target,
                                const ImageRestoreOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  const bool device = is_block_device(target);
  std::unique_ptr<PendingFile> pending;
  std::string write_path = target;
  std::string format = device ? "raw" : image::driver_for(options.format).name();
  if (format != "raw" && format != "qcow2")
    fail(ErrorCategory::usage, "restore: images are restored as raw or qcow2, not {}", options.format);
  if (device) {
    if (!options.overwrite)
      fail(ErrorCategory::exists, "{} is a block device; pass --overwrite to write the image over it", target);
  } else {
    pending = std::make_unique<PendingFile>(target, options.overwrite);
    write_path = pending->temp_path();
    image::CreateOptions create;
    create.format = format;
    create.size = image.size;
    image::create_image(write_path, create);
  }
  image::OpenOptions open;
  open.writable = true;
  open.format = format;
  open.open_backing = false;
  open.no_barriers = !options.sync && !device;
  std::unique_ptr<image::BlockDevice> dev = image::open_image(write_path, open);
  if (dev->size() < image.size)
    fail(ErrorCategory::usage, "{} holds {} bytes, the image needs {}", target, dev->size(), image.size);
  // A new file reads as zeros; a device must get zeros where the image has holes.
  const bool fresh = !device;
  const uint64_t block = std::max<uint64_t>(dev->granularity(), 4096);

  ImageRestoreStats stats;
  stats.size = image.size;
  std::atomic<uint64_t> written{0};
  Progress progress("restore " + image.name, 0);
  uint64_t total = 0;
  auto write_chunk = [&](uint64_t offset, const Id& id, uint64_t length) {
    thread_local std::vector<uint8_t> frame, scratch;
    const std::string what = fmt::format("image {} at offset {:#x}", image.name, offset);
    std::span<const uint8_t> plain = repo.read_blob(id, frame, scratch, what);
    if (plain.size() != length)
      fail(ErrorCategory::corrupt, "{}: chunk {} has {} bytes, expected {}", what, id.short_hex(), plain.size(), length);
    if (!fresh) {
      dev->write(offset, plain);
    } else {
      // Write runs of non-zero blocks; the rest of a new file is a hole already.
      for (uint64_t pos = 0; pos < length;) {
        uint64_t n = std::min(block, length - pos);
        if (all_zero(plain.subspan(pos, n))) {
          pos += n;
          continue;
        }
        uint64_t end = pos + n;
        while (end < length) {
          uint64_t m = std::min(block, length - end);
          if (all_zero(plain.subspan(end, m))) break;
          end += m;
        }
        dev->write(offset + pos, plain.subspan(pos, end - pos));
        pos = end;
      }
    }
    written += length;
    progress.add(length);
  };

  // Declared after what its jobs use, so it is destroyed (and drained) first.
  Pipeline pipeline(options.threads, 4 * std::max(1u, options.threads ? options.threads : ThreadPool::default_threads()));
  for (size_t b = 0; b < image.lists.size(); ++b) {
    std::vector<Id> ids = load_list_block(repo, image, b);
    struct Work {
      uint64_t chunk;
      uint32_t pack, offset;
    };
    std::vector<Work> work;
    for (size_t i = 0; i < ids.size(); ++i) {
      const uint64_t chunk = b * kImageListEntries + i;
      const uint64_t offset = chunk * image.chunk_size;
      const uint64_t length = std::min<uint64_t>(image.chunk_size, image.size - offset);
      if (ids[i].is_zero()) {
        ++stats.holes;
        if (!fresh) dev->write_zeroes(offset, length, true);
        continue;
      }
      auto where = repo.index().find(ids[i]);
      if (!where)
        fail(ErrorCategory::corrupt, "image {} at offset {:#x}: chunk {} is missing from the repository", image.name,
             offset, ids[i].short_hex());
      work.push_back({chunk, where->pack, where->offset});
      total += length;
    }
    progress.set_total(total);
    // In pack order: each pack is read front to back once.
    std::sort(work.begin(), work.end(),
              [](const Work& x, const Work& y) { return x.pack != y.pack ? x.pack < y.pack : x.offset < y.offset; });
    for (const Work& w : work) {
      const uint64_t offset = w.chunk * image.chunk_size;
      const uint64_t length = std::min<uint64_t>(image.chunk_size, image.size - offset);
      const Id id = ids[w.chunk - b * kImageListEntries];
      pipeline.submit([&write_chunk, offset, id, length] { write_chunk(offset, id, length); });
    }
    pipeline.wait();
    stats.chunks += work.size();
  }
  if (options.sync || device) dev->flush();
  dev.reset();  // closes the image: its metadata is complete
  progress.finish();
  if (pending) pending->commit(options.sync);
  stats.bytes_written = written;
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return stats;
}

}  // namespace arche::backup
