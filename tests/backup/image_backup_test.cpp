// Disk images: byte-identical restores (acceptance 1), the incremental path through a
// qcow2 overlay that reads only the overlay's clusters (acceptance 6), and the lazy
// snapshot device.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "backup/snapshot.h"
#include "backup/snapshot_device.h"
#include "core/json.h"
#include "tests/backup/backup_test_util.h"

namespace arche::backup::test {
namespace {

using arche::test::arche;
using arche::test::run;

Json create_json(const std::vector<std::string>& args) {
  std::vector<std::string> all{"create"};
  all.insert(all.end(), args.begin(), args.end());
  all.push_back("--json");
  CommandResult r = backup_ok(all);
  return Json::parse(r.out.empty() ? "{}" : r.out);
}

uint64_t allocated_bytes(const std::string& path) {
  struct stat st {};
  ::stat(path.c_str(), &st);
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

// The time stamps of a layer must be older than two seconds to be trusted as unchanged
// later (image_backup.cpp): wait that out instead of faking times.
void let_settle() { std::this_thread::sleep_for(std::chrono::milliseconds(2100)); }

// Pages of `path` in the page cache.
size_t resident_pages(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  struct stat st {};
  ::fstat(fd, &st);
  const size_t size = static_cast<size_t>(st.st_size);
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> vec((size + page - 1) / page);
  ::mincore(map, size, vec.data());
  size_t n = 0;
  for (unsigned char v : vec) n += v & 1;
  ::munmap(map, size);
  ::close(fd);
  return n;
}

void drop_from_page_cache(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  ::fdatasync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

class BackupImages : public RepositoryTest {};

TEST_F(BackupImages, BenchLikeImageRestoresByteIdenticalAsRawAndQcow2) {
  ARCHE_REQUIRE_PROGRAM("qemu-img");
  const std::string disk = dir.file("disk.raw");
  make_test_image(disk);
  Json j = create_json({repo + "::one", "--image", disk});
  ASSERT_EQ(j["images"].size(), 1u);
  const Json& image = j["images"][0];
  EXPECT_EQ(image["virtual-size"], 96u << 20);
  // Only what the file system holds is read: far less than the disk.
  EXPECT_LT(image["bytes-read"].get<uint64_t>(), 40u << 20);
  EXPECT_GT(image["hole-chunks"].get<uint64_t>(), 40u);

  const std::string raw = dir.file("restored.raw");
  backup_ok({"restore", repo + "::one", "--image", "disk.raw", "--to", raw});
  EXPECT_TRUE(same_content(disk, raw));
  EXPECT_LE(allocated_bytes(raw), allocated_bytes(disk) + (1u << 20)) << "the restored raw file is sparse";

  const std::string qcow = dir.file("restored.qcow2");
  backup_ok({"restore", repo + "::one", "--image", "disk.raw", "--to", qcow, "-O", "qcow2"});
  CommandResult cmp = run({"qemu-img", "compare", "-f", "raw", "-F", "qcow2", disk, qcow});
  EXPECT_EQ(cmp.exit_code, 0) << cmp.out << cmp.err;
  EXPECT_EQ(run({"qemu-img", "check", qcow}).exit_code, 0);
  EXPECT_LT(allocated_bytes(qcow), 48u << 20) << "holes stay holes in qcow2";

  // A copy with some data changed in place stores little, and both restore exactly.
  const std::string disk2 = dir.file("disk2.raw");
  ASSERT_EQ(run({"cp", "--sparse=always", disk, disk2}).exit_code, 0);
  {
    File f = File::open(disk2, OpenMode::read_write);
    std::vector<uint8_t> change = arche::test::random_bytes(3u << 20, 77);
    f.write_all(20u << 20, change);
  }
  Json j2 = create_json({repo + "::two", "--image", disk2});
  EXPECT_LE(j2["stats"]["new-bytes"].get<uint64_t>(), (5u << 20) + (256u << 10))
      << "3 MiB changed: at most 5 chunks of 1 MiB are new";
  backup_ok({"restore", repo + "::two", "--image", "disk2.raw", "--to", dir.file("r2.raw")});
  EXPECT_TRUE(same_content(disk2, dir.file("r2.raw")));
  backup_ok({"restore", repo + "::one", "--image", "disk.raw", "--to", dir.file("r1.raw")});
  EXPECT_TRUE(same_content(disk, dir.file("r1.raw")));
  CommandResult check = backup({"check", "--read-data", repo});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
}

TEST_F(BackupImages, IncrementalOverlayReadsOnlyOverlayClustersAndRestoresEqual) {
  const std::string base = dir.file("base.raw"), overlay = dir.file("overlay.qcow2");
  write_random_file(base, 32u << 20, 11);
  let_settle();
  Json first = create_json({repo + "::base", "--image", base});
  EXPECT_EQ(first["images"][0]["bytes-read"], 32u << 20);

  ASSERT_EQ(arche({"image", "create", "-f", "qcow2", "-b", base, "-F", "raw", overlay}).exit_code, 0);
  // 64 KiB inside one 1 MiB chunk (patched onto the earlier chunk), 3 MiB covering
  // three chunks whole, and zeros over part of another.
  ASSERT_EQ(arche({"image", "write", overlay, "1M", "--pattern", "0x55", "--length", "64K"}).exit_code, 0);
  ASSERT_EQ(arche({"image", "write", overlay, "10M", "--pattern", "0x66", "--length", "3M"}).exit_code, 0);
  ASSERT_EQ(arche({"image", "write", overlay, "20M", "--zeroes", "--length", "128K"}).exit_code, 0);
  const uint64_t overlay_data = (64u << 10) + (3u << 20);

  // The counter of the proof: nothing may be read from the backing file. Its pages
  // leave the page cache, and must not come back.
  drop_from_page_cache(base);
  const size_t resident_before = resident_pages(base);
  Json inc = create_json({repo + "::incremental", "--image", overlay});
  const Json& image = inc["images"][0];
  ASSERT_FALSE(image["incremental-from"].is_null()) << inc.dump();
  ASSERT_EQ(image["bytes-read-per-layer"].size(), 2u);
  EXPECT_EQ(image["bytes-read-per-layer"][0], overlay_data) << "exactly the overlay's data clusters";
  EXPECT_EQ(image["bytes-read-per-layer"][1], 0u) << "nothing from the backing file";
  EXPECT_EQ(image["bytes-read"], overlay_data);
  EXPECT_EQ(image["patched-chunks"], 2u) << "the 64 KiB and the zeroed range are laid over earlier chunks";
  EXPECT_EQ(image["reused-chunks"], 32u - 3 - 2);
  EXPECT_LE(resident_pages(base), resident_before + 1) << "the backing file was read after all";

  // Restores equal the overlay's content (and the base still restores).
  const std::string out = dir.file("inc.raw");
  backup_ok({"restore", repo + "::incremental", "--image", "overlay.qcow2", "--to", out});
  CommandResult cmp = arche({"image", "compare", overlay, out});
  EXPECT_EQ(cmp.exit_code, 0) << cmp.out << cmp.err;
  backup_ok({"restore", repo + "::base", "--image", "base.raw", "--to", dir.file("base.out")});
  EXPECT_TRUE(same_content(base, dir.file("base.out")));

  // --no-incremental reads it all again, with the same result.
  Json full = create_json({repo + "::full", "--image", overlay, "--no-incremental"});
  EXPECT_EQ(full["images"][0]["bytes-read"], (32u << 20) - (128u << 10)) << "all but the overlay's zero clusters";
  EXPECT_EQ(full["stats"]["new-chunks"], 0u) << "the same content gives the same chunks and the same list";
}

TEST_F(BackupImages, ChangedBackingFileIsNotTrusted) {
  const std::string base = dir.file("base.raw"), overlay = dir.file("ov.qcow2");
  write_random_file(base, 8u << 20, 12);
  let_settle();
  create_json({repo + "::base", "--image", base});
  ASSERT_EQ(arche({"image", "create", "-f", "qcow2", "-b", base, "-F", "raw", overlay}).exit_code, 0);
  // The base changes after its backup (it should not, but someone did it): the
  // earlier chunks do not describe it any more, so everything is read.
  {
    File f = File::open(base, OpenMode::read_write);
    std::vector<uint8_t> x(4096, 0xee);
    f.write_all(5u << 20, x);
  }
  Json j = create_json({repo + "::after", "--image", overlay});
  EXPECT_TRUE(j["images"][0]["incremental-from"].is_null());
  EXPECT_EQ(j["images"][0]["bytes-read"], 8u << 20);
  backup_ok({"restore", repo + "::after", "--image", "ov.qcow2", "--to", dir.file("out.raw")});
  EXPECT_EQ(arche({"image", "compare", overlay, dir.file("out.raw")}).exit_code, 0);
}

TEST_F(BackupImages, UnchangedImageIsTakenFromTheEarlierSnapshot) {
  const std::string disk = dir.file("same.raw");
  write_random_file(disk, 5u << 20, 13);
  let_settle();
  create_json({repo + "::a", "--image", disk});
  Json b = create_json({repo + "::b", "--image", disk});
  EXPECT_EQ(b["images"][0]["bytes-read"], 0u);
  EXPECT_EQ(b["images"][0]["reused-chunks"], 5u);
  backup_ok({"restore", repo + "::b", "--image", "same.raw", "--to", dir.file("o.raw")});
  EXPECT_TRUE(same_content(disk, dir.file("o.raw")));
}

TEST_F(BackupImages, UnalignedSizeAndAllZeroImagesRoundTrip) {
  const std::string odd = dir.file("odd.raw"), zero = dir.file("zero.raw");
  write_random_file(odd, (3u << 20) + 12345, 14);
  { File f = File::open(zero, OpenMode::create_new); f.truncate(10u << 20); }
  Json j = create_json({repo + "::x", "--image", odd, "--image", zero});
  EXPECT_EQ(j["images"][1]["bytes-read"], 0u) << "a sparse file with nothing allocated is not read";
  EXPECT_EQ(j["images"][1]["hole-chunks"], 10u);
  backup_ok({"restore", repo + "::x", "--image", "odd.raw", "--to", dir.file("odd.out")});
  backup_ok({"restore", repo + "::x", "--image", "zero.raw", "--to", dir.file("zero.out")});
  EXPECT_TRUE(same_content(odd, dir.file("odd.out")));
  EXPECT_TRUE(same_content(zero, dir.file("zero.out")));
  EXPECT_EQ(allocated_bytes(dir.file("zero.out")), 0u);
}

TEST_F(BackupImages, RestoreTellsWhatIsWrong) {
  const std::string disk = dir.file("d.raw");
  write_random_file(disk, 1u << 20, 15);
  create_json({repo + "::s", "--image", disk});
  CommandResult r = backup({"restore", repo + "::s", "--image", "nope.raw", "--to", dir.file("o")});
  EXPECT_EQ(r.exit_code, 66);
  EXPECT_NE(r.err.find("d.raw"), std::string::npos) << "names the images it has: " << r.err;
  backup_ok({"restore", repo + "::s", "--image", "d.raw", "--to", dir.file("o")});
  r = backup({"restore", repo + "::s", "--image", "d.raw", "--to", dir.file("o")});
  EXPECT_EQ(r.exit_code, 73) << "an existing file is not overwritten silently";
  backup_ok({"restore", repo + "::s", "--image", "d.raw", "--to", dir.file("o"), "--overwrite"});
  r = backup({"restore", repo + "::nothing", "--image", "d.raw", "--to", dir.file("p")});
  EXPECT_EQ(r.exit_code, 66);
}

TEST_F(BackupImages, RestoreOntoABlockDevice) {
  ARCHE_SKIP_UNLESS_ROOT();
  ARCHE_REQUIRE_PROGRAM("losetup");
  const std::string disk = dir.file("d.raw"), backing = dir.file("device.img");
  write_random_file(disk, 6u << 20, 16);
  { File f = File::open(disk, OpenMode::read_write); f.punch_hole(1u << 20, 2u << 20); }
  create_json({repo + "::s", "--image", disk});
  write_random_file(backing, 8u << 20, 17);  // old content that must not survive
  CommandResult lo = run({"losetup", "-f", "--show", backing});
  ASSERT_EQ(lo.exit_code, 0) << lo.err;
  std::string device = lo.out.substr(0, lo.out.find('\n'));
  CommandResult refused = backup({"restore", repo + "::s", "--image", "d.raw", "--to", device});
  EXPECT_EQ(refused.exit_code, 73) << "a block device needs --overwrite";
  CommandResult r = backup({"restore", repo + "::s", "--image", "d.raw", "--to", device, "--overwrite"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  CommandResult cmp = run({"cmp", "-n", std::to_string(6u << 20), disk, device});
  EXPECT_EQ(cmp.exit_code, 0) << "the hole must read as zeros on the device too: " << cmp.out;
  run({"losetup", "-d", device});
}

TEST_F(BackupImages, SnapshotDeviceReadsOnlyTheChunksItTouches) {
  const std::string disk = dir.file("big.raw");
  write_random_file(disk, 16u << 20, 18);
  create_json({repo + "::s", "--image", disk});
  auto r = open_repo(repo);
  r->load_index(false);
  std::vector<Snapshot> all = load_snapshots(*r);
  ASSERT_EQ(all.size(), 1u);
  SnapshotImageDevice dev(*r, all[0], all[0].images[0]);
  EXPECT_EQ(dev.size(), 16u << 20);
  std::vector<uint8_t> got(4096);
  dev.read((9u << 20) + 100, got);
  EXPECT_EQ(dev.chunks_fetched(), 1u) << "one 4 KiB read fetches one chunk of the 16";
  std::vector<uint8_t> want(4096);
  File::open(disk, OpenMode::read_only).read_exact((9u << 20) + 100, want);
  EXPECT_EQ(got, want);
  dev.read((9u << 20) + 8000, got);
  EXPECT_EQ(dev.chunks_fetched(), 1u) << "the same chunk again comes from the cache";
  EXPECT_EQ(dev.map().size(), 1u);
}

}  // namespace
}  // namespace arche::backup::test
