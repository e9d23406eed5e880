// Crash safety: a writer killed with SIGKILL in the middle of heavy writes leaves an
// image that qemu-img check finds free of corruption, that arche reopens (repairing
// when the dirty bit says so), whose leaks `arche image check -r leaks` fixes, and
// in which everything flushed before the kill is intact.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <set>
#include <thread>

#include "core/endian.h"
#include "core/file.h"
#include "image/format.h"
#include "tests/image/image_test_util.h"

namespace arche::test {
namespace {

constexpr uint64_t kRegion = 64 << 10;
constexpr uint64_t kSize = 64 << 20;
constexpr uint64_t kRegions = kSize / kRegion;

uint8_t pattern_for(uint64_t op) { return static_cast<uint8_t>(1 + op % 251); }

// The child: writes region op % kRegions with a pattern, plus noise (zero writes,
// discards, partial writes) into a scratch area; after every flush it records how far
// it got in a side file. Never returns.
[[noreturn]] void writer(const std::string& image, const std::string& progress) {
  try {
    image::OpenOptions o;
    o.writable = true;
    o.cache_bytes = 256 << 10;
    auto dev = image::open_image(image, o);
    File side = File::open(progress, OpenMode::read_write);
    std::mt19937_64 rng(getpid());
    std::vector<uint8_t> noise(200 << 10);
    for (uint64_t op = 0;; ++op) {
      uint64_t region = op % (kRegions / 2);  // first half: checked regions
      std::vector<uint8_t> data(kRegion, pattern_for(op));
      dev->write(region * kRegion, data);
      uint64_t off = kSize / 2 + rng() % (kSize / 2 - noise.size());
      switch (rng() % 3) {
        case 0: dev->write(off, std::span(noise.data(), 1 + rng() % noise.size())); break;
        case 1: dev->write_zeroes(off, 1 + rng() % noise.size(), rng() % 2); break;
        default: dev->discard(off, 1 + rng() % noise.size()); break;
      }
      if (op % 16 == 15) {
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

class Qcow2Crash : public ::testing::TestWithParam<std::string> {};

TEST_P(Qcow2Crash, KilledWriterLeavesARepairableConsistentImage) {
  ARCHE_REQUIRE_PROGRAM("qemu-img");
  for (int round = 0; round < 4; ++round) {
    TempDir dir;
    std::string img = dir.file("crash.qcow2"), progress = dir.file("progress");
    ASSERT_EQ(arche({"image", "create", "-f", "qcow2", "-o", GetParam(), img, std::to_string(kSize)}).exit_code, 0);
    write_file(progress, std::vector<uint8_t>(8, 0));

    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) writer(img, progress);
    // Kill only once the writer has flushed at least once (however slow the machine),
    // then at a point that moves from round to round.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(2);
    while (load_le64(read_file(progress).data()) == 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::this_thread::sleep_for(std::chrono::milliseconds(50 + 150 * round));
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the writer died on its own: status " << status;
    uint64_t flushed = load_le64(read_file(progress).data());
    ASSERT_GT(flushed, 0u) << "the writer never flushed";

    // qemu-img: no corruption (0 = clean, 3 = leaked clusters only). A lazy-refcounts
    // image carries the dirty bit and is repaired on open instead.
    bool lazy = GetParam().find("lazy") != std::string::npos;
    CommandResult check = qemu_img({"check", img});
    if (!lazy) {
      EXPECT_TRUE(check.exit_code == 0 || check.exit_code == 3) << check.out << check.err;
    }

    {
      image::OpenOptions o;
      o.writable = true;  // repairs a dirty image
      auto dev = image::open_image(img, o);
      std::vector<uint8_t> region(kRegion);
      // Every region written before the last recorded flush holds its latest pattern
      // or a later one (the writer may have gone on before the kill).
      uint64_t checked = std::min<uint64_t>(flushed, kRegions / 2);
      for (uint64_t r = 0; r < checked; ++r) {
        dev->read(r * kRegion, region);
        uint64_t last_flushed_op = ((flushed - 1 - r) / (kRegions / 2)) * (kRegions / 2) + r;
        // Unflushed later writes may be there too, even torn by the kill between pages.
        std::set<uint8_t> allowed;
        for (uint64_t op = last_flushed_op; op < last_flushed_op + 8 * (kRegions / 2); op += kRegions / 2)
          allowed.insert(pattern_for(op));
        bool ok = std::all_of(region.begin(), region.end(), [&](uint8_t b) { return allowed.count(b) > 0; });
        EXPECT_TRUE(ok) << "region " << r << " lost data flushed before the crash";
      }
      std::vector<uint8_t> all(kSize);
      dev->read(0, all);  // everything is readable
    }
    CommandResult repair = arche({"image", "check", "-r", "leaks", img});
    EXPECT_EQ(repair.exit_code, 0) << repair.out << repair.err;
    EXPECT_TRUE(qemu_check_clean(img)) << "round " << round;
  }
}

INSTANTIATE_TEST_SUITE_P(Options, Qcow2Crash,
                         ::testing::Values("cluster_size=65536", "cluster_size=4096", "lazy_refcounts=on"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& ch : n)
                             if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace arche::test
