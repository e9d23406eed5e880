#include "volume/filesystem.h"

namespace arche::volume {

const char* to_string(FileType type) {
  switch (type) {
    case FileType::regular: return "file";
    case FileType::directory: return "directory";
    case FileType::symlink: return "symlink";
    case FileType::block_device: return "block-device";
    case FileType::char_device: return "char-device";
    case FileType::fifo: return "fifo";
    case FileType::socket: return "socket";
    case FileType::unknown: break;
  }
  return "unknown";
}

}  // namespace arche::volume
