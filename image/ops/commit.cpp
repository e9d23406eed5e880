#include "image/ops/commit.h"

#include <sys/stat.h>

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "core/interrupt.h"
#include "core/progress.h"
#include "core/units.h"
#include "image/format.h"
#include "image/qcow2/qcow2_device.h"

namespace arche::image {

namespace {

constexpr uint64_t kCopyChunk = 4 * MiB;

bool same_file(const std::string& a, const std::string& b) {
  struct stat sa {}, sb {};
  return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

}  // namespace

CommitStats commit(const std::string& overlay_path, const CommitOptions& options) {
  OpenOptions read_options;
  read_options.format = options.format;
  read_options.share_backing = true;  // the base is opened for writing below, by us
  std::unique_ptr<BlockDevice> top = open_image(overlay_path, read_options);
  if (!top->backing()) fail(ErrorCategory::usage, "{} has no backing file to commit into", overlay_path);

  // Find the base in the chain; everything above it gets copied down.
  int base_depth = 1;
  BlockDevice* base = top->backing();
  if (!options.base.empty()) {
    while (base && !same_file(base->filename(), options.base)) {
      base = base->backing();
      ++base_depth;
    }
    if (!base) fail(ErrorCategory::usage, "{} is not in the backing chain of {}", options.base, overlay_path);
  }
  const std::string base_path = base->filename();
  const std::string base_format = base->format();

  // The map says, for every range, which layer holds it.
  std::vector<Extent> work;
  uint64_t total = 0;
  for (const Extent& e : top->map())
    if (e.depth < base_depth && e.kind != ExtentKind::unallocated) {
      work.push_back(e);
      total += e.length;
    }

  OpenOptions write_options;
  write_options.writable = true;
  write_options.format = base_format;
  std::unique_ptr<BlockDevice> target = open_image(base_path, write_options);
  if (target->size() < top->size()) target->resize(top->size());

  CommitStats stats;
  stats.base = base_path;
  Progress progress("commit", total);
  std::vector<uint8_t> buffer(kCopyChunk);
  for (const Extent& e : work) {
    interrupt::check();
    if (e.kind == ExtentKind::zero) {
      target->write_zeroes(e.offset, e.length, true);
      stats.bytes_zeroed += e.length;
      progress.add(e.length);
      continue;
    }
    for (uint64_t pos = e.offset; pos < e.offset + e.length;) {
      interrupt::check();
      uint64_t n = std::min<uint64_t>(kCopyChunk, e.offset + e.length - pos);
      // Reads of these ranges are served above the base, never by the base itself.
      top->read(pos, std::span(buffer.data(), n));
      target->write(pos, std::span(buffer.data(), n));
      stats.bytes_copied += n;
      progress.add(n);
      pos += n;
    }
  }
  target->flush();
  target.reset();
  top.reset();
  progress.finish();

  if (options.base.empty() && !options.keep_overlay) {
    // The overlay's data now lives in its backing file: drop it from the overlay.
    OpenOptions empty_options;
    empty_options.writable = true;
    empty_options.format = options.format;
    empty_options.open_backing = false;
    std::unique_ptr<BlockDevice> overlay = open_image(overlay_path, empty_options);
    if (auto* q = dynamic_cast<qcow2::Qcow2Device*>(overlay.get())) q->make_empty();
    else overlay->discard(0, overlay->size());
  }
  return stats;
}

}  // namespace arche::image
