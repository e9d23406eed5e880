// The virtual tape plays the st driver: capacity with an early-warning zone (one
// ENOSPC, then writes until the end), filemarks, end of data, write protection and
// injected read errors — the semantics the drive layer relies on.
#include <fcntl.h>
#include <sys/stat.h>

#include <fstream>

#include <gtest/gtest.h>

#include "core/error.h"
#include "tape/drive.h"
#include "tape/vtape.h"
#include "tests/common/test_util.h"

namespace arche::tape {
namespace {

using arche::test::TempDir;

mtop op(short code, int count) {
  mtop o{};
  o.mt_op = code;
  o.mt_count = count;
  return o;
}

TEST(VirtualTape, EarlyWarningThenOneEnospcThenWritesUntilTheEnd) {
  TempDir dir;
  const std::string path = dir.file("t.vtape");
  // 10 blocks of 1000 + 8 bytes fit; the zone is the last 4000 bytes.
  create_cartridge(path, {10 * 1008, 4000});
  VirtualTape v;
  const int fd = v.open(path, O_RDWR);
  ASSERT_GE(fd, 0);
  std::vector<uint8_t> block(1000, 7);
  mtget s{};
  int n = 0;
  // Six blocks (6048 bytes) stay before the zone; the seventh enters it and succeeds.
  for (; n < 7; ++n) ASSERT_EQ(v.write(fd, block.data(), block.size()), 1000) << n;
  ASSERT_EQ(v.mt_status(fd, s), 0);
  EXPECT_TRUE(GMT_EOT(s.mt_gstat));
  EXPECT_EQ(v.write(fd, block.data(), block.size()), -ENOSPC);  // once, nothing written
  EXPECT_EQ(v.mt_op(fd, op(MTWEOF, 1)), 0);                     // filemarks may be written in the zone
  // Then writes go through (8 bytes of filemark used one slot's header) until the capacity.
  EXPECT_EQ(v.write(fd, block.data(), block.size()), 1000);
  EXPECT_EQ(v.write(fd, block.data(), block.size()), 1000);
  EXPECT_EQ(v.write(fd, block.data(), block.size()), -ENOSPC);  // the physical end
  EXPECT_EQ(v.write(fd, block.data(), block.size()), -ENOSPC);
  v.close(fd);
}

TEST(VirtualTape, FilemarksEndOfDataAndPositioning) {
  TempDir dir;
  const std::string path = dir.file("t.vtape");
  create_cartridge(path, {1 << 20, 1 << 16});
  VirtualTape v;
  int fd = v.open(path, O_RDWR);
  std::vector<uint8_t> a(100, 'a'), b(200, 'b');
  ASSERT_EQ(v.write(fd, a.data(), a.size()), 100);
  ASSERT_EQ(v.mt_op(fd, op(MTWEOF, 1)), 0);
  ASSERT_EQ(v.write(fd, b.data(), b.size()), 200);
  ASSERT_EQ(v.write(fd, b.data(), b.size()), 200);
  ASSERT_EQ(v.mt_op(fd, op(MTWEOF, 1)), 0);
  v.close(fd);

  fd = v.open(path, O_RDONLY);
  std::vector<uint8_t> buf(4096);
  mtget s{};
  v.mt_status(fd, s);
  EXPECT_TRUE(GMT_BOT(s.mt_gstat));
  EXPECT_EQ(v.read(fd, buf.data(), buf.size()), 100);
  EXPECT_EQ(v.read(fd, buf.data(), buf.size()), 0);  // filemark
  v.mt_status(fd, s);
  EXPECT_EQ(s.mt_fileno, 1);
  EXPECT_FALSE(GMT_EOD(s.mt_gstat));
  EXPECT_EQ(v.read(fd, buf.data(), 50), -ENOMEM);  // larger than the buffer
  EXPECT_EQ(v.read(fd, buf.data(), buf.size()), 200);
  EXPECT_EQ(v.read(fd, buf.data(), buf.size()), 0);  // filemark at the end
  EXPECT_EQ(v.read(fd, buf.data(), buf.size()), 0);  // end of data
  v.mt_status(fd, s);
  EXPECT_TRUE(GMT_EOD(s.mt_gstat));
  EXPECT_EQ(v.mt_op(fd, op(MTREW, 1)), 0);
  EXPECT_EQ(v.mt_op(fd, op(MTFSF, 1)), 0);
  v.mt_status(fd, s);
  EXPECT_EQ(s.mt_fileno, 1);
  EXPECT_EQ(s.mt_blkno, 0);
  EXPECT_EQ(v.mt_op(fd, op(MTFSF, 2)), -EIO);  // only one more filemark
  EXPECT_EQ(v.mt_op(fd, op(MTEOM, 1)), 0);
  v.mt_status(fd, s);
  EXPECT_EQ(s.mt_fileno, 2);
  EXPECT_EQ(v.mt_op(fd, op(MTBSF, 1)), 0);  // before the last filemark
  EXPECT_EQ(v.read(fd, buf.data(), buf.size()), 0);
  v.close(fd);

  // Writing after file 1 drops file 2, as on a tape.
  fd = v.open(path, O_RDWR);
  v.mt_op(fd, op(MTFSF, 1));
  ASSERT_EQ(v.write(fd, a.data(), 10), 10);
  v.mt_op(fd, op(MTWEOF, 1));
  v.mt_op(fd, op(MTREW, 1));
  v.mt_op(fd, op(MTFSF, 1));
  EXPECT_EQ(v.read(fd, buf.data(), buf.size()), 10);
  EXPECT_EQ(v.read(fd, buf.data(), buf.size()), 0);
  EXPECT_EQ(v.read(fd, buf.data(), buf.size()), 0);
  v.mt_status(fd, s);
  EXPECT_TRUE(GMT_EOD(s.mt_gstat));
  v.close(fd);
}

TEST(VirtualTape, WriteProtectionHoldsEvenForRoot) {
  TempDir dir;
  const std::string path = dir.file("t.vtape");
  create_cartridge(path, {1 << 20, 1 << 16});
  ASSERT_EQ(::chmod(path.c_str(), 0444), 0);
  VirtualTape v;
  EXPECT_EQ(v.open(path, O_RDWR | O_NONBLOCK), -EROFS);
  auto shared = std::make_shared<VirtualTape>();
  try {
    TapeDrive d(shared, path, true);
    FAIL() << "wrote to a protected cartridge";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::permission);
  }
  const int fd = v.open(path, O_RDONLY);
  ASSERT_GE(fd, 0);
  mtget s{};
  v.mt_status(fd, s);
  EXPECT_TRUE(GMT_WR_PROT(s.mt_gstat));
  v.close(fd);
}

TEST(VirtualTape, InjectedReadErrorsFailThatRecordOnly) {
  TempDir dir;
  const std::string path = dir.file("t.vtape");
  create_cartridge(path, {1 << 20, 1 << 16});
  VirtualTape v;
  int fd = v.open(path, O_RDWR);
  std::vector<uint8_t> a(100, 'a');
  v.write(fd, a.data(), a.size());
  v.mt_op(fd, op(MTWEOF, 1));
  for (int i = 0; i < 3; ++i) v.write(fd, a.data(), a.size());
  v.close(fd);
  std::ofstream(path + ".read-errors") << "2 1\n";  // file 2, its second record
  fd = v.open(path, O_RDONLY);
  std::vector<uint8_t> buf(4096);
  v.mt_op(fd, op(MTFSF, 1));
  EXPECT_EQ(v.read(fd, buf.data(), buf.size()), 100);
  EXPECT_EQ(v.read(fd, buf.data(), buf.size()), -EIO);
  EXPECT_EQ(v.read(fd, buf.data(), buf.size()), 100);  // past the bad block
  v.close(fd);
}

TEST(VirtualTape, DriveReportsEarlyWarningToItsWriter) {
  TempDir dir;
  const std::string path = dir.file("t.vtape");
  create_cartridge(path, {10 * 1008, 4000});
  TapeDrive d(std::make_shared<VirtualTape>(), path, true);
  std::vector<uint8_t> block(1000);
  for (int i = 0; i < 7; ++i) EXPECT_FALSE(d.write_record(block)) << i;  // the 7th enters the zone silently
  EXPECT_TRUE(d.write_record(block));                                    // the ENOSPC, retried: written, and said
  EXPECT_TRUE(d.status().early_warning);
  EXPECT_TRUE(d.write_record(block));
  EXPECT_TRUE(d.write_record(block));          // exactly at the capacity
  EXPECT_THROW(d.write_record(block), Error);  // the end
}

}  // namespace
}  // namespace arche::tape
