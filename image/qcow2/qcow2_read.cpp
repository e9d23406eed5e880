// Reading the structures every user of a qcow2 file starts with: header and
// snapshot table.
#include <algorithm>

#include "core/endian.h"
#include "image/qcow2/qcow2_driver.h"

namespace arche::image::qcow2 {

namespace {
// An entry is at most 40 fixed bytes, 1 KiB extra data, two 64 KiB names, padding.
constexpr uint64_t kMaxSnapshotEntryBytes = 40 + 1024 + 2 * 65535 + 8;
constexpr uint64_t kMaxSnapshotTableRead = 64 * 1024 * 1024;
}  // namespace

Header read_header(const File& file) {
  const uint64_t file_size = file.size();
  // The header fills the first cluster, whose size the header itself names.
  std::vector<uint8_t> first(std::min<uint64_t>(file_size, 4096));
  file.read_exact(0, first);
  if (first.size() >= 24) {
    uint32_t bits = load_be32(first.data() + 20);
    if (bits >= kMinClusterBits && bits <= kMaxClusterBits && (1ull << bits) > first.size()) {
      first.resize(std::min<uint64_t>(file_size, 1ull << bits));
      file.read_exact(0, first);
    }
  }
  return parse_header(first, file_size, file.path());
}

std::vector<Snapshot> read_snapshots(const File& file, const Header& h, uint64_t* table_bytes) {
  if (h.nb_snapshots == 0) {
    if (table_bytes) *table_bytes = 0;
    return {};
  }
  // parse_header checked that the table starts inside the file.
  uint64_t want = std::min({uint64_t{h.nb_snapshots} * kMaxSnapshotEntryBytes, file.size() - h.snapshots_offset,
                            kMaxSnapshotTableRead});
  std::vector<uint8_t> raw(want);
  file.read_exact(h.snapshots_offset, raw);
  return parse_snapshot_table(raw, h.nb_snapshots, file.path(), table_bytes);
}

}  // namespace arche::image::qcow2
