// Placeholders for the FAT and XFS readers, which are written on another branch
// (volume/fat*, volume/xfs*). DELETE THIS FILE when those are merged: their
// open_fat/open_xfs replace these.
#include "core/error.h"
#include "volume/readers.h"

namespace arche::volume {

std::unique_ptr<Filesystem> open_fat(std::shared_ptr<image::BlockDevice>) {
  fail(ErrorCategory::unsupported, "the FAT reader is not part of this build yet");
}

std::unique_ptr<Filesystem> open_xfs(std::shared_ptr<image::BlockDevice>) {
  fail(ErrorCategory::unsupported, "the XFS reader is not part of this build yet");
}

}  // namespace arche::volume
