// `arche p2v image`: a source disk copied into a new image of any format, only the
// bytes its used-block map selects (used_map.h); everything else stays a hole.
// Streams: the image is written as the disk is read, with no temporary copy, under
// a temporary name that becomes the target's name only when it is complete.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "convert/used_map.h"
#include "core/progress.h"
#include "image/block_device.h"
#include "volume/sandbox.h"

namespace arche::convert {

struct ImageOptions {
  std::string format = "qcow2";  // qcow2, vmdk, vhdx, raw (any format arche writes)
  bool overwrite = false;
  bool durable = true;  // fsync the image before it appears under its name
};

struct ImagedDisk {
  std::string source, target, format;
  uint64_t size = 0;
  uint64_t selected = 0;  // bytes the map selects
  uint64_t written = 0;   // of those, bytes that were not zeros and were written
  uint64_t file_bytes = 0;  // space the image occupies
};

// Reads `plan`'s ranges of `source` from disk offset `from` on, front to back, and
// calls `emit(offset, data)` for every run of 4 KiB blocks that are not all zeros
// (the zeros stay holes) and `done_below(position)` after every chunk read: all of
// the plan below `position` has then been emitted. `progress` counts bytes read.
// Resuming from a `done_below` position gives the same calls as the run that
// reached it, so a resumed image is written exactly as an uninterrupted one.
using EmitRun = std::function<void(uint64_t offset, std::span<const uint8_t> data)>;
void read_selected(image::BlockDevice& source, const DiskMap& plan, uint64_t from, Progress& progress,
                   const EmitRun& emit, const std::function<void(uint64_t position)>& done_below);

// Copies `plan`'s ranges of `source` into a new image at `target`. `progress`
// counts the bytes read.
ImagedDisk write_image(image::BlockDevice& source, const DiskMap& plan, const std::string& target,
                       const ImageOptions& options, Progress& progress);

// The sources, opened read-only (other processes may go on writing them: a live
// server is converted while it runs, and `p2v sync` catches up afterwards).
struct Sources {
  std::vector<std::string> paths;
  std::vector<std::shared_ptr<image::BlockDevice>> devices;
  std::vector<volume::Disk> disks() const;
};
Sources open_sources(const std::vector<std::string>& paths);

struct ConversionResult {
  UsedMap map;
  std::vector<ImagedDisk> images;
  double seconds = 0;
};

// The whole of `p2v image`: explores the sources in `sandbox` (started by the
// caller before anything was opened), maps them and writes one image per source.
// `targets` has one path per source.
ConversionResult image_disks(volume::Sandbox& sandbox, const Sources& sources, const std::vector<std::string>& targets,
                             const ImageOptions& options);

}  // namespace arche::convert
