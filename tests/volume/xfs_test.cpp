// The XFS reader against v5 images the kernel wrote (loop mount) and v4 images
// mkfs.xfs built from a protofile: every file byte-identical with its metadata,
// each directory shape, and the used ranges checked against xfs_db and by the
// P2V property (only the used ranges copied: xfs_repair -n passes, files read the
// same, through the reader and through the kernel).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/file.h"
#include "tests/volume/xfs_fixture.h"
#include "volume/readers.h"

namespace arche::test {
namespace {

using volume::FileType;

std::string blkid_uuid(const std::string& image) {
  return run_ok({"blkid", "-p", "-s", "UUID", "-o", "value", image}).out.substr(0, 36);
}

int64_t ns(const struct timespec& t) { return int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec; }

// The reader's tree equals what the kernel showed through the mount, field by field.
void expect_same_as_mounted(volume::Filesystem& fs, const std::map<std::string, HostEntry>& host) {
  const auto read = walk_filesystem(fs);
  ASSERT_EQ(path_difference(host, read), "");
  for (const auto& [path, h] : host) {
    SCOPED_TRACE(path);
    const volume::FileStat& st = read.at(path).stat;
    ASSERT_EQ(st.type, h.type);
    EXPECT_EQ(st.mode, h.st.st_mode & 07777);
    EXPECT_EQ(st.uid, h.st.st_uid);
    EXPECT_EQ(st.gid, h.st.st_gid);
    EXPECT_EQ(st.nlink, h.st.st_nlink);
    EXPECT_EQ(st.inode, h.st.st_ino);
    EXPECT_EQ(st.size, static_cast<uint64_t>(h.st.st_size));
    EXPECT_EQ(st.mtime_ns, ns(h.st.st_mtim));
    EXPECT_EQ(st.atime_ns, ns(h.st.st_atim));
    EXPECT_EQ(st.ctime_ns, ns(h.st.st_ctim));
    EXPECT_TRUE(st.btime_ns.has_value());
    if (h.type == FileType::regular) {
      EXPECT_EQ(read.at(path).content, h.content);
    }
    if (h.type == FileType::symlink) {
      EXPECT_EQ(read.at(path).target, h.target);
    }
  }
}

struct Geometry {
  uint32_t block_size, ag_blocks;
  uint64_t blocks;
};
Geometry geometry(const std::string& image) {
  const std::string out = xfs_db(image, {"sb 0", "print blocksize agblocks dblocks"});
  Geometry g{};
  std::sscanf(out.c_str(), "blocksize = %u\nagblocks = %u\ndblocks = %lu", &g.block_size, &g.ag_blocks, &g.blocks);
  return g;
}

bool covered(const std::vector<volume::ByteRange>& ranges, const volume::ByteRange& r) {
  auto it = std::upper_bound(ranges.begin(), ranges.end(), r.offset,
                             [](uint64_t off, const volume::ByteRange& x) { return off < x.offset; });
  if (it == ranges.begin()) return false;
  --it;
  return r.offset + r.length <= it->offset + it->length;
}

// Each directory of /dirs has the shape its name says (xfs_db is the referee):
// leaf directories have a leaf block at 32 GiB, node directories also a free
// index at 64 GiB; block directories are one directory block.
void expect_directory_shapes(const std::string& image, uint32_t block_size) {
  auto format = [&](const std::string& p) { return xfs_db_field(image, p, "core.format"); };
  auto blocks_at = [&](const std::string& p, uint64_t from) {
    const std::string out = xfs_db(image, {"path " + p, "bmap"});
    for (size_t at = 0; (at = out.find("data offset ", at)) != std::string::npos; at += 12)
      if (std::stoull(out.substr(at + 12)) >= from) return true;
    return false;
  };
  const uint64_t leaf = (uint64_t{32} << 30) / block_size, free_index = (uint64_t{64} << 30) / block_size;
  EXPECT_EQ(format("/dirs/short"), "1 (local)");
  EXPECT_EQ(format("/dirs/block"), "2 (extents)");
  EXPECT_EQ(xfs_db_field(image, "/dirs/block", "core.size"), std::to_string(block_size));
  EXPECT_EQ(format("/dirs/leaf"), "2 (extents)");
  EXPECT_TRUE(blocks_at("/dirs/leaf", leaf));
  EXPECT_FALSE(blocks_at("/dirs/leaf", free_index));
  EXPECT_TRUE(blocks_at("/dirs/node", free_index));
  EXPECT_EQ(format("/dirs/btree"), "3 (btree)");
}

// Used ranges: the blocks xfs_db does not count as free, plus the few blocks the
// AG free lists (AGFL) hold in reserve (free, but the reader copies them rather
// than trust a list no btree confirms), covering every extent of the sampled
// files; copied alone they make a volume xfs_repair accepts.
std::string check_used_ranges(volume::Filesystem& fs, const std::string& image, const std::string& work,
                              const std::vector<std::string>& sample_files) {
  const Geometry g = geometry(image);
  const auto ranges = fs.used_ranges();
  const std::string freesp = xfs_db(image, {"freesp -s"});
  const size_t at = freesp.find("total free blocks ");
  EXPECT_NE(at, std::string::npos) << freesp;
  const uint64_t free_blocks = std::stoull(freesp.substr(at + 18));
  uint64_t reserved = 0;
  const uint64_t ag_count = (g.blocks + g.ag_blocks - 1) / g.ag_blocks;
  for (uint64_t agno = 0; agno < ag_count; ++agno) {
    const std::string out = xfs_db(image, {"agf " + std::to_string(agno), "print flcount"});
    reserved += std::stoull(out.substr(out.find('=') + 1));
  }
  EXPECT_EQ(total_length(ranges), (g.blocks - free_blocks + reserved) * g.block_size);
  EXPECT_EQ(fs.used_bytes(), total_length(ranges));
  EXPECT_EQ(fs.size_bytes(), g.blocks * g.block_size);
  for (const std::string& f : sample_files)
    for (const auto& r : xfs_db_extents(image, f, g.block_size, g.ag_blocks))
      EXPECT_TRUE(covered(ranges, r)) << f << " extent at byte " << r.offset;
  const std::string copy = work + "/copy.img";
  copy_ranges(image, copy, ranges);
  run_ok({"xfs_repair", "-n", copy});
  return copy;
}

TEST(XfsReader, V5TreeReadsBackAsMountedAndUsedRangesAreEnough) {
  ARCHE_SKIP_UNLESS_ROOT();
  ARCHE_REQUIRE_PROGRAM("mkfs.xfs");
  TempDir dir;
  const std::string image = dir.file("v5.img");
  const auto host = make_xfs_v5(image, dir.path());
  expect_directory_shapes(image, 4096);
  EXPECT_EQ(xfs_db_field(image, "/frag.bin", "core.format"), "3 (btree)");

  auto fs = volume::open_xfs(open_raw(image));
  EXPECT_EQ(fs->type(), "xfs");
  EXPECT_EQ(fs->label(), "arche-v5");
  EXPECT_EQ(fs->uuid(), blkid_uuid(image));
  expect_same_as_mounted(*fs, host);

  // Hard links are one inode; holes and unwritten ranges read as zeros.
  EXPECT_EQ(fs->stat("/hardlink.txt").inode, fs->stat("/a.txt").inode);
  EXPECT_EQ(fs->stat("/a.txt").nlink, 3u);
  std::vector<uint8_t> buf(8192);
  ASSERT_EQ(fs->read("/unwritten.bin", 252 << 10, buf), buf.size());
  EXPECT_EQ(std::count(buf.begin(), buf.begin() + 4096, 0), 4096);
  EXPECT_EQ(std::count(buf.begin() + 4096, buf.end(), 0x77), 4096);
  ASSERT_EQ(fs->read("/sparse.bin", (700u << 20) - 4096, buf), buf.size());
  EXPECT_EQ(std::count(buf.begin(), buf.begin() + 4096, 0), 4096);
  EXPECT_EQ(std::count(buf.begin() + 4096, buf.end(), 0x66), 4096);
  EXPECT_EQ(fs->stat("/nested/level2/level3/deep.bin").mtime_ns, int64_t{2200000000} * 1'000'000'000 + 500'000'000);
  EXPECT_EQ(fs->stat("/\xc3\x84rger \xe2\x82\xac.txt").mtime_ns, int64_t{-300000000} * 1'000'000'000);

  const std::string copy =
      check_used_ranges(*fs, image, dir.path(), {"/big.bin", "/frag.bin", "/dirs/btree", "/longlink", "/dirs/node"});
  auto copied = volume::open_xfs(open_raw(copy));
  expect_same_as_mounted(*copied, host);
  // The kernel reads the copy the same way.
  LoopMount mount(copy, dir.file("copy-mnt"), "ro,norecovery");
  const auto through_kernel = scan_host_tree(dir.file("copy-mnt"));
  for (const auto& [path, h] : host)
    if (h.type == FileType::regular) {
      EXPECT_EQ(through_kernel.at(path).content, h.content) << path;
    }
}

TEST(XfsReader, V4ProtofileTreeReadsBack) {
  ARCHE_REQUIRE_PROGRAM("mkfs.xfs");
  TempDir dir;
  const std::string image = dir.file("v4.img");
  const int64_t before = static_cast<int64_t>(::time(nullptr)) * 1'000'000'000;
  const auto expected = make_xfs_v4(image, dir.path());
  const int64_t after = (static_cast<int64_t>(::time(nullptr)) + 1) * 1'000'000'000;
  expect_directory_shapes(image, 4096);
  EXPECT_EQ(xfs_db_field(image, "/", "core.version"), "2");

  auto fs = volume::open_xfs(open_raw(image));
  EXPECT_EQ(fs->label(), "arche-v4");
  const auto read = walk_filesystem(*fs);
  ASSERT_EQ(path_difference(expected, read), "");
  for (const auto& [path, e] : expected) {
    SCOPED_TRACE(path);
    const FsEntry& r = read.at(path);
    ASSERT_EQ(r.stat.type, e.type);
    EXPECT_EQ(r.stat.mode, e.mode);
    EXPECT_EQ(r.stat.uid, e.uid);
    EXPECT_EQ(r.stat.gid, e.gid);
    EXPECT_GE(r.stat.mtime_ns, before);
    EXPECT_LE(r.stat.mtime_ns, after);
    EXPECT_FALSE(r.stat.btime_ns.has_value());  // v2 inodes have no creation time
    if (e.type == FileType::regular) {
      EXPECT_EQ(r.content, content_of_host_file(e.source));
    }
    if (e.type == FileType::symlink) {
      EXPECT_EQ(r.target, e.target);
    }
  }
  EXPECT_EQ(fs->stat("/dirs").nlink, 7u);  // ".", the entry in "/", five subdirectories
  const std::string copy = check_used_ranges(*fs, image, dir.path(), {"/big.bin", "/dirs/btree", "/longlink"});
  auto copied = volume::open_xfs(open_raw(copy));
  for (const auto& [path, e] : expected)
    if (e.type == FileType::regular) {
      EXPECT_EQ(content_of(*copied, path), content_of_host_file(e.source)) << path;
    }
}

// Less common geometry and features together: 1 KiB blocks with 8 KiB directory
// blocks, ASCII case-insensitive names, 64-bit extent counters, an external log,
// and a UUID changed after mkfs (v5 metadata then carries the old one as meta_uuid).
TEST(XfsReader, SmallBlocksCaseInsensitiveNamesNrext64ExternalLogAndNewUuid) {
  ARCHE_REQUIRE_PROGRAM("mkfs.xfs");
  TempDir dir;
  const std::string image = dir.file("v.img"), log = dir.file("log.img");
  write_file(dir.file("a.txt"), {'a', '\n'});
  write_file(dir.file("r.bin"), random_bytes(300000, 4));
  // No remote symlink: mkfs.xfs 6.1 writes v5 ones from a protofile without their
  // header (xfs_db calls the block damaged, and so does the reader).
  std::string proto = "a\n0 0\nd--755 0 0\na.txt ---644 0 0 " + dir.file("a.txt") + "\nr.bin ---644 0 0 " +
                      dir.file("r.bin") + "\nshort l--777 0 0 a.txt\nMixed d--755 0 0\n";
  for (int i = 0; i < 400; ++i) proto += "Entry-" + std::to_string(i) + " ---644 0 0 " + dir.file("a.txt") + "\n";
  proto += "$\n$\n";
  write_file(dir.file("proto"), std::vector<uint8_t>(proto.begin(), proto.end()));
  run_ok({"truncate", "-s", "512M", image});
  run_ok({"truncate", "-s", "64M", log});
  run_ok({"mkfs.xfs", "-q", "-f", "-b", "size=1024", "-n", "size=8192,version=ci", "-i", "nrext64=1", "-l",
          "logdev=" + log, "-p", dir.file("proto"), image});
  ASSERT_EQ(xfs_db_field(image, "/r.bin", "v3.nrext64"), "1");
  run_ok({"xfs_admin", "-U", "generate", image, log});
  ASSERT_NE(xfs_db(image, {"sb 0", "print meta_uuid"}), xfs_db(image, {"sb 0", "print uuid"}));

  auto fs = volume::open_xfs(open_raw(image));
  EXPECT_EQ(fs->uuid(), blkid_uuid(image));
  EXPECT_EQ(content_of(*fs, "/r.bin"), content_of_host_file(dir.file("r.bin")));
  EXPECT_EQ(fs->readlink("/short"), "a.txt");
  const auto entries = fs->list("/Mixed");
  EXPECT_EQ(entries.size(), 400u);
  EXPECT_EQ(fs->stat("/mixed/ENTRY-399").size, 2u);  // ASCII case-insensitive lookup
  EXPECT_EQ(content_of(*fs, "/MIXED/entry-7"), content_of_host_file(dir.file("a.txt")));
  const std::string copy = dir.file("copy.img");
  copy_ranges(image, copy, fs->used_ranges());
  run_ok({"xfs_repair", "-n", "-l", log, copy});
}

}  // namespace
}  // namespace arche::test
