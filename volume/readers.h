// The file system readers, one factory each. Each validates the superblock it is
// given and throws a format error when the volume is not of its kind, a corrupt
// error when it is but its metadata does not hold together. probe.h picks the
// reader from the superblock magic; callers normally go through it.
#pragma once

#include <memory>

#include "image/block_device.h"
#include "volume/filesystem.h"

namespace arche::volume {

std::unique_ptr<Filesystem> open_ext(std::shared_ptr<image::BlockDevice> volume);   // ext2/3/4, libext2fs
std::unique_ptr<Filesystem> open_ntfs(std::shared_ptr<image::BlockDevice> volume);  // libntfs-3g
std::unique_ptr<Filesystem> open_fat(std::shared_ptr<image::BlockDevice> volume);   // FAT12/16/32, ours
std::unique_ptr<Filesystem> open_xfs(std::shared_ptr<image::BlockDevice> volume);   // XFS v4/v5, ours

}  // namespace arche::volume
