// Model-checked random I/O through the mirror (acceptance 1): random writes, zero
// writes and discards, mirrored into an in-memory model. The mirror and every leg,
// read as a plain image, must equal the model at every checkpoint and after a
// reopen; the bitmap must be clean after a close.
#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "core/units.h"
#include "image/mirror/status.h"
#include "tests/image/mirror_test_util.h"

namespace arche::test {
namespace {

struct ModelCase {
  const char* name;
  ChecksumKind checksum;
  uint64_t block;
  std::vector<std::string> legs;  // file names; ".qcow2" legs are made with qemu-img
};

class MirrorModel : public ::testing::TestWithParam<ModelCase> {};

void expect_legs_equal_model(const std::vector<std::string>& legs, const std::vector<uint8_t>& model,
                             const std::string& when) {
  for (const std::string& leg : legs)
    EXPECT_TRUE(leg_data(leg, model.size()) == model) << leg << " differs from the model " << when;
}

TEST_P(MirrorModel, RandomIoMatchesModelOnEveryLeg) {
  const ModelCase& mc = GetParam();
  TempDir dir;
  const uint64_t size = 24 << 20;
  std::vector<std::string> legs;
  for (const std::string& name : mc.legs) {
    legs.push_back(dir.file(name));
    if (name.ends_with(".qcow2")) {
      ARCHE_REQUIRE_PROGRAM("qemu-img");
      ASSERT_EQ(qemu_img({"create", "-q", "-f", "qcow2", legs.back(), std::to_string(size + (2 << 20))}).exit_code, 0);
    }
  }
  auto dev = create_test_mirror(legs, size, mc.checksum, 1 << 20, mc.block);
  std::vector<uint8_t> model(size, 0);
  std::mt19937_64 rng(static_cast<uint64_t>(mc.checksum) * 7 + mc.block + legs.size());
  int writes = 0, zeroes = 0, discards = 0;
  const uint64_t g = dev->granularity();
  for (int op = 1; op <= 2500; ++op) {
    uint64_t len = rng() % 8 == 0 ? 1 + rng() % (1 << 20) : 1 + rng() % (3 * mc.block);
    uint64_t off = rng() % (size - len);
    if (rng() % 2) off = align_down(off, 512);
    switch (rng() % 6) {
      case 0:
      case 1:
      case 2: {
        std::vector<uint8_t> data = random_bytes(len, rng());
        dev->write(off, data);
        std::copy(data.begin(), data.end(), model.begin() + off);
        ++writes;
        break;
      }
      case 3:
      case 4:
        dev->write_zeroes(off, len, rng() % 2);
        std::fill(model.begin() + off, model.begin() + off + len, 0);
        ++zeroes;
        break;
      default: {
        dev->discard(off, len);
        uint64_t first = align_up(off, g), last = off + len == size ? size : align_down(off + len, g);
        if (first < last) std::fill(model.begin() + first, model.begin() + last, 0);
        ++discards;
        break;
      }
    }
    if (op % 300 == 0) dev->flush();
    if (op % 1000 == 0) {
      ASSERT_EQ(read_all(*dev), model) << "op " << op;
      dev->flush();
      expect_legs_equal_model(legs, model, "at op " + std::to_string(op));
      dev.reset();
      dev = open_test_mirror(legs);
      ASSERT_EQ(read_all(*dev), model) << "after reopen, op " << op;
    }
  }
  EXPECT_GT(writes, 0);
  EXPECT_GT(zeroes, 0);
  EXPECT_GT(discards, 0);
  dev.reset();
  expect_legs_equal_model(legs, model, "after close");
  // A clean close leaves no dirty region and every leg in sync.
  MirrorOptions ro;
  auto again = open_test_mirror(legs, ro);
  auto st = again->status();
  EXPECT_EQ(st.dirty_regions, 0u);
  EXPECT_EQ(st.state, "clean");
  for (const auto& l : st.legs) EXPECT_EQ(l.state, image::mirror::LegState::active) << l.path;
  EXPECT_EQ(read_all(*again), model);
}

INSTANTIATE_TEST_SUITE_P(
    Legs, MirrorModel,
    ::testing::Values(ModelCase{"xxh3_raw", ChecksumKind::xxh3, 4096, {"a.raw", "b.raw"}},
                      ModelCase{"crc32c_three_legs", ChecksumKind::crc32c, 4096, {"a.raw", "b.raw", "c.raw"}},
                      ModelCase{"none_raw", ChecksumKind::none, 4096, {"a.raw", "b.raw"}},
                      ModelCase{"xxh3_64k_qcow2_leg", ChecksumKind::xxh3, 65536, {"a.raw", "b.qcow2"}}),
    [](const auto& info) { return std::string(info.param.name); });

// Several threads on disjoint ranges, with edges inside checksum blocks shared by
// neighbours (the read-modify-write of a block must not lose the other's bytes).
TEST(MirrorConcurrency, ParallelWritersSharingBlocksMatchModel) {
  TempDir dir;
  const uint64_t size = 16 << 20;
  std::vector<std::string> legs{dir.file("a.raw"), dir.file("b.raw")};
  auto dev = create_test_mirror(legs, size);
  std::vector<uint8_t> model(size, 0);
  const int threads = 4;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::mt19937_64 rng(t + 100);
      for (int i = 0; i < 300; ++i) {
        // Thread t owns bytes whose 1000-byte stripe index is ≡ t (mod threads): its
        // writes share 4 KiB blocks with the other threads' all the time.
        uint64_t stripe = (rng() % (size / 1000 / threads)) * threads + t;
        uint64_t off = stripe * 1000, len = 1 + rng() % 1000;
        std::vector<uint8_t> data = random_bytes(len, rng());
        if (i % 7 == 6) {
          dev->write_zeroes(off, len, false);
          std::fill(model.begin() + off, model.begin() + off + len, 0);
        } else {
          dev->write(off, data);
          std::copy(data.begin(), data.end(), model.begin() + off);
        }
        std::vector<uint8_t> back(len);
        dev->read(off, back);
        EXPECT_TRUE(std::equal(back.begin(), back.end(), model.begin() + off)) << "thread " << t << " op " << i;
        if (i % 50 == 0) dev->flush();
      }
    });
  }
  for (auto& w : workers) w.join();
  EXPECT_EQ(read_all(*dev), model);
  dev.reset();
  for (const auto& leg : legs) EXPECT_TRUE(leg_data(leg, size) == model) << leg;
  auto again = open_test_mirror(legs);
  EXPECT_EQ(read_all(*again), model);
  EXPECT_EQ(again->status().healed, 0u) << "no block may look damaged after concurrent writes";
}

// A hot region costs one bitmap write while it stays hot (md-style counters).
TEST(MirrorBitmap, HotRegionCostsOneBitmapWrite) {
  TempDir dir;
  MirrorOptions o = rw_options();
  o.bitmap_clear_delay = std::chrono::hours(1);  // nothing is cleared during the test
  auto dev = create_test_mirror({dir.file("a.raw"), dir.file("b.raw")}, 8 << 20, ChecksumKind::xxh3, 1 << 20, 4096, o);
  dev.reset();
  dev = open_test_mirror({dir.file("a.raw"), dir.file("b.raw")}, o);
  const uint64_t before = dev->bitmap_writes();
  std::vector<uint8_t> block = random_bytes(4096, 1);
  for (int i = 0; i < 200; ++i) {
    dev->write((i % 64) * 4096, block);  // all inside region 0
    if (i % 20 == 0) dev->flush();
  }
  EXPECT_EQ(dev->bitmap_writes() - before, 1u);
  EXPECT_EQ(dev->status().dirty_regions, 1u);
}

}  // namespace
}  // namespace arche::test
