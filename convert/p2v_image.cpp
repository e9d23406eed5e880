#include "convert/p2v_image.h"

#include <boost/filesystem.hpp>
#include <chrono>

#include "core/bytes.h"
#include "core/error.h"
#include "core/file.h"
#include "core/interrupt.h"
#include "image/format.h"

namespace arche::convert {

namespace {

constexpr uint64_t kChunk = 4 * MiB;  // read at a time
constexpr uint64_t kBlock = 4096;     // zero detection: all-zero blocks stay holes

}  // namespace

std::vector<volume::Disk> Sources::disks() const {
  std::vector<volume::Disk> out;
  for (size_t i = 0; i < paths.size(); ++i)
    out.push_back({boost::filesystem::path(paths[i]).filename().string(), devices[i]});
  return out;
}

Sources open_sources(const std::vector<std::string>& paths) {
  Sources s;
  for (const std::string& p : paths) {
    image::OpenOptions o;
    o.force_share = true;  // a live disk is being written by its server
    s.paths.push_back(p);
    s.devices.push_back(image::open_image(p, o));
  }
  return s;
}

void read_selected(image::BlockDevice& source, const DiskMap& plan, uint64_t from, Progress& progress,
                   const EmitRun& emit, const std::function<void(uint64_t position)>& done_below) {
  std::vector<uint8_t> buffer(kChunk);
  // Ranges come sorted, so the runs go front to back (a streamOptimized VMDK needs
  // that), and each non-zero run is one call.
  for (const volume::ByteRange& r : plan.ranges) {
    if (r.offset + r.length <= from) {
      progress.add(r.length);
      continue;
    }
    uint64_t pos = r.offset;
    if (pos < from) {
      progress.add(from - pos);
      pos = from;
    }
    while (pos < r.offset + r.length) {
      interrupt::check();
      const uint64_t n = std::min(kChunk, r.offset + r.length - pos);
      std::span<uint8_t> data(buffer.data(), n);
      source.read(pos, data);
      for (uint64_t at = 0; at < n;) {
        const uint64_t len = std::min(kBlock - (pos + at) % kBlock, n - at);
        if (all_zero(data.subspan(at, len))) {
          at += len;
          continue;
        }
        uint64_t end = at + len;
        while (end < n) {
          const uint64_t m = std::min(kBlock, n - end);
          if (all_zero(data.subspan(end, m))) break;
          end += m;
        }
        emit(pos + at, data.subspan(at, end - at));
        at = end;
      }
      progress.add(n);
      pos += n;
      done_below(pos);
    }
  }
}

ImagedDisk write_image(image::BlockDevice& source, const DiskMap& plan, const std::string& target,
                       const ImageOptions& options, Progress& progress) {
  ImagedDisk out;
  out.source = source.filename();
  out.target = target;
  out.size = source.size();
  out.selected = plan.bytes();

  image::CreateOptions create;
  create.format = options.format;
  create.size = out.size;
  create.final_path = target;
  create.overwrite = options.overwrite;
  const image::FormatDriver& driver = image::driver_for(create.format);
  out.format = driver.name();
  PendingFile pending(target, options.overwrite);
  driver.create(pending.temp_path(), create);
  {
    image::OpenOptions o;
    o.writable = true;
    o.format = driver.name();
    o.open_backing = false;
    o.no_barriers = true;  // a temporary name: made durable once, below
    std::unique_ptr<image::BlockDevice> image = image::open_image(pending.temp_path(), o);
    read_selected(source, plan, 0, progress,
                  [&](uint64_t offset, std::span<const uint8_t> data) {
                    image->write(offset, data);
                    out.written += data.size();
                  },
                  [](uint64_t) {});
    image->flush();  // a sequential format completes its stream here
  }
  pending.commit(options.durable);
  out.file_bytes = File::open(target, OpenMode::read_only).allocated_bytes();
  return out;
}

ConversionResult image_disks(volume::Sandbox& sandbox, const Sources& sources, const std::vector<std::string>& targets,
                             const ImageOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  if (targets.size() != sources.devices.size())
    fail(ErrorCategory::internal, "{} targets for {} sources", targets.size(), sources.devices.size());
  std::unique_ptr<volume::Tree> tree = sandbox.explore(sources.disks());
  ConversionResult result;
  result.map = map_used_blocks(*tree, sources.devices);
  Progress progress("p2v image", result.map.bytes());
  for (size_t i = 0; i < targets.size(); ++i)
    result.images.push_back(write_image(*sources.devices[i], result.map.disks[i], targets[i], options, progress));
  progress.finish();
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return result;
}

}  // namespace arche::convert
