// Rebase: give an overlay a different backing file. Safe mode first copies into the
// overlay every cluster where the old and the new backing chain differ, so the
// overlay's content stays the same; unsafe mode (-u) only rewrites the header.
#pragma once

#include <string>

namespace arche::image {

struct RebaseOptions {
  std::string backing;         // new backing file as it will be recorded; empty: none
  std::string backing_format;  // empty: probed
  bool unsafe = false;
  std::string format;          // overlay format; empty: probe
};

struct RebaseStats {
  uint64_t bytes_copied = 0;  // data pulled into the overlay
};

RebaseStats rebase(const std::string& overlay, const RebaseOptions& options);

}  // namespace arche::image
