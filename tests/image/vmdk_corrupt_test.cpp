// Damaged VMDKs: cut files, garbage descriptors, directory and table offsets
// outside the file, absurd grain sizes, descriptor and parent loops. Each is one
// clear error and a non-zero exit, never a crash; check finds inconsistencies.
#include <gtest/gtest.h>

#include <boost/filesystem.hpp>

#include "core/endian.h"
#include "core/file.h"
#include "core/json.h"
#include "tests/image/vmdk_test_util.h"

namespace arche::test {
namespace {

// Header field offsets of a sparse extent (VMware Virtual Disk Format 1.1).
constexpr uint64_t kGrainSize = 20, kGtesPerGt = 44, kRgdOffset = 48, kGdOffset = 56, kCapacity = 12;

class Damaged : public ::testing::Test {
 protected:
  void SetUp() override {
    ARCHE_REQUIRE_PROGRAM("qemu-img");
    src_ = dir_.file("src.raw");
    make_source(src_, 16 << 20);
    sparse_ = dir_.file("d.vmdk");
    must({"qemu-img", "convert", "-O", "vmdk", src_, sparse_});
    stream_ = dir_.file("s.vmdk");
    must({"qemu-img", "convert", "-O", "vmdk", "-o", "subformat=streamOptimized", src_, dir_.file("q.vmdk")});
    ASSERT_EQ(arche({"image", "convert", "-O", "vmdk", "-o", "subformat=streamOptimized", src_, stream_}).exit_code, 0);
  }
  uint64_t header_u64(const std::string& f, uint64_t at) {
    uint8_t b[8];
    File::open(f, OpenMode::read_only).read_exact(at, b);
    return load_le64(b);
  }
  // Reading everything (convert to raw) must fail cleanly and leave no output.
  void expect_read_fails(const std::string& f, const std::string& words) {
    CommandResult r = arche({"image", "convert", "-O", "raw", f, dir_.file("out.raw")});
    EXPECT_ONE_CLEAR_ERROR(r);
    EXPECT_NE(r.err.find(words), std::string::npos) << r.err;
    EXPECT_FALSE(boost::filesystem::exists(dir_.file("out.raw")));
  }
  TempDir dir_;
  std::string src_, sparse_, stream_;
};

TEST_F(Damaged, CutSparseFile) {
  const uint64_t size = boost::filesystem::file_size(sparse_);
  boost::filesystem::resize_file(sparse_, size / 2);
  expect_read_fails(sparse_, "outside the file");
  boost::filesystem::resize_file(sparse_, 4096);  // inside the descriptor
  expect_read_fails(sparse_, "outside the file");
  boost::filesystem::resize_file(sparse_, 300);  // inside the header
  expect_read_fails(sparse_, "truncated");
}

TEST_F(Damaged, CutStream) {
  for (const std::string& f : {stream_, dir_.file("q.vmdk")}) {
    const uint64_t size = boost::filesystem::file_size(f);
    boost::filesystem::resize_file(f, size - 70000);  // QEMU pads its streams by up to a grain
    CommandResult r = arche({"image", "convert", "-O", "raw", f, dir_.file("out.raw")});
    EXPECT_ONE_CLEAR_ERROR(r);
    EXPECT_FALSE(boost::filesystem::exists(dir_.file("out.raw")));
  }
  expect_read_fails(stream_, "footer");
}

TEST_F(Damaged, DirectoryOutsideTheFile) {
  patch(sparse_, kGdOffset, le64(1ull << 40));
  expect_read_fails(sparse_, "grain directory");
  CommandResult c = arche({"image", "check", sparse_});
  EXPECT_EQ(c.exit_code, 2) << c.out << c.err;
}

TEST_F(Damaged, GrainTableOutsideTheFile) {
  const uint64_t gd = header_u64(sparse_, kGdOffset) * 512;
  patch(sparse_, gd, le32(0x7fffff00));
  expect_read_fails(sparse_, "grain table");
  CommandResult c = arche({"image", "check", sparse_});
  EXPECT_EQ(c.exit_code, 2) << c.out << c.err;
  EXPECT_NE(c.out.find("outside the file"), std::string::npos) << c.out;
}

TEST_F(Damaged, AbsurdGrainSizes) {
  for (uint64_t grain : {uint64_t{0}, uint64_t{3}, uint64_t{1} << 40, uint64_t{1} << 20}) {
    ASSERT_EQ(arche({"image", "convert", "-O", "vmdk", "--overwrite", src_, sparse_}).exit_code, 0);
    patch(sparse_, kGrainSize, le64(grain));
    CommandResult r = arche({"image", "info", sparse_});
    EXPECT_ONE_CLEAR_ERROR(r);
    EXPECT_NE(r.err.find("grain size"), std::string::npos) << r.err;
  }
  patch(sparse_, kGrainSize, le64(128));
  patch(sparse_, kGtesPerGt, le32(0));
  EXPECT_ONE_CLEAR_ERROR(arche({"image", "info", sparse_}));
  patch(sparse_, kGtesPerGt, le32(512));
  patch(sparse_, kCapacity, le64(1ull << 50));
  EXPECT_ONE_CLEAR_ERROR(arche({"image", "info", sparse_}));
}

TEST_F(Damaged, GarbageDescriptors) {
  must({"qemu-img", "create", "-q", "-f", "vmdk", "-o", "subformat=monolithicFlat", dir_.file("f.vmdk"), "1M"});
  const std::string desc = dir_.file("f.vmdk");
  const std::vector<std::string> bad = {
      "# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicFlat\"\nRW nonsense FLAT \"f-flat.vmdk\" 0\n",
      "# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicFlat\"\nRW 2048 FLAT \"f-flat.vmdk\n",
      "# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicFlat\"\nRW 2048 WEIRD \"f-flat.vmdk\" 0\n",
      "# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicFlat\"\n",
      "# Disk DescriptorFile\nversion=9\ncreateType=\"monolithicFlat\"\nRW 2048 FLAT \"f-flat.vmdk\" 0\n",
      "version=1\nCID=zzzz\ncreateType=\"x\"\nRW 2048 FLAT \"f-flat.vmdk\" 0\n",
      "version=1\ncreateType=\"monolithicFlat\"\nRW 99999999 FLAT \"f-flat.vmdk\" 0\n",  // beyond the flat file
      "version=1\ncreateType=\"monolithicFlat\"\nRW 2048 FLAT \"missing-flat.vmdk\" 0\n",
      "version=1\ncreateType=\"vmfsSparse\"\nRW 2048 VMFSSPARSE \"f-flat.vmdk\"\n",
      "version=1\nthis line means nothing\n",
  };
  for (const std::string& text : bad) {
    write_file(desc, std::vector<uint8_t>(text.begin(), text.end()));
    CommandResult r = arche({"image", "info", "-f", "vmdk", desc});
    EXPECT_ONE_CLEAR_ERROR(r);
  }
  // Binary garbage is not taken for a VMDK.
  write_file(desc, random_bytes(3000, 9));
  EXPECT_ONE_CLEAR_ERROR(arche({"image", "info", "-f", "vmdk", desc}));
}

TEST_F(Damaged, DescriptorLoops) {
  const std::string a = dir_.file("a.vmdk"), b = dir_.file("b.vmdk");
  std::string self = "version=1\ncreateType=\"monolithicFlat\"\nRW 2048 FLAT \"a.vmdk\" 0\n";
  write_file(a, std::vector<uint8_t>(self.begin(), self.end()));
  CommandResult r = arche({"image", "info", a});
  EXPECT_ONE_CLEAR_ERROR(r);
  EXPECT_NE(r.err.find("loop"), std::string::npos) << r.err;
  // a names b as a sparse extent, b is a descriptor naming a.
  std::string ta = "version=1\ncreateType=\"twoGbMaxExtentSparse\"\nRW 2048 SPARSE \"b.vmdk\"\n";
  std::string tb = "version=1\ncreateType=\"twoGbMaxExtentSparse\"\nRW 2048 SPARSE \"a.vmdk\"\n";
  write_file(a, std::vector<uint8_t>(ta.begin(), ta.end()));
  write_file(b, std::vector<uint8_t>(tb.begin(), tb.end()));
  r = arche({"image", "info", a});
  EXPECT_ONE_CLEAR_ERROR(r);
  EXPECT_NE(r.err.find("descriptor"), std::string::npos) << r.err;
}

TEST_F(Damaged, ParentLoop) {
  const std::string c1 = dir_.file("c1.vmdk"), c2 = dir_.file("c2.vmdk");
  boost::filesystem::copy_file(sparse_, dir_.file("b1.vmdk"));
  ASSERT_EQ(arche({"image", "create", "-f", "vmdk", "-b", "b1.vmdk", c1}).exit_code, 0);
  ASSERT_EQ(arche({"image", "create", "-f", "vmdk", "-b", "c1.vmdk", c2}).exit_code, 0);
  // Point c1's parent hint at c2 (a name of the same length): c2 -> c1 -> c2 -> ...
  std::vector<uint8_t> bytes = read_file(c1);
  std::string text(reinterpret_cast<const char*>(bytes.data()) + 512, 10240);
  size_t at = text.find("parentFileNameHint=\"b1.vmdk\"");
  ASSERT_NE(at, std::string::npos);
  patch(c1, 512 + at, {'p', 'a', 'r', 'e', 'n', 't', 'F', 'i', 'l', 'e', 'N', 'a', 'm', 'e', 'H', 'i', 'n', 't', '=', '"',
                      'c', '2', '.', 'v', 'm', 'd', 'k', '"'});
  for (const std::string& f : {c1, c2}) {
    CommandResult r = arche({"image", "info", "--backing-chain", f});
    EXPECT_ONE_CLEAR_ERROR(r);
    EXPECT_NE(r.err.find("loop"), std::string::npos) << r.err;
  }
}

TEST_F(Damaged, CheckFindsRedundantTableMismatchAndSharedGrains) {
  const uint64_t gd = header_u64(sparse_, kGdOffset) * 512, rgd = header_u64(sparse_, kRgdOffset) * 512;
  uint8_t e[4];
  File::open(sparse_, OpenMode::read_only).read_exact(gd, e);
  const uint64_t gt = uint64_t{load_le32(e)} * 512;
  File::open(sparse_, OpenMode::read_only).read_exact(rgd, e);
  const uint64_t rgt = uint64_t{load_le32(e)} * 512;
  // Grain 16 (1 MiB) holds data; make grain 17 point at the same grain, in both copies.
  uint8_t g16[4];
  File::open(sparse_, OpenMode::read_only).read_exact(gt + 16 * 4, g16);
  ASSERT_NE(load_le32(g16), 0u);
  patch(sparse_, gt + 17 * 4, {g16[0], g16[1], g16[2], g16[3]});
  patch(sparse_, rgt + 17 * 4, {g16[0], g16[1], g16[2], g16[3]});
  CommandResult c = arche({"image", "check", "--json", sparse_});
  EXPECT_EQ(c.exit_code, 2) << c.out << c.err;
  EXPECT_NE(c.out.find("overlaps"), std::string::npos) << c.out;
  // Now let the redundant copy disagree.
  patch(sparse_, rgt + 17 * 4, le32(0));
  c = arche({"image", "check", sparse_});
  EXPECT_EQ(c.exit_code, 2);
  EXPECT_NE(c.out.find("redundant copy differ"), std::string::npos) << c.out;
  // Repair is not offered for VMDK.
  EXPECT_ONE_CLEAR_ERROR(arche({"image", "check", "-r", "all", sparse_}));
}

TEST_F(Damaged, CorruptCompressedGrain) {
  // Overwrite the middle of the stream (compressed grains) with garbage.
  const uint64_t size = boost::filesystem::file_size(stream_);
  patch(stream_, 65536 + 12, random_bytes(4096, 4));
  (void)size;
  expect_read_fails(stream_, "grain");
  // A grain marker whose LBA disagrees with the grain table.
  ASSERT_EQ(arche({"image", "convert", "-O", "vmdk", "--overwrite", "-o", "subformat=streamOptimized", src_, stream_})
                .exit_code,
            0);
  patch(stream_, 65536, le64(12345678));
  expect_read_fails(stream_, "grain marker");
}

}  // namespace
}  // namespace arche::test
