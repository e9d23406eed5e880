// The FAT reader against FAT12, FAT16 and FAT32 images that dosfstools' mkfs.vfat
// makes and mtools fills (the vfat kernel module is absent here): every file read
// back byte-identical with size, mode and mtime, listings equal to what was put
// in, and the used ranges alone enough for fsck.vfat and mtools (the P2V property).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <utime.h>

#include <boost/filesystem.hpp>
#include <fstream>

#include "core/error.h"
#include "core/file.h"
#include "tests/volume/fat_xfs_test_util.h"
#include "volume/fat_format.h"
#include "volume/readers.h"

namespace arche::test {
namespace {

using volume::FileType;

// mtools reads and writes FAT times as local time: UTC here, as the reader assumes.
CommandResult mtool(const std::string& tool, const std::string& image, std::vector<std::string> args) {
  std::vector<std::string> argv{"env", "TZ=UTC", "LC_ALL=C.UTF-8", "MTOOLS_SKIP_CHECK=1", tool, "-i", image};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_ok(argv);
}

void write_text(const std::string& path, const std::string& text) {
  write_file(path, std::vector<uint8_t>(text.begin(), text.end()));
}

void set_mtime(const std::string& path, time_t seconds) {
  const struct utimbuf t = {seconds, seconds};
  ASSERT_EQ(::utime(path.c_str(), &t), 0);
}

struct FatImage {
  TempDir dir;
  std::string image = dir.file("fat.img");
  std::string source = dir.file("src");  // the host tree the image must equal
  uint32_t cluster_bytes = 0;
};

// A tree with nested directories, 8.3 names with the NT lowercase flags, long and
// non-ASCII names (mtools cannot write names outside the BMP: fat_format_test
// covers surrogates), an empty and a read-only file, a directory of 300 long
// names (several clusters of entries), a fragmented file and, when big_file,
// one of 110 MiB.
void make_fat(FatImage& f, int bits, uint64_t kib, bool big_file) {
  ARCHE_REQUIRE_PROGRAM("mkfs.vfat");
  ARCHE_REQUIRE_PROGRAM("mcopy");
  run_ok({"mkfs.vfat", "-C", "-F", std::to_string(bits), "-n", "ARCHE FAT", "-i", "1234ABCD", f.image,
          std::to_string(kib)});
  {
    auto dev = open_raw(f.image);
    std::vector<uint8_t> sector(512);
    dev->read(0, sector);
    f.cluster_bytes = volume::fat::parse_boot_sector(sector).cluster_bytes;
  }
  const std::string& s = f.source;
  boost::filesystem::create_directories(s + "/nested/level2/level3");
  boost::filesystem::create_directories(s + "/many");
  boost::filesystem::create_directories(s + "/filler");
  write_text(s + "/a.txt", "hello\n");
  set_mtime(s + "/a.txt", 1614834367);  // 2021-03-04 05:06:07, an odd second
  write_text(s + "/lower.txt", "lower case 8.3\n");
  write_text(s + "/MiXeD.Txt", "mixed\n");
  write_text(s + "/empty", "");
  write_text(s + "/readonly.txt", "do not write\n");
  write_text(s + "/\xc3\x84rger \xe2\x82\xac.txt", "umlaut and euro\n");
  write_text(s + "/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e.txt", "japanese\n");
  write_text(s + "/\xce\x95\xce\xbb\xce\xbb\xce\xb7\xce\xbd\xce\xb9\xce\xba\xce\xac.txt", "greek\n");
  write_text(s + "/A name that is much longer than thirteen characters and needs several entries.data", "long\n");
  write_file(s + "/nested/level2/level3/deep.bin", random_bytes(50000, 7));
  set_mtime(s + "/nested/level2/level3/deep.bin", 946684800);  // 2000-01-01
  for (int i = 0; i < 300; ++i)
    write_text(fmt::format("{}/many/entry number {:04} with a long name.txt", s, i), std::to_string(i));
  for (int i = 0; i < 40; ++i)
    write_file(fmt::format("{}/filler/f{:02}", s, i), random_bytes(2 * f.cluster_bytes, 100 + i));
  if (big_file) write_file(s + "/big.bin", random_bytes(110u << 20, 3));

  for (const char* top : {"a.txt", "lower.txt", "MiXeD.Txt", "empty", "readonly.txt", "\xc3\x84rger \xe2\x82\xac.txt",
                          "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e.txt",
                          "\xce\x95\xce\xbb\xce\xbb\xce\xb7\xce\xbd\xce\xb9\xce\xba\xce\xac.txt",
                          "A name that is much longer than thirteen characters and needs several entries.data",
                          "nested", "many", "filler"})
    mtool("mcopy", f.image, {"-s", "-m", "-Q", s + "/" + top, "::/"});
  mtool("mattrib", f.image, {"+r", "::/readonly.txt"});
  ::chmod((s + "/readonly.txt").c_str(), 0444);
  // Every other filler goes: the next file fills the holes and is fragmented.
  for (int i = 1; i < 40; i += 2) {
    mtool("mdel", f.image, {fmt::format("::/filler/f{:02}", i)});
    boost::filesystem::remove(fmt::format("{}/filler/f{:02}", s, i));
  }
  write_file(s + "/fragmented.bin", random_bytes(60 * f.cluster_bytes + 123, 9));
  mtool("mcopy", f.image, {"-m", s + "/fragmented.bin", "::/"});
  if (big_file) mtool("mcopy", f.image, {"-m", s + "/big.bin", "::/"});
}

// The reader's tree equals the host tree: names, types, sizes, content, the
// synthesised modes, and file mtimes at FAT's 2-second resolution.
void expect_same_tree(volume::Filesystem& fs, const std::string& source) {
  const auto host = scan_host_tree(source);
  const auto read = walk_filesystem(fs);
  ASSERT_EQ(path_difference(host, read), "");
  for (const auto& [path, h] : host) {
    SCOPED_TRACE(path);
    const FsEntry& r = read.at(path);
    ASSERT_EQ(r.stat.type, h.type);
    if (h.type == FileType::directory) {
      EXPECT_EQ(r.stat.mode, 0755u);
      continue;
    }
    EXPECT_EQ(r.stat.size, static_cast<uint64_t>(h.st.st_size));
    EXPECT_EQ(r.content, h.content);
    EXPECT_EQ(r.stat.mode, (h.st.st_mode & 0222) ? 0644u : 0444u);
    EXPECT_EQ(r.stat.mtime_ns, (h.st.st_mtim.tv_sec & ~int64_t{1}) * 1'000'000'000);
  }
}

// Clusters in use as dosfstools counts them ("N files, USED/TOTAL clusters").
uint64_t fsck_used_clusters(const std::string& image) {
  CommandResult r = run_ok({"fsck.vfat", "-n", "-v", image});
  size_t slash = r.out.rfind(" clusters");
  size_t start = r.out.rfind(", ", slash);
  EXPECT_NE(slash, std::string::npos) << r.out;
  return std::stoull(r.out.substr(start + 2, r.out.find('/', start) - start - 2));
}

class FatTypes : public ::testing::TestWithParam<int> {};

TEST_P(FatTypes, TreeReadsBackAndUsedRangesAreEnoughForFsckAndMtools) {
  const int bits = GetParam();
  FatImage f;
  make_fat(f, bits, bits == 12 ? 8192 : bits == 16 ? 65536 : 300 * 1024, bits == 32);
  auto fs = volume::open_fat(open_raw(f.image));
  EXPECT_EQ(fs->type(), fmt::format("fat{}", bits));
  EXPECT_EQ(fs->label(), "ARCHE FAT");
  EXPECT_EQ(fs->uuid(), "1234-ABCD");
  expect_same_tree(*fs, f.source);

  // 8.3 names kept their case through the NT flags; a short name finds the file too.
  EXPECT_EQ(fs->stat("/LOWER.TXT").size, 15u);
  EXPECT_EQ(fs->stat("/many/ENTRYN~1.TXT").type, FileType::regular);
  const volume::FileStat a = fs->stat("/a.txt");
  EXPECT_EQ(a.mtime_ns, int64_t{1614834366} * 1'000'000'000);
  EXPECT_TRUE(a.btime_ns.has_value());
  // Reads at odd offsets and across cluster boundaries.
  const auto frag = read_file(f.source + "/fragmented.bin");
  std::vector<uint8_t> piece(f.cluster_bytes + 777);
  for (uint64_t at : {uint64_t{0}, uint64_t{f.cluster_bytes} - 5, uint64_t{13} * f.cluster_bytes + 1}) {
    ASSERT_EQ(fs->read("/fragmented.bin", at, piece), piece.size());
    EXPECT_TRUE(std::equal(piece.begin(), piece.end(), frag.begin() + static_cast<ptrdiff_t>(at)));
  }
  EXPECT_EQ(fs->read("/fragmented.bin", frag.size() - 10, piece), 10u);
  EXPECT_EQ(fs->read("/fragmented.bin", frag.size(), piece), 0u);

  // used ranges: metadata plus exactly the clusters dosfstools counts as used.
  const auto ranges = fs->used_ranges();
  ASSERT_FALSE(ranges.empty());
  EXPECT_EQ(ranges.front().offset, 0u);
  for (size_t i = 1; i < ranges.size(); ++i) EXPECT_GT(ranges[i].offset, ranges[i - 1].offset + ranges[i - 1].length);
  std::vector<uint8_t> boot(512);
  open_raw(f.image)->read(0, boot);
  const auto g = volume::fat::parse_boot_sector(boot);
  EXPECT_EQ(total_length(ranges), g.data_offset() + fsck_used_clusters(f.image) * g.cluster_bytes);
  EXPECT_EQ(fs->used_bytes(), total_length(ranges));
  EXPECT_EQ(fs->size_bytes(), g.total_sectors * g.bytes_per_sector);
  EXPECT_LE(fs->size_bytes(), File::open(f.image, OpenMode::read_only).size());

  // The P2V property: the used ranges alone make a volume fsck accepts, that
  // mtools and the reader read identically.
  const std::string copy = f.dir.file("copy.img");
  copy_ranges(f.image, copy, ranges);
  run_ok({"fsck.vfat", "-n", copy});
  auto copied = volume::open_fat(open_raw(copy));
  expect_same_tree(*copied, f.source);
  const std::string out = f.dir.file("mtools-out");
  boost::filesystem::create_directories(out);
  mtool("mcopy", copy, {"-s", "-n", "::/nested", "::/fragmented.bin", out});
  EXPECT_EQ(read_file(out + "/fragmented.bin"), frag);
  EXPECT_EQ(read_file(out + "/nested/level2/level3/deep.bin"), read_file(f.source + "/nested/level2/level3/deep.bin"));
}

INSTANTIATE_TEST_SUITE_P(FatReader, FatTypes, ::testing::Values(12, 16, 32),
                         [](const auto& info) { return fmt::format("Fat{}", info.param); });

TEST(FatReader, PathErrorsAreClear) {
  FatImage f;
  make_fat(f, 16, 16384, false);
  auto fs = volume::open_fat(open_raw(f.image));
  std::vector<uint8_t> buf(16);
  auto category = [&](auto&& fn) {
    try {
      fn();
    } catch (const Error& e) {
      return e.category();
    }
    return ErrorCategory::internal;
  };
  EXPECT_EQ(category([&] { fs->stat("/no/such"); }), ErrorCategory::not_found);
  EXPECT_EQ(category([&] { fs->list("/a.txt"); }), ErrorCategory::usage);
  EXPECT_EQ(category([&] { fs->stat("/a.txt/x"); }), ErrorCategory::usage);
  EXPECT_EQ(category([&] { fs->read("/nested", 0, buf); }), ErrorCategory::usage);
  EXPECT_EQ(category([&] { fs->readlink("/a.txt"); }), ErrorCategory::usage);
  EXPECT_EQ(category([&] { fs->stat("relative"); }), ErrorCategory::usage);
  EXPECT_EQ(fs->stat("/nested/level2/../level2/./level3").type, FileType::directory);
  EXPECT_EQ(fs->stat("/").type, FileType::directory);
}

}  // namespace
}  // namespace arche::test
