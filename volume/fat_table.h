// The file allocation table: one entry per cluster, read on demand through a
// small window cache (FAT12 is read whole: its 12-bit entries straddle sectors),
// and cluster chains turned into runs of consecutive clusters. Every value read
// from the table is checked before it is followed; a chain is bounded by the
// caller's need and by the volume's cluster count, and a chain that uses a
// cluster twice (a loop) is reported, so no walk can run forever.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "image/block_device.h"
#include "volume/fat_format.h"
#include "volume/reader_support.h"

namespace arche::volume::fat {

struct ClusterRun {
  uint32_t first = 0;  // cluster number
  uint32_t count = 0;  // consecutive clusters
};

struct Chain {
  std::vector<ClusterRun> runs;
  uint64_t clusters = 0;   // sum of the runs' counts
  bool continues = false;  // the last cluster asked for links to another
};

class Table {
 public:
  Table(image::BlockDevice& volume, const Geometry& geometry) : volume_(volume), g_(geometry) {}

  // The raw entry of a valid cluster (FAT32: the top four bits masked off).
  uint32_t entry(uint32_t cluster);

  // Follows the chain from `first` for at most max_clusters clusters. A free,
  // bad, reserved or out-of-range link before that, or a cluster used twice, is
  // a corrupt error naming `what` (the file or directory). An end-of-chain mark
  // before max_clusters simply ends the chain: the caller knows how many it needs.
  Chain chain(uint32_t first, uint64_t max_clusters, const std::string& what);

  // Calls visit(first, count) for every run of clusters the table does not list
  // as free or bad, in increasing order: the clusters that may hold data.
  void for_each_allocated(const std::function<void(uint32_t first, uint32_t count)>& visit);

 private:
  static constexpr uint64_t kWindowBytes = 64 << 10;
  uint64_t table_bytes() const;  // the part of one FAT that covers the clusters
  bool is_end(uint32_t value) const;
  bool is_bad(uint32_t value) const;
  uint32_t decode(const uint8_t* table, uint32_t cluster) const;
  const std::vector<uint8_t>& fat12();

  image::BlockDevice& volume_;
  const Geometry& g_;
  std::vector<uint8_t> whole_fat12_;
  LruCache<uint64_t, std::vector<uint8_t>> windows_{64};
};

}  // namespace arche::volume::fat
