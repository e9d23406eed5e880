// Degraded operation and rebuilds (acceptance 3), and the live operations under
// concurrent I/O: fail, remove, add, replace, rebuild, scrub pause/resume while
// writer threads run, model-checked (what the VM's control socket will do).
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "core/error.h"
#include "core/units.h"
#include "image/format.h"
#include "image/mirror/status.h"
#include "tests/image/mirror_test_util.h"

namespace arche::test {
namespace {

constexpr uint64_t kSize = 64 << 20, kRegion = 1 << 20;

TEST(MirrorRebuild, DegradedWritesThenAddCopiesOnlyRegionsWithData) {
  TempDir dir;
  std::vector<std::string> legs{dir.file("a.raw"), dir.file("b.raw")};
  std::vector<uint8_t> model(kSize, 0);
  auto put = [&](MirrorDevice& dev, uint64_t off, uint64_t len, uint64_t seed) {
    std::vector<uint8_t> data = random_bytes(len, seed);
    dev.write(off, data);
    std::copy(data.begin(), data.end(), model.begin() + off);
  };
  {
    auto dev = create_test_mirror(legs, kSize, ChecksumKind::xxh3, kRegion);
    put(*dev, 0, 300 << 10, 1);                 // region 0
    put(*dev, 10 * kRegion + 5000, 70000, 2);   // region 10
    put(*dev, 40 * kRegion, kRegion, 3);        // region 40
    dev->fail_leg(legs[1]);
    dev->remove_leg("1");
    put(*dev, 50 * kRegion + 4096, 8192, 4);    // degraded, a new region
    put(*dev, 10 * kRegion, 4096, 5);           // degraded, an old one
    auto st = dev->status();
    EXPECT_EQ(st.legs.size(), 1u);
    EXPECT_EQ(st.state, "degraded") << "one leg left: no redundancy";
  }
  // The removed leg is a plain image now, not a member.
  EXPECT_THROW(open_test_mirror({legs[1]}), Error);
  EXPECT_FALSE(leg_data(legs[1], kSize) == model) << "it did not get the degraded writes";

  // Data extents of the remaining leg: what a rebuild has to copy at most.
  uint64_t data_bytes = 0;
  {
    image::OpenOptions o;
    auto raw = image::open_image(legs[0], o);
    for (const auto& e : raw->map(0, kSize))
      if (e.kind == image::ExtentKind::data) data_bytes += e.length;
  }
  ASSERT_GT(data_bytes, 0u);
  ASSERT_LT(data_bytes, 5 * kRegion);

  CommandResult r = arche({"raid", "add", legs[0], "1", dir.file("c.raw")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = arche({"raid", "status", "--json", legs[0]});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["state"], "clean");
  EXPECT_EQ(j["legs"][1]["state"], "active");
  const auto& rebuild = j["last-rebuild"];
  ASSERT_FALSE(rebuild.is_null());
  EXPECT_EQ(rebuild["leg"], 1);
  // Only the regions holding data were copied, byte for byte what the map says; a
  // fresh sparse leg needed no zeroing.
  EXPECT_EQ(rebuild["bytes-written"].get<uint64_t>(), data_bytes);
  EXPECT_EQ(rebuild["bytes-zeroed"].get<uint64_t>(), 0u);
  EXPECT_TRUE(leg_data(legs[0], kSize) == model);
  EXPECT_TRUE(leg_data(dir.file("c.raw"), kSize) == model);
  // And the new leg is a full member: with the first leg gone it serves everything.
  std::filesystem::rename(legs[0], dir.file("gone.raw"));
  auto dev = open_test_mirror({dir.file("c.raw")});
  EXPECT_EQ(read_all(*dev), model);
  EXPECT_EQ(dev->status().state, "degraded");
}

TEST(MirrorRebuild, AddOverExistingDataZeroesWhatTheSourceDoesNotHold) {
  TempDir dir;
  std::vector<std::string> legs{dir.file("a.raw"), dir.file("b.raw")};
  std::vector<uint8_t> model(kSize, 0);
  {
    auto dev = create_test_mirror(legs, kSize, ChecksumKind::crc32c, kRegion);
    std::vector<uint8_t> data = random_bytes(kRegion, 9);
    dev->write(3 * kRegion, data);
    std::copy(data.begin(), data.end(), model.begin() + 3 * kRegion);
    dev->fail_leg("1");
  }
  // c.raw is full of old data: without --overwrite it is refused.
  write_file(dir.file("c.raw"), random_bytes(kSize + (1 << 20), 10));
  CommandResult r = arche({"raid", "add", legs[0], "1", dir.file("c.raw")});
  EXPECT_EQ(r.exit_code, 73) << r.err;
  EXPECT_NE(r.err.find("holds data"), std::string::npos) << r.err;
  r = arche({"raid", "add", "--overwrite", legs[0], "1", dir.file("c.raw")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto st = open_test_mirror({legs[0]})->status();
  EXPECT_EQ(st.last_rebuild.bytes_written, kRegion);
  EXPECT_EQ(st.last_rebuild.bytes_zeroed, kSize - kRegion);
  EXPECT_TRUE(leg_data(dir.file("c.raw"), kSize) == model);
}

TEST(MirrorRebuild, ReplaceKeepsTheOldLegInUseUntilTheNewOneIsInSync) {
  TempDir dir;
  std::vector<std::string> legs{dir.file("a.raw"), dir.file("b.raw")};
  std::vector<uint8_t> model = random_bytes(8 << 20, 77);
  auto dev = create_test_mirror(legs, 8 << 20, ChecksumKind::xxh3, kRegion);
  dev->write(0, model);
  dev->replace_leg(legs[1], dir.file("c.raw"));
  auto st = dev->status();
  ASSERT_EQ(st.legs.size(), 3u);
  EXPECT_EQ(st.legs[1].state, image::mirror::LegState::active);
  EXPECT_EQ(st.legs[2].state, image::mirror::LegState::rebuilding);
  EXPECT_EQ(st.legs[2].replaces, 1);
  dev->rebuild();
  st = dev->status();
  ASSERT_EQ(st.legs.size(), 2u) << "b.raw left when c.raw was in sync";
  EXPECT_EQ(st.legs[1].slot, 2u);
  EXPECT_EQ(st.legs[1].state, image::mirror::LegState::active);
  dev.reset();
  EXPECT_TRUE(leg_data(dir.file("c.raw"), 8 << 20) == model);
  EXPECT_EQ(open_test_mirror({dir.file("c.raw")})->status().state, "clean");
}

// The live operations as the VM will call them: while two writer threads keep
// writing (and reading back), a leg is failed, removed, added back as a new file,
// another is replaced, and a scrub is paused and resumed. Nothing a writer reads
// back may differ from what it wrote; at the end every leg equals the model.
TEST(MirrorLive, MembershipChangesUnderConcurrentIoKeepTheModel) {
  TempDir dir;
  const uint64_t size = 32 << 20;
  std::vector<std::string> legs{dir.file("a.raw"), dir.file("b.raw")};
  auto dev = create_test_mirror(legs, size, ChecksumKind::xxh3, kRegion);
  dev->start_background();
  std::vector<uint8_t> model(size, 0);
  std::atomic<bool> stop{false};
  std::atomic<int> ops{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < 2; ++t) {
    writers.emplace_back([&, t] {
      std::mt19937_64 rng(t + 7);
      const uint64_t half = size / 2, base = t * half;
      while (!stop) {
        uint64_t len = 1 + rng() % (256 << 10), off = base + rng() % (half - len);
        std::vector<uint8_t> data = random_bytes(len, rng());
        try {
          if (rng() % 5 == 0) {
            dev->write_zeroes(off, len, true);
            std::fill(model.begin() + off, model.begin() + off + len, 0);
          } else {
            dev->write(off, data);
            std::copy(data.begin(), data.end(), model.begin() + off);
          }
          std::vector<uint8_t> back(len);
          dev->read(off, back);
          if (!std::equal(back.begin(), back.end(), model.begin() + off)) {
            ADD_FAILURE() << "thread " << t << " read back wrong data at " << off;
            stop = true;
          }
          if (rng() % 16 == 0) dev->flush();
        } catch (const std::exception& e) {
          ADD_FAILURE() << "thread " << t << ": " << e.what();
          stop = true;
        }
        ++ops;
      }
    });
  }
  auto wait_ops = [&](int n) {
    const int until = ops + n;
    while (ops < until && !stop) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  };
  wait_ops(50);
  dev->fail_leg(legs[1]);
  wait_ops(50);
  dev->remove_leg(legs[1]);
  wait_ops(50);
  dev->add_leg("1", dir.file("c.raw"));
  dev->wait_background_idle();
  wait_ops(50);
  dev->replace_leg(legs[0], dir.file("d.raw"));
  wait_ops(20);
  dev->start_scrub();
  dev->pause_scrub();
  wait_ops(20);
  dev->resume_scrub();
  dev->wait_background_idle();
  wait_ops(50);
  stop = true;
  for (auto& w : writers) w.join();
  dev->flush();
  auto st = dev->status();
  EXPECT_EQ(st.state, "clean");
  EXPECT_EQ(st.scrub.state, image::mirror::ScrubState::idle);
  EXPECT_EQ(st.healed, 0u) << "no copy was damaged, so none may look it";
  EXPECT_EQ(st.unrecoverable, 0u);
  EXPECT_EQ(read_all(*dev), model);
  std::vector<std::string> now;
  for (const auto& l : st.legs)
    if (l.state == image::mirror::LegState::active) now.push_back(l.path);
  EXPECT_EQ(now, (std::vector<std::string>{std::filesystem::canonical(dir.file("c.raw")).string(),
                                          std::filesystem::canonical(dir.file("d.raw")).string()}));
  dev.reset();
  for (const auto& leg : now) EXPECT_TRUE(leg_data(leg, size) == model) << leg;
}

}  // namespace
}  // namespace arche::test
