#include "image/ops/convert.h"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <vector>

#include "core/bytes.h"
#include "core/error.h"
#include "core/file.h"
#include "core/progress.h"
#include "core/thread_pool.h"
#include "core/units.h"

namespace arche::image {

namespace {

// Work is cut into aligned windows; each worker reads the data extents of a window,
// skips blocks that are all zero and writes the rest.
constexpr uint64_t kWindow = 2 * MiB;

struct Window {
  uint64_t offset;
  uint64_t length;
  std::vector<std::pair<uint64_t, uint64_t>> data;  // (offset, length) to read
};

std::vector<Window> plan_windows(BlockDevice& source, uint64_t window, uint64_t* data_bytes) {
  std::vector<Window> windows;
  *data_bytes = 0;
  for (const Extent& e : source.map()) {
    if (e.kind != ExtentKind::data) continue;
    *data_bytes += e.length;
    for (uint64_t pos = e.offset; pos < e.offset + e.length;) {
      uint64_t w = align_down(pos, window);
      uint64_t end = std::min(e.offset + e.length, w + window);
      if (windows.empty() || windows.back().offset != w)
        windows.push_back({w, std::min(window, source.size() - w), {}});
      windows.back().data.emplace_back(pos, end - pos);
      pos = end;
    }
  }
  return windows;
}

bool is_block_device(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISBLK(st.st_mode);
}

}  // namespace

ConvertStats convert(const std::string& source_path, const std::string& target_path, const ConvertOptions& options) {
  auto started = std::chrono::steady_clock::now();
  OpenOptions source_options;
  source_options.format = options.source_format;
  source_options.force_share = options.force_share;
  std::unique_ptr<BlockDevice> source = open_image(source_path, source_options);
  const uint64_t size = source->size();

  CreateOptions create = options.target;
  create.size = size;
  const FormatDriver& driver = driver_for(create.format);

  // A block device is written in place; a file is built under a temporary name.
  const bool in_place = is_block_device(target_path);
  std::unique_ptr<PendingFile> pending;
  std::string write_path = target_path;
  if (in_place) {
    if (!create.overwrite)
      fail(ErrorCategory::exists, "{} is a block device; pass --overwrite to write over it", target_path);
    driver.create(target_path, create);
  } else {
    pending = std::make_unique<PendingFile>(target_path, create.overwrite);
    write_path = pending->temp_path();
    driver.create(write_path, create);
  }

  OpenOptions target_options;
  target_options.writable = true;
  target_options.format = driver.name();
  target_options.open_backing = false;
  target_options.no_barriers = !options.durable;  // a temporary file needs no ordering
  std::unique_ptr<BlockDevice> target = open_image(write_path, target_options);
  if (options.compress && !target->supports_compressed_writes())
    fail(ErrorCategory::usage, "format {} cannot store compressed data (-c)", target->format());
  // A fresh file reads as zeros everywhere; a device must be zeroed where the source is.
  const bool target_is_zero = !in_place && create.backing_file.empty();
  const uint64_t block = target->granularity();

  uint64_t data_bytes = 0;
  std::vector<Window> windows = plan_windows(*source, std::max(kWindow, block), &data_bytes);
  Progress progress("convert", data_bytes);
  std::atomic<uint64_t> written{0};

  ThreadPool pool(options.threads ? options.threads : ThreadPool::default_threads());
  parallel_for(pool, windows.size(), [&](size_t i) {
    const Window& w = windows[i];
    thread_local std::vector<uint8_t> buffer;
    buffer.assign(w.length, 0);
    for (auto [offset, length] : w.data) {
      source->read(offset, std::span(buffer.data() + (offset - w.offset), length));
      progress.add(length);
    }
    // Write runs of non-zero blocks; compressed writes go one cluster at a time.
    for (uint64_t pos = 0; pos < w.length;) {
      uint64_t n = std::min(block, w.length - pos);
      if (all_zero(std::span(buffer.data() + pos, n))) {
        if (!target_is_zero) target->write_zeroes(w.offset + pos, n, true);
        pos += n;
        continue;
      }
      if (options.compress) {
        target->write_compressed(w.offset + pos, std::span(buffer.data() + pos, n));
        written += n;
        pos += n;
        continue;
      }
      uint64_t end = pos + n;
      while (end < w.length) {
        uint64_t m = std::min(block, w.length - end);
        if (all_zero(std::span(buffer.data() + end, m))) break;
        end += m;
      }
      target->write(w.offset + pos, std::span(buffer.data() + pos, end - pos));
      written += end - pos;
      pos = end;
    }
  });

  if (!target_is_zero) {
    // The device keeps old content where the source has no data: zero it.
    uint64_t pos = 0;
    for (const Window& w : windows)
      for (auto [offset, length] : w.data) {
        if (offset > pos) target->write_zeroes(pos, offset - pos, true);
        pos = offset + length;
      }
    if (pos < size) target->write_zeroes(pos, size - pos, true);
  }

  if (options.durable) target->flush();
  target.reset();  // closes: metadata written
  progress.finish();
  if (pending) pending->commit(options.durable);

  ConvertStats stats;
  stats.virtual_size = size;
  stats.bytes_read = data_bytes;
  stats.bytes_written = written;
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return stats;
}

}  // namespace arche::image
