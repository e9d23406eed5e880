// The lazy snapshot device (backup/snapshot_device.h): what it fetches, what it
// counts, that cache hits share buffers, that concurrent readers get the right
// bytes, and that a sequential reader makes it read ahead.
#include <gtest/gtest.h>

#include <thread>

#include "backup/snapshot_device.h"
#include "core/file.h"
#include "tests/backup/backup_test_util.h"

namespace arche::backup::test {
namespace {

class SnapshotDevice : public RepositoryTest {
 protected:
  // A 24 MiB random image with a 3 MiB hole at 8 MiB, backed up.
  void SetUp() override {
    RepositoryTest::SetUp();
    disk = dir.file("disk.raw");
    write_random_file(disk, 24u << 20, 7);
    {
      File f = File::open(disk, OpenMode::read_write);
      std::vector<uint8_t> zeros(3u << 20, 0);
      f.write_all(8u << 20, zeros);
    }

    backup_ok({"create", repo + "::s", "--image", disk});
    r = open_repo(repo);
    r->load_index(false);
    snapshots = load_snapshots(*r);
    ASSERT_EQ(snapshots.size(), 1u);
  }
  std::unique_ptr<SnapshotImageDevice> device(SnapshotDeviceOptions o = {}) {
    return std::make_unique<SnapshotImageDevice>(*r, snapshots[0], snapshots[0].images[0], o);
  }
  std::vector<uint8_t> host(uint64_t offset, size_t n) {
    std::vector<uint8_t> b(n);
    File::open(disk, OpenMode::read_only).read_exact(offset, b);
    return b;
  }
  uint64_t pack_bytes() {
    uint64_t n = 0;
    for (const PackObject& p : r->list_packs()) n += p.size;
    return n;
  }
  std::string disk;
  std::unique_ptr<Repository> r;
  std::vector<Snapshot> snapshots;
};

TEST_F(SnapshotDevice, CountsTheChunksAndBytesItReads) {
  auto dev = device({.max_read_ahead = 0});
  std::vector<uint8_t> got(4096);
  dev->read((5u << 20) + 100, got);
  EXPECT_EQ(got, host((5u << 20) + 100, 4096));
  EXPECT_EQ(dev->chunks_fetched(), 1u);
  // One chunk of random data (1 MiB, incompressible) and the chunk list.
  EXPECT_GT(dev->bytes_fetched(), 1u << 20);
  EXPECT_LT(dev->bytes_fetched(), (1u << 20) + (256u << 10));
  const uint64_t after_one = dev->bytes_fetched();
  dev->read((5u << 20) + 9000, got);
  EXPECT_EQ(dev->bytes_fetched(), after_one) << "a cache hit reads nothing";
  dev->read(9u << 20, got);  // in the hole
  EXPECT_EQ(got, std::vector<uint8_t>(4096, 0));
  EXPECT_EQ(dev->bytes_fetched(), after_one) << "a hole reads nothing";
  EXPECT_LT(dev->bytes_fetched() * 10, pack_bytes());
}

TEST_F(SnapshotDevice, ReadsAcrossChunksAndTheEnd) {
  auto dev = device();
  std::vector<uint8_t> got((2u << 20) + 1000);
  dev->read((7u << 20) - 500, got);  // data, then the hole, then data
  EXPECT_EQ(got, host((7u << 20) - 500, got.size()));
  std::vector<uint8_t> tail(777);
  dev->read((24u << 20) - 777, tail);
  EXPECT_EQ(tail, host((24u << 20) - 777, 777));
  std::vector<uint8_t> past(10);
  EXPECT_THROW(dev->read((24u << 20) - 5, past), Error);
  EXPECT_THROW(dev->write(0, tail), Error);
}

TEST_F(SnapshotDevice, CacheKeepsOnlyWhatItMayAndRefetchesTheRest) {
  auto dev = device({.cached_chunks = 2, .max_read_ahead = 0});
  std::vector<uint8_t> got(512);
  for (uint64_t c : {0, 1, 2, 0}) dev->read(c << 20, got);
  EXPECT_EQ(dev->chunks_fetched(), 4u) << "chunk 0 was dropped for chunk 2 and read again";
  dev->read(2u << 20, got);
  EXPECT_EQ(dev->chunks_fetched(), 4u);
}

TEST_F(SnapshotDevice, SequentialReaderMakesItReadAhead) {
  auto dev = device({.max_read_ahead = 4});
  std::vector<uint8_t> got(256u << 10);
  // Sequential 256 KiB reads from chunk 12 on: entering chunk 13 queues 14 (a
  // window of 1), entering 14 queues 15-16 (2), entering 15 queues 17-19 (4).
  uint64_t pos = 12u << 20;
  auto read_on = [&](int reads) {
    for (int i = 0; i < reads; ++i, pos += got.size()) {
      dev->read(pos, got);
      EXPECT_EQ(got, host(pos, got.size()));
    }
    dev->settle_read_ahead();
  };
  read_on(8);  // chunks 12 and 13
  EXPECT_EQ(dev->chunks_fetched(), 3u) << "12 and 13 read, 14 read ahead";
  read_on(8);  // chunks 14 and 15
  EXPECT_EQ(dev->chunks_fetched(), 8u) << "12..15 read, 16..19 read ahead";
  read_on(16);  // 16..19 come from the cache; the window stays at 4, up to the end (23)
  EXPECT_EQ(dev->chunks_fetched(), 12u);

  // Random reads never read ahead.
  auto random = device({.max_read_ahead = 4});
  for (uint64_t c : {3, 20, 1, 17, 5}) random->read(c << 20, got);
  random->settle_read_ahead();
  EXPECT_EQ(random->chunks_fetched(), 5u);
}

TEST_F(SnapshotDevice, ConcurrentReadersGetTheirOwnBytes) {
  auto dev = device({.cached_chunks = 3});
  const std::vector<uint8_t> whole = host(0, 24u << 20);
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      std::vector<uint8_t> got(70000);
      for (int i = 0; i < 60; ++i) {
        const uint64_t off = (uint64_t(i * 7 + t * 13) % 23) * (1u << 20) + uint64_t(t) * 4099;
        dev->read(off, got);
        if (!std::equal(got.begin(), got.end(), whole.begin() + off)) ++wrong;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace arche::backup::test
