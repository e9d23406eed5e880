// Conversion of any image (with its backing chain) into a new image of any format.
#pragma once

#include <string>

#include "image/format.h"

namespace arche::image {

struct ConvertOptions {
  std::string source_format;  // empty: probe
  CreateOptions target;       // format and -o options of the new image
  bool compress = false;      // store clusters compressed (qcow2)
  unsigned threads = 0;       // 0: one per core
  bool durable = false;       // fsync the result before it appears under its name
  bool force_share = false;   // read a source another process is writing
  bool reflink = true;        // share the source's data extents where the file system can
};

struct ConvertStats {
  uint64_t virtual_size = 0;
  uint64_t bytes_read = 0;     // data read from the source
  uint64_t bytes_written = 0;  // data written to the target (before compression)
  uint64_t bytes_cloned = 0;   // data stored by sharing the source's extents (reflink)
  uint64_t file_bytes = 0;     // space the target occupies on disk
  double seconds = 0;
};

// Converts source into target. A regular-file target is built under a temporary
// name and renamed into place when complete; it must not exist unless
// options.target.overwrite. Block devices are written in place.
ConvertStats convert(const std::string& source, const std::string& target, const ConvertOptions& options);

}  // namespace arche::image
