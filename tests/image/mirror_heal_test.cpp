// Self-healing (acceptance 2): bytes corrupted on one leg, in different places on
// each, read back right, the bad copies rewritten, counted and shown with their
// block numbers; a block bad on every leg is one I/O error naming it; scrub finds
// what reads did not touch, and pauses and resumes where it was.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "image/mirror/status.h"
#include "tests/image/mirror_test_util.h"

namespace arche::test {
namespace {

constexpr uint64_t kSize = 8 << 20, kBlock = 4096;

struct Array {
  TempDir dir;
  std::vector<std::string> legs{dir.file("a.raw"), dir.file("b.raw")};
  std::vector<uint8_t> model = random_bytes(kSize, 42);

  explicit Array(ChecksumKind checksum = ChecksumKind::xxh3) {
    auto dev = create_test_mirror(legs, kSize, checksum);
    dev->write(0, model);
  }
};

std::set<uint64_t> healed_blocks(const image::mirror::MirrorStatus& s, uint32_t slot) {
  std::set<uint64_t> out;
  for (const auto& e : s.events)
    if (e.slot == slot && e.kind == image::mirror::EventKind::healed_mismatch) out.insert(e.block);
  return out;
}

TEST(MirrorHeal, CorruptionOnEachLegIsReadRightHealedAndCounted) {
  Array a;
  const std::set<uint64_t> bad_a{3, 10, 1000}, bad_b{5, 77};
  for (uint64_t b : bad_a) corrupt_file(a.legs[0], b * kBlock + 100, 50);
  for (uint64_t b : bad_b) corrupt_file(a.legs[1], b * kBlock, kBlock);
  {
    auto dev = open_test_mirror(a.legs);
    // Read each block twice in a row so that both legs serve it (reads alternate).
    for (uint64_t off = 0; off < kSize; off += kBlock)
      for (int twice = 0; twice < 2; ++twice) {
        std::vector<uint8_t> buf(kBlock);
        dev->read(off, buf);
        ASSERT_TRUE(std::equal(buf.begin(), buf.end(), a.model.begin() + off)) << "offset " << off;
      }
    auto st = dev->status();
    EXPECT_EQ(st.legs[0].healed, bad_a.size());
    EXPECT_EQ(st.legs[1].healed, bad_b.size());
    EXPECT_EQ(st.healed, bad_a.size() + bad_b.size());
    EXPECT_EQ(healed_blocks(st, 0), bad_a);
    EXPECT_EQ(healed_blocks(st, 1), bad_b);
    EXPECT_EQ(st.unrecoverable, 0u);
  }
  // The bad copies were rewritten: both legs hold the right bytes again.
  EXPECT_TRUE(leg_data(a.legs[0], kSize) == a.model);
  EXPECT_TRUE(leg_data(a.legs[1], kSize) == a.model);
  // `raid status --json` says how many and where (the counters are persisted).
  CommandResult r = arche({"raid", "status", "--json", a.legs[1]});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["healed-blocks"], bad_a.size() + bad_b.size());
  EXPECT_EQ(j["legs"][0]["healed-blocks"], bad_a.size());
  EXPECT_EQ(j["legs"][1]["healed-blocks"], bad_b.size());
  std::set<uint64_t> offsets;
  for (const auto& e : j["events"])
    if (e["kind"] == "healed-checksum-mismatch") offsets.insert(e["offset"].get<uint64_t>());
  for (uint64_t b : bad_a) EXPECT_TRUE(offsets.count(b * kBlock)) << "block " << b;
  for (uint64_t b : bad_b) EXPECT_TRUE(offsets.count(b * kBlock)) << "block " << b;
}

TEST(MirrorHeal, BlockBadOnEveryLegIsOneClearErrorNeverWrongData) {
  Array a;
  corrupt_file(a.legs[0], 42 * kBlock + 7, 1);
  corrupt_file(a.legs[1], 42 * kBlock + 3000, 1);
  {
    auto dev = open_test_mirror(a.legs);
    std::vector<uint8_t> buf(3 * kBlock);
    try {
      dev->read(41 * kBlock, buf);
      FAIL() << "the read returned data";
    } catch (const Error& e) {
      EXPECT_EQ(e.category(), ErrorCategory::io);
      EXPECT_NE(std::string(e.what()).find("block 42 "), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("every leg"), std::string::npos) << e.what();
    }
    // Everything else still reads right.
    std::vector<uint8_t> before(42 * kBlock), after(kSize - 43 * kBlock);
    dev->read(0, before);
    dev->read(43 * kBlock, after);
    EXPECT_TRUE(std::equal(before.begin(), before.end(), a.model.begin()));
    EXPECT_TRUE(std::equal(after.begin(), after.end(), a.model.begin() + 43 * kBlock));
    EXPECT_EQ(dev->status().unrecoverable, 1u);
  }
  // Through the CLI: one line naming the block, exit 74 (I/O).
  CommandResult r = arche({"image", "read", image::mirror::mirror_name(a.legs), "0", "1M", "--to", a.dir.file("out")});
  EXPECT_EQ(r.exit_code, 74);
  EXPECT_NE(r.err.find("block 42 "), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(MirrorHeal, ReadErrorOnOneLegIsServedFromTheOtherAndRewritten) {
  Array a;
  auto faults = std::make_shared<FaultyDevice::Faults>();
  faults->bad_reads.insert({100 * kBlock, 101 * kBlock});
  MirrorOptions o = rw_options();
  o.wrap_leg = fault_leg("b.raw", faults);
  auto dev = open_test_mirror(a.legs, o);
  for (int i = 0; i < 2; ++i) {  // both legs serve it once
    std::vector<uint8_t> buf(kBlock);
    dev->read(100 * kBlock, buf);
    EXPECT_TRUE(std::equal(buf.begin(), buf.end(), a.model.begin() + 100 * kBlock));
  }
  auto st = dev->status();
  EXPECT_EQ(st.legs[1].healed, 1u);
  EXPECT_GE(st.legs[1].read_errors, 1u);
  EXPECT_TRUE(faults->bad_reads.empty()) << "the bad copy was rewritten";
  EXPECT_EQ(st.legs[1].state, image::mirror::LegState::active) << "a healed read error does not fail the leg";
}

TEST(MirrorHeal, DamagedChecksumTableEntryOnOneLegIsCorrected) {
  Array a;
  // The table starts at the first 64 KiB boundary after the data.
  corrupt_file(a.legs[0], kSize + 7 * 4, 4);
  auto dev = open_test_mirror(a.legs);
  std::vector<uint8_t> buf(kBlock);
  dev->read(7 * kBlock, buf);
  EXPECT_TRUE(std::equal(buf.begin(), buf.end(), a.model.begin() + 7 * kBlock));
  EXPECT_EQ(dev->status().unrecoverable, 0u);
}

TEST(MirrorScrub, FindsAndHealsWhatNoReadTouchedAndResumesWhereItPaused) {
  Array a;
  // Region size 1 MiB: damage in regions 1, 5 and 7 of 8.
  const std::vector<std::pair<int, uint64_t>> damage{{0, 300}, {1, 1300}, {0, 1900}};
  for (auto [leg, block] : damage) corrupt_file(a.legs[leg], block * kBlock, 16);
  {
    auto dev = open_test_mirror(a.legs);
    dev->start_scrub();
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(image::mirror::MirrorTestAccess::scrub_step(*dev));
    dev->pause_scrub();
    EXPECT_FALSE(image::mirror::MirrorTestAccess::scrub_step(*dev)) << "a paused scrub does nothing";
    auto st = dev->status();
    EXPECT_EQ(st.scrub.state, image::mirror::ScrubState::paused);
    EXPECT_EQ(st.scrub.cursor, 3u << 20);
    EXPECT_EQ(st.scrub.healed, 1u);  // block 300, in region 1
  }
  {
    // The position survives a close; --resume continues from it.
    MirrorOptions ro;
    auto st = open_test_mirror(a.legs, ro)->status();
    EXPECT_EQ(st.scrub.state, image::mirror::ScrubState::paused);
    EXPECT_EQ(st.scrub.cursor, 3u << 20);
  }
  CommandResult r = arche({"raid", "scrub", "--resume", "--json", a.legs[0]});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["scrub"]["state"], "idle");
  EXPECT_EQ(j["scrub"]["healed-blocks"], 3);
  EXPECT_EQ(j["scrub"]["blocks-checked"], kSize / kBlock);
  EXPECT_TRUE(leg_data(a.legs[0], kSize) == a.model);
  EXPECT_TRUE(leg_data(a.legs[1], kSize) == a.model);
  // A block bad on both legs: scrub goes on to the end and exits 2.
  corrupt_file(a.legs[0], 9 * kBlock, 1);
  corrupt_file(a.legs[1], 9 * kBlock + 1, 1);
  r = arche({"raid", "scrub", a.legs[0]});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.out.find("1 unrecoverable"), std::string::npos) << r.out;
}

TEST(MirrorScrub, WithoutChecksumsDifferencesAreCountedAndTheFirstLegWins) {
  Array a(ChecksumKind::none);
  corrupt_file(a.legs[1], 17 * kBlock, 10);
  auto dev = open_test_mirror(a.legs);
  image::mirror::ScrubRecord r = dev->scrub(false);
  EXPECT_EQ(r.mismatches, 1u);
  EXPECT_EQ(r.state, image::mirror::ScrubState::idle);
  dev.reset();
  EXPECT_TRUE(leg_data(a.legs[1], kSize) == a.model);
}

}  // namespace
}  // namespace arche::test
