#include "core/file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "core/error.h"
#include "tests/common/test_util.h"

namespace arche {
namespace {

TEST(File, ReadPastEndIsATruncationError) {
  test::TempDir dir;
  test::write_file(dir.file("f"), std::vector<uint8_t>(100, 7));
  File f = File::open(dir.file("f"), OpenMode::read_only);
  std::vector<uint8_t> buf(50);
  f.read_exact(50, buf);
  EXPECT_EQ(buf[49], 7);
  try {
    f.read_exact(60, buf);
    FAIL() << "read past end";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::format);
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos);
  }
  EXPECT_EQ(f.read_some(60, buf), 40u);
}

TEST(File, MissingFileIsNotFound) {
  try {
    File::open("/nonexistent/arche", OpenMode::read_only);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::not_found);
  }
}

TEST(File, HolesAreSeenAndPunched) {
  test::TempDir dir;
  File f = File::open(dir.file("sparse"), OpenMode::create_new);
  f.truncate(16 << 20);
  std::vector<uint8_t> data(1 << 20, 1);
  f.write_all(8 << 20, data);
  ASSERT_TRUE(f.seek_data(0).has_value());
  EXPECT_EQ(*f.seek_data(0), 8u << 20);
  EXPECT_EQ(*f.seek_hole(8 << 20), 9u << 20);
  EXPECT_TRUE(f.punch_hole(8 << 20, 1 << 20));
  EXPECT_EQ(*f.seek_data(0), 16u << 20);  // no data left: end of file
  std::vector<uint8_t> back(4096, 9);
  f.read_exact(8 << 20, back);
  EXPECT_EQ(back, std::vector<uint8_t>(4096, 0));
}

TEST(File, ByteLocksAreSeenByOtherOpensNotByTheirOwn) {
  test::TempDir dir;
  test::write_file(dir.file("img"), std::vector<uint8_t>(10, 0));
  File first = File::open(dir.file("img"), OpenMode::read_write);
  File second = File::open(dir.file("img"), OpenMode::read_only);
  EXPECT_FALSE(second.byte_locked_by_other(101));
  ASSERT_TRUE(first.lock_byte_shared(101));  // a byte far beyond the end of the file is fine
  EXPECT_FALSE(first.byte_locked_by_other(101)) << "an open file never conflicts with itself";
  EXPECT_TRUE(second.byte_locked_by_other(101));
  EXPECT_FALSE(second.byte_locked_by_other(102));
  EXPECT_TRUE(second.lock_byte_shared(101)) << "shared locks coexist";
  first.unlock_byte(101);
  EXPECT_TRUE(first.byte_locked_by_other(101)) << "the second open still holds its lock";
  second = File();  // closing drops its locks
  EXPECT_FALSE(first.byte_locked_by_other(101));
}

TEST(PendingFile, AppearsOnlyWhenCommitted) {
  test::TempDir dir;
  std::string target = dir.file("out.img");
  {
    PendingFile p(target, false);
    test::write_file(p.temp_path(), {1, 2, 3});
    EXPECT_NE(::access(p.temp_path().c_str(), F_OK), -1);
    EXPECT_EQ(::access(target.c_str(), F_OK), -1);
  }  // abandoned: temp removed, nothing at the target
  EXPECT_EQ(::access(target.c_str(), F_OK), -1);
  {
    PendingFile p(target, false);
    test::write_file(p.temp_path(), {1, 2, 3});
    p.commit(true);
  }
  EXPECT_EQ(test::read_file(target), (std::vector<uint8_t>{1, 2, 3}));
  try {
    PendingFile again(target, false);
    FAIL() << "would overwrite";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::exists);
  }
  PendingFile replace(target, true);
  test::write_file(replace.temp_path(), {9});
  replace.commit(false);
  EXPECT_EQ(test::read_file(target), (std::vector<uint8_t>{9}));
}

TEST(WriteFileAtomic, ReplacesContent) {
  test::TempDir dir;
  std::vector<uint8_t> a(1000, 1), b(10, 2);
  write_file_atomic(dir.file("cfg"), a);
  write_file_atomic(dir.file("cfg"), b);
  EXPECT_EQ(test::read_file(dir.file("cfg")), b);
}

}  // namespace
}  // namespace arche
