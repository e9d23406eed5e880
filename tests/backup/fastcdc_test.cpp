#include <gtest/gtest.h>

#include <set>

#include "backup/crypto.h"
#include "backup/fastcdc.h"
#include "tests/common/test_util.h"

namespace arche::backup {
namespace {

std::vector<size_t> cut_all(const FastCdc& cdc, std::span<const uint8_t> data) {
  std::vector<size_t> lengths;
  while (!data.empty()) {
    size_t n = cdc.cut(data, true);
    lengths.push_back(n);
    data = data.subspan(n);
  }
  return lengths;
}

const CdcParams kParams{16 << 10, 64 << 10, 256 << 10};

TEST(BackupFastCdc, ChunkSizesStayWithinBoundsAndAverageNearTheTarget) {
  RepoKeys keys = RepoKeys::generate();
  FastCdc cdc(kParams, keys.chunker_seed());
  std::vector<uint8_t> data = arche::test::random_bytes(16 << 20, 7);
  std::vector<size_t> lengths = cut_all(cdc, data);
  size_t total = 0;
  for (size_t i = 0; i < lengths.size(); ++i) {
    total += lengths[i];
    if (i + 1 < lengths.size()) {
      EXPECT_GE(lengths[i], kParams.min_size);
      EXPECT_LE(lengths[i], kParams.max_size);
    }
  }
  EXPECT_EQ(total, data.size());
  const double average = static_cast<double>(total) / static_cast<double>(lengths.size());
  // Normalised chunking keeps the average close to the target (here within 2x).
  EXPECT_GT(average, kParams.avg_size / 2.0);
  EXPECT_LT(average, kParams.avg_size * 2.0);
}

TEST(BackupFastCdc, AnInsertionChangesOnlyTheChunksAroundIt) {
  RepoKeys keys = RepoKeys::generate();
  FastCdc cdc(kParams, keys.chunker_seed());
  std::vector<uint8_t> data = arche::test::random_bytes(8 << 20, 8);
  std::vector<uint8_t> shifted = data;
  shifted.insert(shifted.begin() + (3 << 20), {1, 2, 3, 4, 5, 6, 7});
  auto ids = [&](std::span<const uint8_t> d) {
    std::set<Id> out;
    for (size_t n : cut_all(cdc, d)) {
      out.insert(keys.chunk_id(d.first(n)));
      d = d.subspan(n);
    }
    return out;
  };
  std::set<Id> a = ids(data), b = ids(shifted);
  size_t shared = 0;
  for (const Id& id : b) shared += a.count(id);
  EXPECT_GE(shared + 3, a.size()) << "content-defined cuts must resynchronise after an insertion";
}

TEST(BackupFastCdc, CutsDependOnTheRepositoryKeyAndNotOnHowDataArrives) {
  RepoKeys k1 = RepoKeys::generate(), k2 = RepoKeys::generate();
  FastCdc a(kParams, k1.chunker_seed()), b(kParams, k2.chunker_seed());
  std::vector<uint8_t> data = arche::test::random_bytes(4 << 20, 9);
  EXPECT_NE(cut_all(a, data), cut_all(b, data)) << "the gear table comes from the key";
  // Without enough data and not final: 0 (ask for more); the eventual cut is the same.
  std::span<const uint8_t> all(data);
  size_t full = a.cut(all, true);
  if (full < kParams.max_size) {
    EXPECT_EQ(a.cut(all.first(full - 1), false), 0u);
  }
  EXPECT_EQ(a.cut(all.first(kParams.min_size / 2), true), kParams.min_size / 2);
}

}  // namespace
}  // namespace arche::backup
