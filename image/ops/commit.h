// Commit: write what an overlay (and the layers between it and the base) holds into
// a lower layer of its backing chain.
#pragma once

#include <string>

namespace arche::image {

struct CommitOptions {
  std::string base;        // empty: the overlay's immediate backing file
  bool keep_overlay = false;  // do not empty the overlay afterwards (-d); implied by base
  std::string format;      // overlay format; empty: probe
};

struct CommitStats {
  uint64_t bytes_copied = 0;
  uint64_t bytes_zeroed = 0;
  std::string base;  // the file committed into
};

CommitStats commit(const std::string& overlay, const CommitOptions& options);

}  // namespace arche::image
