// The rotating verification of `job run`: the parts 1..N of check's read-data subset
// split the packs between them, so N nights (each verifying the part its date
// gives) read every chunk exactly once.
#include <gtest/gtest.h>

#include "backup/check.h"
#include "core/error.h"
#include "jobs/run.h"
#include "tests/backup/backup_test_util.h"

namespace arche::jobs::test {
namespace {

class VerifyRotation : public backup::test::RepositoryTest {};

TEST_F(VerifyRotation, NNightsReadEveryPackOnce) {
  const std::string small = dir.file("small");
  backup::test::init_repo(small, {"--pack-size", "1M"});
  backup::test::write_random_file(dir.file("disk.raw"), 24u << 20, 1660);
  backup::test::backup_ok({"create", small + "::one", "--image", dir.file("disk.raw")});
  auto repo = backup::test::open_repo(small);
  backup::CheckOptions all;
  all.read_data = true;
  const backup::CheckReport full = backup::check_repository(*repo, all);
  ASSERT_TRUE(full.ok());
  ASSERT_GT(full.bytes_verified, 20u << 20);

  constexpr uint32_t kParts = 5;
  uint64_t sum = 0;
  for (uint32_t part = 1; part <= kParts; ++part) {
    backup::CheckOptions o = all;
    o.subset_part = part;
    o.subset_parts = kParts;
    const backup::CheckReport r = backup::check_repository(*repo, o);
    EXPECT_TRUE(r.ok());
    EXPECT_LT(r.bytes_verified, full.bytes_verified) << "part " << part << " is a part";
    sum += r.bytes_verified;
  }
  EXPECT_EQ(sum, full.bytes_verified) << "together the parts read every pack, none twice";

  // N consecutive nights name each part once.
  std::vector<int> seen(kParts + 1);
  const int64_t day = 86400ll * 1000000000, start = 20000 * day + 3600ll * 1000000000;
  for (uint32_t night = 0; night < kParts; ++night) ++seen.at(verify_part_for(start + night * day, kParts));
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 1, 1, 1, 1}));

  backup::CheckOptions bad = all;
  bad.subset_part = 6;
  bad.subset_parts = kParts;
  EXPECT_THROW(backup::check_repository(*repo, bad), Error);
}

}  // namespace
}  // namespace arche::jobs::test
