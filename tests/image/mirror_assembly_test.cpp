// Damaged and mismatched superblocks (acceptance 7): legs of two arrays, a stale
// leg with an older event counter, truncated metadata, legs used apart — each a
// clear error or warning, and a stale leg is never read in place of a current one.
// Also the superblock format itself: round trip, checksum, version.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/bytes.h"
#include "core/error.h"
#include "core/file.h"
#include "image/foreign/ids.h"
#include "image/mirror/mirror_format.h"
#include "tests/image/mirror_test_util.h"

namespace arche::test {
namespace {

using image::mirror::LegState;

constexpr uint64_t kSize = 4 << 20;

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(MirrorFormat, SuperblockRoundTripsAndRefusesDamage) {
  image::mirror::Superblock sb;
  sb.array_uuid = image::foreign::random_uuid();
  sb.geometry.data_size = kSize;
  sb.layout = image::mirror::layout_for(sb.geometry, image::mirror::min_leg_size(sb.geometry));
  sb.event = 12;
  sb.slots.resize(2);
  sb.slots[0].state = LegState::active;
  sb.slots[0].path = "/a.raw";
  sb.slots[1].state = LegState::rebuilding;
  sb.slots[1].rebuild_cursor = 1 << 20;
  sb.slots[1].path = "/b.raw";
  sb.events.push_back({1, 1, image::mirror::EventKind::healed_mismatch, 77});
  std::vector<uint8_t> bytes = image::mirror::encode_superblock(sb);
  ASSERT_EQ(bytes.size(), image::mirror::kSuperblockSlot);
  auto back = image::mirror::decode_superblock(bytes, "sb");
  EXPECT_EQ(back.event, 12u);
  EXPECT_EQ(back.slots[1].rebuild_cursor, 1u << 20);
  EXPECT_EQ(back.slots[1].path, "/b.raw");
  EXPECT_EQ(back.events.at(0).block, 77u);
  bytes[40] ^= 1;
  EXPECT_NE(error_of([&] { image::mirror::decode_superblock(bytes, "sb"); }).find("checksum"), std::string::npos);
  // A newer major version is refused by name, not misread.
  std::vector<uint8_t> payload(std::vector<uint8_t>(image::mirror::encode_superblock(sb)));
  auto v2 = seal_record(image::mirror::kSuperblockMagic, {2, 0}, std::span(payload).subspan(16, 200));
  v2.resize(image::mirror::kSuperblockSlot);
  try {
    image::mirror::decode_superblock(v2, "sb");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::unsupported);
  }
}

TEST(MirrorFormat, LayoutFitsAndMaxDataSizeIsTight) {
  image::mirror::Geometry g;
  for (uint64_t leg : {uint64_t{1} << 20, uint64_t{100} << 20, uint64_t{3} << 30}) {
    g.data_size = image::mirror::max_data_size(leg, g);
    ASSERT_GT(g.data_size, 0u);
    EXPECT_LE(image::mirror::min_leg_size(g), leg);
    image::mirror::Geometry bigger = g;
    bigger.data_size += 64 << 10;
    EXPECT_GT(image::mirror::min_leg_size(bigger), leg);
    EXPECT_TRUE(image::mirror::layout_consistent(g, image::mirror::layout_for(g, leg)));
  }
}

TEST(MirrorAssembly, LegsOfTwoArraysAreRefused) {
  TempDir dir;
  create_test_mirror({dir.file("a.raw"), dir.file("b.raw")}, kSize).reset();
  create_test_mirror({dir.file("c.raw"), dir.file("d.raw")}, kSize).reset();
  std::string e = error_of([&] { open_test_mirror({dir.file("a.raw"), dir.file("c.raw")}); });
  EXPECT_NE(e.find("different mirrors"), std::string::npos) << e;
  CommandResult r = arche({"image", "info", "mirror:" + dir.file("a.raw") + "+" + dir.file("d.raw")});
  EXPECT_EQ(r.exit_code, 64) << r.err;
  EXPECT_NE(r.err.find("different mirrors"), std::string::npos) << r.err;
}

TEST(MirrorAssembly, StaleLegIsNeverTrustedOverTheCurrentOne) {
  TempDir dir;
  std::vector<std::string> legs{dir.file("a.raw"), dir.file("b.raw")};
  std::vector<uint8_t> old_data = random_bytes(kSize, 1), new_data = random_bytes(kSize, 2);
  create_test_mirror(legs, kSize)->write(0, old_data);
  std::filesystem::copy_file(legs[1], dir.file("b.old"));
  open_test_mirror(legs)->write(0, new_data);
  // An old copy of b.raw comes back (a restore, a disk swapped back by mistake).
  std::filesystem::rename(dir.file("b.old"), legs[1]);
  {
    MirrorOptions ro;
    auto dev = open_test_mirror(legs, ro);
    auto st = dev->status();
    EXPECT_EQ(st.legs[1].state, LegState::failed);
    EXPECT_NE(st.legs[1].note.find("behind"), std::string::npos) << st.legs[1].note;
    for (int i = 0; i < 4; ++i) EXPECT_EQ(read_all(*dev), new_data) << "read " << i;  // reads alternate legs in sync
  }
  {
    auto dev = open_test_mirror(legs);
    auto st = dev->status();
    EXPECT_EQ(st.state, "degraded");
    EXPECT_NE(st.legs[1].note.find("stale"), std::string::npos) << st.legs[1].note;
    EXPECT_EQ(read_all(*dev), new_data);
  }
  // The writable open recorded it as failed: it stays out.
  CommandResult r = arche({"raid", "status", "--json", legs[0]});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["legs"][1]["state"], "failed");
  // Opening it alone still finds the current leg through the recorded path.
  EXPECT_EQ(read_all(*open_test_mirror({legs[1]}, MirrorOptions{})), new_data);
  // Added back, it is rebuilt and current again.
  r = arche({"raid", "add", legs[0], legs[1], legs[1]});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(leg_data(legs[1], kSize) == new_data);
}

TEST(MirrorAssembly, TruncatedOrDamagedLegIsNamedAndTheArrayRunsWithoutIt) {
  TempDir dir;
  std::vector<std::string> legs{dir.file("a.raw"), dir.file("b.raw")};
  std::vector<uint8_t> data = random_bytes(kSize, 3);
  create_test_mirror(legs, kSize)->write(0, data);
  const uint64_t size = File::open(legs[1], OpenMode::read_only).size();
  File::open(legs[1], OpenMode::read_write).truncate(size - 4096);
  CommandResult r = arche({"raid", "status", legs[1]});
  EXPECT_EQ(r.exit_code, 65) << r.err;
  EXPECT_NE(r.err.find("no mirror superblock"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("truncated"), std::string::npos) << r.err;
  auto dev = open_test_mirror(legs);
  auto st = dev->status();
  EXPECT_EQ(st.legs[1].state, LegState::failed);
  EXPECT_NE(st.legs[1].note.find("no mirror superblock"), std::string::npos) << st.legs[1].note;
  EXPECT_EQ(read_all(*dev), data);
  dev.reset();
  // Both superblock copies of a damaged: nothing usable is left, and the error says why.
  const uint64_t a_size = File::open(legs[0], OpenMode::read_only).size();
  corrupt_file(legs[0], a_size - 16384 + 100, 10);
  corrupt_file(legs[0], a_size - 8192 + 100, 10);
  std::string e = error_of([&] { open_test_mirror({legs[0]}); });
  EXPECT_NE(e.find("checksum mismatch"), std::string::npos) << e;
}

TEST(MirrorAssembly, LegsUsedApartAreRefusedUntilOneIsChosen) {
  TempDir dir;
  std::vector<std::string> legs{dir.file("a.raw"), dir.file("b.raw")};
  create_test_mirror(legs, kSize).reset();
  std::vector<uint8_t> on_a = random_bytes(4096, 4), on_b = random_bytes(4096, 5);
  // b's disk is gone while the VM runs on a; later a's is gone while it runs on b.
  std::filesystem::rename(legs[1], dir.file("b.away"));
  open_test_mirror({legs[0]})->write(0, on_a);  // b is missing: failed in a's superblock
  std::filesystem::rename(dir.file("b.away"), legs[1]);
  std::filesystem::rename(legs[0], dir.file("a.away"));
  open_test_mirror({legs[1]})->write(0, on_b);  // and a in b's
  std::filesystem::rename(dir.file("a.away"), legs[0]);
  std::string e = error_of([&] { open_test_mirror(legs); });
  EXPECT_NE(e.find("used without the other"), std::string::npos) << e;
  // The admin keeps a: assemble it alone, then add b back.
  CommandResult r = arche({"raid", "assemble", legs[0]});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = arche({"raid", "add", legs[0], legs[1], legs[1]});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto dev = open_test_mirror(legs);
  std::vector<uint8_t> back(4096);
  dev->read(0, back);
  EXPECT_EQ(back, on_a);
  EXPECT_EQ(dev->status().state, "clean");
}

}  // namespace
}  // namespace arche::test
