// Crashes (acceptance 4): a writer killed with SIGKILL during heavy writes leaves
// legs that the next open makes equal by resyncing only the regions the bitmap
// marks (counted), with everything flushed before the kill intact; a superblock or
// bitmap write torn by a crash is detected by its checksum and the other copy (or
// a wider resync) is used.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <random>
#include <set>
#include <thread>

#include "core/endian.h"
#include "core/error.h"
#include "core/file.h"
#include "image/format.h"
#include "image/mirror/mirror_format.h"
#include "tests/image/mirror_test_util.h"

namespace arche::test {
namespace {

constexpr uint64_t kRegion = 1 << 20, kSize = 64 << 20, kBlock = 4096;
constexpr uint64_t kHot = 6;  // regions 0..5 are written all the time

uint8_t pattern_for(uint64_t op) { return static_cast<uint8_t>(1 + op % 251); }

uint64_t read_progress(const std::string& path) {
  uint8_t buf[8] = {};
  File::open(path, OpenMode::read_only).read_some(0, buf);
  return load_le64(buf);
}

// The child: first writes regions 40..43 once and flushes twice (their bits are
// cleared), then rewrites hot regions with the pattern of each op, flushing every
// 8 ops and recording how far it got. Never returns.
[[noreturn]] void writer(const std::vector<std::string>& legs, const std::string& progress) {
  try {
    auto dev = open_test_mirror(legs);
    File side = File::open(progress, OpenMode::read_write);
    std::vector<uint8_t> cold(kRegion, 0x99);
    for (uint64_t r = 40; r < 44; ++r) dev->write(r * kRegion, cold);
    dev->flush();
    dev->flush();
    std::mt19937_64 rng(getpid());
    std::vector<uint8_t> data(256 << 10);
    for (uint64_t op = 0;; ++op) {
      std::fill(data.begin(), data.end(), pattern_for(op));
      const uint64_t region = op % kHot;
      for (uint64_t at = 0; at < kRegion; at += data.size()) dev->write(region * kRegion + at, data);
      if (op % 8 == 7) {
        dev->flush();
        uint8_t done[8];
        store_le64(done, op + 1);
        side.write_all(0, done);
      }
    }
  } catch (const std::exception& e) {
    fprintf(stderr, "writer failed: %s\n", e.what());
    _exit(3);
  }
}

TEST(MirrorCrash, KilledWriterIsResyncedInTheDirtyRegionsOnly) {
  for (int round = 0; round < 3; ++round) {
    TempDir dir;
    std::vector<std::string> legs{dir.file("a.raw"), dir.file("b.raw")};
    create_test_mirror(legs, kSize, ChecksumKind::xxh3, kRegion).reset();
    const std::string progress = dir.file("progress");
    write_file(progress, std::vector<uint8_t>(8, 0));
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) writer(legs, progress);
    // Kill once it has flushed a few times (however slow the machine is), in
    // different phases of its work each round.
    const uint64_t target = 16 + 9 * round;
    while (read_progress(progress) < target) {
      int status = 0;
      ASSERT_EQ(waitpid(pid, &status, WNOHANG), 0) << "the writer ended early";
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(3 * round));
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "round " << round;
    const uint64_t flushed = read_progress(progress);

    auto dev = open_test_mirror(legs);
    auto st = dev->status();
    // Only hot regions can have been dirty; the cold ones were cleared before.
    EXPECT_GE(st.last_resync.regions, 1u) << "round " << round;
    EXPECT_LE(st.last_resync.regions, kHot) << "round " << round;
    EXPECT_LE(st.last_resync.bytes_read, kHot * kRegion * legs.size()) << "round " << round;
    EXPECT_EQ(st.dirty_regions, 0u);
    EXPECT_EQ(st.healed, 0u) << "a resynced array has no bad copies";
    // Every block of a hot region holds the pattern of an op no older than the last
    // flushed op that wrote that region (flushed data is intact; later writes may or
    // may not have landed, block by block).
    std::vector<uint8_t> region(kRegion);
    for (uint64_t r = 0; r < kHot; ++r) {
      dev->read(r * kRegion, region);
      uint64_t last_flushed = flushed - 1 - (flushed - 1 + kHot - r) % kHot;  // last op < flushed with op % kHot == r
      std::set<uint8_t> allowed;
      // Ops after the last recorded flush: at most the 8 of the next flush and one more.
      for (uint64_t op = last_flushed; op < flushed + 18; op += kHot) allowed.insert(pattern_for(op));
      for (uint64_t off = 0; off < kRegion; off += kBlock)
        ASSERT_TRUE(allowed.count(region[off]) && std::all_of(region.begin() + off, region.begin() + off + kBlock,
                                                              [&](uint8_t v) { return v == region[off]; }))
            << "round " << round << " region " << r << " block " << off / kBlock;
    }
    std::vector<uint8_t> cold(kRegion);
    dev->read(41 * kRegion, cold);
    EXPECT_TRUE(std::all_of(cold.begin(), cold.end(), [](uint8_t v) { return v == 0x99; }));
    dev.reset();
    EXPECT_TRUE(leg_data(legs[0], kSize) == leg_data(legs[1], kSize)) << "round " << round;
  }
}

// Runs `fn` in a child process that must end by itself (a fault injector's _exit).
void in_child(const std::function<void()>& fn) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    try {
      fn();
    } catch (const std::exception& e) {
      fprintf(stderr, "child: %s\n", e.what());
      _exit(3);
    }
    _exit(4);  // the fault did not trigger
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0) << "the injected crash did not happen where expected";
}

TEST(MirrorCrash, TornSuperblockWriteIsDetectedAndTheOtherCopyUsed) {
  TempDir dir;
  std::vector<std::string> legs{dir.file("a.raw"), dir.file("b.raw")};
  std::vector<uint8_t> model = random_bytes(4 << 20, 5);
  create_test_mirror(legs, 4 << 20, ChecksumKind::xxh3, kRegion).reset();
  const uint64_t leg_size = File::open(legs[1], OpenMode::read_only).size();
  in_child([&] {
    auto faults = std::make_shared<FaultyDevice::Faults>();
    MirrorOptions o = rw_options();
    o.wrap_leg = fault_leg("b.raw", faults);
    auto dev = open_test_mirror(legs, o);
    dev->write(0, model);
    dev->flush();
    // The next superblock write on b.raw (at the close) stops after 100 bytes.
    {
      std::lock_guard lock(faults->mutex);
      faults->exit_on_write_lo = leg_size - image::mirror::kSuperblockArea;
      faults->exit_on_write_hi = leg_size;
      faults->exit_after = 100;
    }
    dev.reset();
  });
  // One of b.raw's two copies fails its checksum now.
  std::vector<uint8_t> area(image::mirror::kSuperblockArea);
  File::open(legs[1], OpenMode::read_only).read_exact(leg_size - area.size(), area);
  int valid = 0;
  for (int copy = 0; copy < 2; ++copy) {
    try {
      image::mirror::decode_superblock(std::span(area).subspan(copy * image::mirror::kSuperblockSlot,
                                                               image::mirror::kSuperblockSlot),
                                       "copy");
      ++valid;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("checksum"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(valid, 1);
  // The array opens with both legs, equal, and the data intact.
  auto dev = open_test_mirror(legs);
  auto st = dev->status();
  EXPECT_EQ(st.state, "clean");
  for (const auto& l : st.legs) EXPECT_EQ(l.state, image::mirror::LegState::active) << l.path << " " << l.note;
  std::vector<uint8_t> back(model.size());
  dev->read(0, back);
  EXPECT_EQ(back, model);
  dev.reset();
  EXPECT_TRUE(leg_data(legs[0], model.size()) == model);
  EXPECT_TRUE(leg_data(legs[1], model.size()) == model);
}

TEST(MirrorCrash, TornBitmapPageMakesItsRegionsDirty) {
  TempDir dir;
  std::vector<std::string> legs{dir.file("a.raw"), dir.file("b.raw")};
  create_test_mirror(legs, 8 << 20, ChecksumKind::xxh3, kRegion).reset();
  // The bitmap follows the table: 8 MiB of data, 2048 entries = 8 KiB of table.
  const uint64_t bitmap = (8 << 20) + 8192;
  in_child([&] {
    auto faults = std::make_shared<FaultyDevice::Faults>();
    MirrorOptions o = rw_options();
    o.wrap_leg = fault_leg("a.raw", faults);
    auto dev = open_test_mirror(legs, o);
    {
      std::lock_guard lock(faults->mutex);
      faults->exit_on_write_lo = bitmap;
      faults->exit_on_write_hi = bitmap + 4096;
      faults->exit_after = 10;  // the page's CRC and half its index
    }
    std::vector<uint8_t> data(4096, 1);
    dev->write(3 * kRegion, data);  // marks region 3: the bitmap write is torn
  });
  auto dev = open_test_mirror(legs);
  auto st = dev->status();
  EXPECT_EQ(st.last_resync.regions, 8u) << "every region of the damaged page";
  EXPECT_EQ(st.dirty_regions, 0u);
  dev.reset();
  EXPECT_TRUE(leg_data(legs[0], 8 << 20) == leg_data(legs[1], 8 << 20));
}

}  // namespace
}  // namespace arche::test
