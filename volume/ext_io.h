// The bridge between libext2fs and a BlockDevice: an io_manager whose reads go to
// the device (never to a path) and whose writes — there are some: the journal
// replay writes the blocks it recovers — go to an in-memory overlay that later
// reads see. Nothing ever reaches the device: a backup or an image stays as it was.
#pragma once

#include <ext2fs/ext2fs.h>

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "image/block_device.h"

namespace arche::volume::ext {

// What the channels of one file system share: the device and the overlay, which
// outlive a close and reopen of the file system (journal replay, then reading).
struct IoState {
  static constexpr uint64_t kUnit = 1024;  // overlay granularity: the smallest ext block
  std::shared_ptr<image::BlockDevice> device;
  std::map<uint64_t, std::array<uint8_t, kUnit>> overlay;  // device offset (unit-aligned) -> bytes
  std::string last_error;  // the message of the last failed device read, for errors
  uint64_t overlay_bytes() const { return overlay.size() * kUnit; }
};

// ext2fs_open2 on the device of `state` (read-only; flags as for ext2fs_open2;
// superblock and block_size 0 for the primary superblock, else a backup's).
errcode_t open_filesystem(const std::shared_ptr<IoState>& state, int flags, ext2_filsys* fs, blk64_t superblock = 0,
                          unsigned block_size = 0);

// A libext2fs error code as text (com_err's message).
std::string error_text(errcode_t code);

}  // namespace arche::volume::ext
