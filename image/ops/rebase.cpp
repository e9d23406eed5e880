#include "image/ops/rebase.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/interrupt.h"
#include "core/progress.h"
#include "core/units.h"
#include "image/format.h"
#include "image/qcow2/qcow2_device.h"

namespace arche::image {

namespace {

constexpr uint64_t kCompareChunk = 1 * MiB;

// Reads [offset, offset+out.size()) of `dev`, zeros beyond its end or without a device.
void read_or_zero(BlockDevice* dev, uint64_t offset, std::span<uint8_t> out) {
  uint64_t inside = 0;
  if (dev && offset < dev->size()) {
    inside = std::min<uint64_t>(out.size(), dev->size() - offset);
    dev->read(offset, out.first(inside));
  }
  std::memset(out.data() + inside, 0, out.size() - inside);
}

bool known_zero(BlockDevice* dev, uint64_t offset, uint64_t length) {
  if (!dev || offset >= dev->size()) return true;
  return dev->known_zero(offset, std::min(length, dev->size() - offset));
}

}  // namespace

RebaseStats rebase(const std::string& overlay_path, const RebaseOptions& options) {
  OpenOptions open_options;
  open_options.writable = true;
  open_options.format = options.format;
  open_options.open_backing = !options.unsafe;
  std::unique_ptr<BlockDevice> overlay = open_image(overlay_path, open_options);
  auto* q = dynamic_cast<qcow2::Qcow2Device*>(overlay.get());
  if (!q) fail(ErrorCategory::unsupported, "{}: format {} has no backing file to change", overlay_path, overlay->format());

  std::string new_format = options.backing_format;
  std::unique_ptr<BlockDevice> new_backing;
  if (!options.backing.empty()) {
    std::string resolved = resolve_backing_path(overlay_path, options.backing);
    struct stat so {}, sb {};
    if (::stat(resolved.c_str(), &sb) != 0) {
      if (!options.unsafe) throw_errno(errno, "new backing file " + resolved);
      if (new_format.empty())
        fail(ErrorCategory::usage, "new backing file {} does not exist: give its format with -F", resolved);
    } else {
      if (::stat(overlay_path.c_str(), &so) == 0 && so.st_dev == sb.st_dev && so.st_ino == sb.st_ino)
        fail(ErrorCategory::usage, "{} cannot be its own backing file", overlay_path);
      if (new_format.empty()) new_format = probe_format(resolved);
      new_format = driver_for(new_format).name();
      if (!options.unsafe) {
        OpenOptions backing_options;
        backing_options.format = new_format;
        new_backing = open_image(resolved, backing_options);
      }
    }
  }

  RebaseStats stats;
  if (!options.unsafe) {
    // Where the overlay holds nothing, its content comes from the backing chain:
    // copy in every cluster whose old and new backing content differ.
    BlockDevice* old_backing = overlay->backing();
    const uint64_t size = overlay->size();
    const uint64_t cs = overlay->granularity();
    const uint64_t chunk = std::max(kCompareChunk, cs);
    std::vector<uint8_t> old_data(chunk), new_data(chunk);
    Progress progress("rebase", size);
    for (uint64_t pos = 0; pos < size;) {
      interrupt::check();  // the backing file is switched only after the loop
      LayerStatus st = overlay->layer_status(pos, size - pos);
      if (st.kind != ExtentKind::unallocated) {
        progress.add(st.length);
        pos += st.length;
        continue;
      }
      // Work in whole clusters so writes allocate whole clusters.
      const uint64_t run_end = pos + st.length;
      for (uint64_t at = align_down(pos, cs); at < run_end;) {
        uint64_t n = std::min<uint64_t>(chunk, align_up(run_end, cs) - at);
        n = std::min(n, size - at);
        if (!(known_zero(old_backing, at, n) && known_zero(new_backing.get(), at, n))) {
          read_or_zero(old_backing, at, std::span(old_data.data(), n));
          read_or_zero(new_backing.get(), at, std::span(new_data.data(), n));
          for (uint64_t c = 0; c < n; c += cs) {
            uint64_t m = std::min(cs, n - c);
            if (std::memcmp(old_data.data() + c, new_data.data() + c, m) == 0) continue;
            // Only the part of the cluster the overlay does not hold itself.
            uint64_t from = std::max(at + c, pos), to = std::min(at + c + m, run_end);
            overlay->write(from, std::span(old_data.data() + (from - at), to - from));
            stats.bytes_copied += to - from;
          }
        }
        at += n;
      }
      progress.add(st.length);
      pos = run_end;
    }
    progress.finish();
  }
  q->set_backing(options.backing, new_format, std::move(new_backing));
  q->close();
  return stats;
}

}  // namespace arche::image
