#include "volume/fat_table.h"

#include <algorithm>

#include "core/endian.h"
#include "core/error.h"
#include "core/interrupt.h"

namespace arche::volume::fat {

uint64_t Table::table_bytes() const {
  const uint64_t last = g_.max_cluster();
  return g_.bits == 12 ? last + last / 2 + 2 : (last + 1) * (g_.bits / 8);
}

const std::vector<uint8_t>& Table::fat12() {
  if (whole_fat12_.empty()) {
    // The last entry's second byte may lie just past a FAT sized to the byte: it reads as zero.
    whole_fat12_.resize(table_bytes());
    const uint64_t n = std::min<uint64_t>(table_bytes(), uint64_t{g_.fat_sectors} * g_.bytes_per_sector);
    read_volume(volume_, g_.fat_offset(g_.active_fat), std::span(whole_fat12_).first(n), "fat");
  }
  return whole_fat12_;
}

bool Table::is_end(uint32_t v) const {
  return g_.bits == 12 ? v >= 0xff8 : g_.bits == 16 ? v >= 0xfff8 : v >= 0x0ffffff8;
}

bool Table::is_bad(uint32_t v) const {
  return g_.bits == 12 ? v == 0xff7 : g_.bits == 16 ? v == 0xfff7 : v == 0x0ffffff7;
}

// The entry of `cluster` from table bytes that begin at the FAT's start (FAT12)
// or at the cluster's own entry (FAT16/32).
uint32_t Table::decode(const uint8_t* p, uint32_t cluster) const {
  if (g_.bits == 12) {
    const uint16_t v = load_le16(p + cluster + cluster / 2);
    return (cluster & 1) ? v >> 4 : v & 0x0fff;
  }
  return g_.bits == 16 ? load_le16(p) : load_le32(p) & 0x0fffffff;
}

uint32_t Table::entry(uint32_t cluster) {
  if (g_.bits == 12) return decode(fat12().data(), cluster);
  const uint64_t fat = g_.fat_offset(g_.active_fat);
  const uint64_t byte = uint64_t{cluster} * (g_.bits / 8);
  const uint64_t window = byte / kWindowBytes;
  std::vector<uint8_t>* bytes = windows_.find(window);
  if (!bytes) {
    const uint64_t start = window * kWindowBytes;
    std::vector<uint8_t> data(std::min(kWindowBytes, table_bytes() - start));
    read_volume(volume_, fat + start, data, "fat");
    bytes = &windows_.insert(window, std::move(data));
  }
  return decode(bytes->data() + (byte - window * kWindowBytes), cluster);
}

Chain Table::chain(uint32_t first, uint64_t max_clusters, const std::string& what) {
  Chain chain;
  // No chain can hold more clusters than the volume has without using one twice.
  max_clusters = std::min<uint64_t>(max_clusters, g_.cluster_count);
  if (!g_.valid_cluster(first))
    fail(ErrorCategory::corrupt, "fat: {} starts at cluster {}, outside 2..{}", what, first, g_.max_cluster());
  uint32_t cluster = first;
  while (chain.clusters < max_clusters) {
    if (!chain.runs.empty() && chain.runs.back().first + chain.runs.back().count == cluster) {
      ++chain.runs.back().count;
    } else {
      chain.runs.push_back({cluster, 1});
    }
    ++chain.clusters;
    const uint32_t next = entry(cluster);
    if (is_end(next)) break;
    if (chain.clusters == max_clusters) {  // enough: what the last link says matters no more
      chain.continues = g_.valid_cluster(next);
      break;
    }
    if (next == 0 || is_bad(next) || !g_.valid_cluster(next))
      fail(ErrorCategory::corrupt, "fat: {}: cluster {} links to {} (FAT entry {})", what, cluster,
           next == 0      ? "a free cluster"
           : is_bad(next) ? "a bad cluster"
                          : "an invalid cluster",
           next);
    cluster = next;
  }
  // A loop shows as two runs sharing clusters.
  std::vector<ClusterRun> sorted = chain.runs;
  std::sort(sorted.begin(), sorted.end(), [](const ClusterRun& a, const ClusterRun& b) { return a.first < b.first; });
  for (size_t i = 1; i < sorted.size(); ++i)
    if (uint64_t{sorted[i - 1].first} + sorted[i - 1].count > sorted[i].first)
      fail(ErrorCategory::corrupt, "fat: {}: cluster chain uses cluster {} twice (a loop)", what, sorted[i].first);
  return chain;
}

void Table::for_each_allocated(const std::function<void(uint32_t, uint32_t)>& visit) {
  const uint64_t fat = g_.fat_offset(g_.active_fat);
  const uint64_t bytes = table_bytes();
  constexpr uint64_t kPiece = 1 << 20;  // FAT16/32 are streamed in pieces, FAT12 is small and read whole
  std::vector<uint8_t> buf;
  uint64_t loaded_from = 0;
  uint32_t run_first = 0, run_count = 0;
  for (uint64_t c = 2; c <= g_.max_cluster(); ++c) {
    uint32_t value;
    if (g_.bits == 12) {
      value = decode(fat12().data(), static_cast<uint32_t>(c));
    } else {
      const uint64_t byte = c * (g_.bits / 8);
      if (buf.empty() || byte < loaded_from || byte >= loaded_from + buf.size()) {
        interrupt::check();
        loaded_from = byte - byte % kPiece;
        buf.resize(std::min(kPiece, bytes - loaded_from));
        read_volume(volume_, fat + loaded_from, buf, "fat");
      }
      value = decode(buf.data() + (byte - loaded_from), static_cast<uint32_t>(c));
    }
    const bool used = value != 0 && !is_bad(value);
    if (used && run_count && run_first + run_count == c) {
      ++run_count;
    } else if (used) {
      if (run_count) visit(run_first, run_count);
      run_first = static_cast<uint32_t>(c);
      run_count = 1;
    }
  }
  if (run_count) visit(run_first, run_count);
}

}  // namespace arche::volume::fat
