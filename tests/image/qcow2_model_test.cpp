// Model-checked random I/O: thousands of random writes, zero writes and discards into
// a qcow2 overlay on a backing file, mirrored into an in-memory model. The image
// must equal the model at every checkpoint, across close/reopen, and pass qemu-img
// check at the end. Also concurrent writers, and writes over internal snapshots.
#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "core/file.h"
#include "core/units.h"
#include "image/format.h"
#include "tests/image/image_test_util.h"

namespace arche::test {
namespace {

std::unique_ptr<image::BlockDevice> open_rw(const std::string& path) {
  image::OpenOptions o;
  o.writable = true;
  o.cache_bytes = 64 << 10;  // a small cache forces write-back and eviction mid-run
  return image::open_image(path, o);
}

struct ModelCase {
  uint64_t cluster_size;
  int ops;
};

class Qcow2Model : public ::testing::TestWithParam<ModelCase> {};

TEST_P(Qcow2Model, RandomIoMatchesModel) {
  ARCHE_REQUIRE_PROGRAM("qemu-img");
  const uint64_t cs = GetParam().cluster_size;
  TempDir dir;
  const uint64_t base_size = 8 << 20, size = 12 << 20;
  std::vector<uint8_t> model = random_bytes(base_size, 99);
  write_file(dir.file("base.raw"), model);
  model.resize(size, 0);  // beyond the backing file the overlay reads zeros
  CommandResult c = arche({"image", "create", "-f", "qcow2", "-o", "cluster_size=" + std::to_string(cs), "-b",
                           "base.raw", "-F", "raw", dir.file("top.qcow2"), std::to_string(size)});
  ASSERT_EQ(c.exit_code, 0) << c.err;

  std::mt19937_64 rng(cs);
  auto dev = open_rw(dir.file("top.qcow2"));
  int writes = 0, zeroes = 0, discards = 0;
  for (int op = 1; op <= GetParam().ops; ++op) {
    // Mostly small requests around cluster size, sometimes large ones.
    uint64_t len = rng() % 8 == 0 ? 1 + rng() % (1 << 20) : 1 + rng() % (3 * cs);
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
      case 4: {
        dev->write_zeroes(off, len, rng() % 2);
        std::fill(model.begin() + off, model.begin() + off + len, 0);
        ++zeroes;
        break;
      }
      default: {
        // Whole clusters inside the range read as zeros; partial ones keep their data.
        dev->discard(off, len);
        uint64_t first = align_up(off, cs);
        uint64_t last = off + len == size ? align_up(size, cs) : align_down(off + len, cs);
        if (first < last) std::fill(model.begin() + first, model.begin() + std::min(last, size), 0);
        ++discards;
        break;
      }
    }
    if (op % 400 == 0) dev->flush();
    if (op % 1000 == 0) {
      ASSERT_EQ(read_all(*dev), model) << "before reopen, op " << op;
      dev.reset();
      ASSERT_TRUE(qemu_check_clean(dir.file("top.qcow2"))) << "op " << op;
      dev = open_rw(dir.file("top.qcow2"));
      ASSERT_EQ(read_all(*dev), model) << "after reopen, op " << op;
    }
  }
  dev.reset();
  EXPECT_GT(writes, 0);
  EXPECT_GT(zeroes, 0);
  EXPECT_GT(discards, 0);
  EXPECT_TRUE(qemu_check_clean(dir.file("top.qcow2")));
  write_file(dir.file("model.raw"), model);
  CommandResult cmp = qemu_img({"compare", "-F", "qcow2", "-f", "raw", dir.file("model.raw"), dir.file("top.qcow2")});
  EXPECT_EQ(cmp.exit_code, 0) << cmp.out << cmp.err;
  EXPECT_EQ(File::open(dir.file("base.raw"), OpenMode::read_only).size(), base_size) << "base must not change";
}

INSTANTIATE_TEST_SUITE_P(ClusterSizes, Qcow2Model,
                         ::testing::Values(ModelCase{512, 3000}, ModelCase{4096, 3000}, ModelCase{65536, 3000}),
                         [](const auto& info) { return "cluster" + std::to_string(info.param.cluster_size); });

TEST(Qcow2Concurrency, ParallelWritersAndReadersOnDisjointRanges) {
  ARCHE_REQUIRE_PROGRAM("qemu-img");
  TempDir dir;
  const uint64_t size = 64 << 20;
  ASSERT_EQ(arche({"image", "create", "-f", "qcow2", "-o", "cluster_size=4096", dir.file("c.qcow2"), "64M"}).exit_code, 0);
  auto dev = open_rw(dir.file("c.qcow2"));
  std::vector<uint8_t> model(size, 0);
  const int threads = 4;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      const uint64_t slice = size / threads, start = slice * t;
      for (int i = 0; i < 400; ++i) {
        uint64_t len = 1 + rng() % 20000;
        uint64_t off = start + rng() % (slice - len);
        std::vector<uint8_t> data = random_bytes(len, rng());
        if (i % 5 == 4) {
          dev->write_zeroes(off, len, true);
          std::fill(model.begin() + off, model.begin() + off + len, 0);
        } else {
          dev->write(off, data);
          std::copy(data.begin(), data.end(), model.begin() + off);
        }
        std::vector<uint8_t> back(len);
        dev->read(off, back);
        EXPECT_TRUE(std::equal(back.begin(), back.end(), model.begin() + off)) << "thread " << t << " op " << i;
        if (i % 100 == 0) dev->flush();
      }
    });
  }
  for (auto& w : workers) w.join();
  EXPECT_EQ(read_all(*dev), model);
  dev.reset();
  EXPECT_TRUE(qemu_check_clean(dir.file("c.qcow2")));
}

TEST(Qcow2Snapshots, WritesLeaveInternalSnapshotsIntact) {
  ARCHE_REQUIRE_PROGRAM("qemu-img");
  TempDir dir;
  std::string img = dir.file("s.qcow2");
  ASSERT_EQ(qemu_img({"create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", img, "4M"}).exit_code, 0);
  ASSERT_EQ(qemu_io(img, "qcow2", {"write -P 0x61 0 2M"}).exit_code, 0);
  ASSERT_EQ(qemu_img({"snapshot", "-c", "friday", img}).exit_code, 0);
  std::vector<uint8_t> friday = read_all_arche(img);

  std::vector<uint8_t> model = friday;
  {
    auto dev = open_rw(img);
    std::mt19937_64 rng(5);
    for (int i = 0; i < 300; ++i) {
      uint64_t len = 1 + rng() % 10000, off = rng() % (model.size() - len);
      if (i % 4 == 3) {
        dev->discard(off, len);
        uint64_t first = align_up(off, 4096), last = align_down(off + len, 4096);
        if (first < last) std::fill(model.begin() + first, model.begin() + last, 0);
      } else {
        std::vector<uint8_t> data = random_bytes(len, rng());
        dev->write(off, data);
        std::copy(data.begin(), data.end(), model.begin() + off);
      }
    }
  }
  EXPECT_TRUE(qemu_check_clean(img));
  EXPECT_EQ(read_all_arche(img), model);
  // The snapshot still holds Friday's data.
  CommandResult r = qemu_img({"convert", "-l", "snapshot.name=friday", "-O", "raw", img, dir.file("friday.raw")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(dir.file("friday.raw")), friday);
}

}  // namespace
}  // namespace arche::test
