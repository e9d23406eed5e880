// Opening and creating mirrors.
//
// Any leg names its array: each superblock records every leg's path, so opening
// from one leg finds the others. Of the superblocks found, the one with the highest
// event counter is the truth about membership; a leg whose own superblock is older
// missed updates (it was failed, or is an old copy) and is stale: never read, and
// recorded as failed by the next writable open. Legs of different arrays, legs
// that were each used without the other, and superblocks that fail their checksum
// are reported with one clear line each (docs/raid.md, "Assembly").
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/progress.h"
#include "image/mirror/mirror_device.h"

namespace arche::image::mirror {

// "mirror:A+B[+C]": the names image commands, `vm run --disk` and backup accept.
bool is_mirror_name(const std::string& name);
std::vector<std::string> parse_mirror_name(const std::string& name);  // throws usage
std::string mirror_name(const std::vector<std::string>& legs);
// The legs a name gives: those of "mirror:A+B", or the one leg a plain path is (the
// others are found through its superblock). What open_mirror takes.
std::vector<std::string> legs_named_by(const std::string& name);
// Relative legs resolved against `dir` (a VM.toml's folder, an overlay's folder).
std::string resolve_mirror_name(const std::string& dir, const std::string& name);

// Opens the array the legs belong to (with the legs their superblocks record,
// unless options.exact_legs). A writable open first records the legs it could not
// use as failed, then resyncs the regions the bitmap marks dirty.
std::unique_ptr<MirrorDevice> open_mirror(const std::vector<std::string>& legs, const MirrorOptions& options);

struct CreateMirrorOptions {
  uint64_t size = 0;  // 0: the biggest the smallest existing leg holds
  uint64_t block_size = kDefaultBlockSize;
  uint64_t region_size = kDefaultRegionSize;
  ChecksumKind checksum = kDefaultChecksum;
  // Take existing legs (after the first) that hold data or another array, and a
  // first leg with data where the metadata goes. Without it they are refused.
  bool overwrite = false;
};

// Makes an array of the legs: paths that do not exist become raw files of the size
// the array needs; existing files and devices are used at their size. The first
// leg's content is the array's; when it holds data the other legs are rebuilt from
// it before this returns (with `progress`). Returns the array opened writable.
std::unique_ptr<MirrorDevice> create_mirror(const std::vector<std::string>& legs, const CreateMirrorOptions& create,
                                            const MirrorOptions& open, Progress* progress = nullptr);

// The newest valid superblock copy at the end of a leg. Throws (format/corrupt)
// naming the leg when neither copy is valid.
Superblock read_superblock(BlockDevice& leg, const std::string& what);

}  // namespace arche::image::mirror
