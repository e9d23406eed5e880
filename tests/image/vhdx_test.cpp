// VHDX: qemu-made images (several block sizes, fixed and dynamic) read identically;
// arche-made images pass qemu-img check and compare; the write path against a
// model; a dirty log is replayed (in memory read-only, into the file read-write,
// and the same way qemu replays it); differencing disks; damaged files fail cleanly.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/endian.h"
#include "core/file.h"
#include "image/format.h"
#include "image/vhdx/vhdx_format.h"
#include "image/vhdx/vhdx_log.h"
#include "tests/image/vhd_vhdx_vdi_util.h"

namespace arche::test {
namespace {

using namespace foreign;
namespace vx = image::vhdx;
constexpr uint64_t kSize = 40 << 20;

class VhdxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ARCHE_REQUIRE_PROGRAM("qemu-img");
    ARCHE_REQUIRE_PROGRAM("qemu-io");
    src = dir.file("src.raw");
    data_bytes = make_source(src, kSize, 9);
  }
  TempDir dir;
  std::string src;
  uint64_t data_bytes = 0;
};

// Where things are in a VHDX file, read with arche's own parsers.
struct Layout {
  vx::Header header;
  int current = 0;
  uint64_t bat_offset = 0, metadata_offset = 0;
  vx::Metadata meta;
};

Layout layout_of(const std::string& path) {
  Layout l;
  vx::Header h[2];
  for (int k = 0; k < 2; ++k) h[k] = vx::parse_header(pread_file(path, vx::kHeaderOffsets[k], 4096), "header");
  l.current = h[1].sequence > h[0].sequence ? 1 : 0;
  l.header = h[l.current];
  for (const auto& e : vx::parse_region_table(pread_file(path, vx::kRegionTableOffsets[0], 65536), "regions")) {
    if (e.id == vx::kBatRegion) l.bat_offset = e.offset;
    if (e.id == vx::kMetadataRegion) {
      l.metadata_offset = e.offset;
      l.meta = vx::parse_metadata(pread_file(path, e.offset, e.length), "metadata");
    }
  }
  return l;
}

TEST_F(VhdxTest, QemuImagesReadIdentically) {
  for (std::string opts : {"subformat=dynamic", "subformat=fixed", "subformat=dynamic,block_size=1M",
                           "subformat=dynamic,block_size=32M,log_size=2M"}) {
    SCOPED_TRACE(opts);
    const std::string img = dir.file("q.vhdx");
    std::remove(img.c_str());
    qemu_img({"convert", "-f", "raw", "-O", "vhdx", "-o", opts, src, img});
    qemu_io({"-f", "vhdx", "-c", "write -P 0x5a 4095k 3k", "-c", "write -z 1M 8k", "-c", "write -P 0x11 30M 4097", img});
    qemu_img({"convert", "-f", "vhdx", "-O", "raw", img, dir.file("expected.raw")});
    auto r = arche({"image", "convert", "-O", "raw", img, dir.file("got.raw"), "--overwrite"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(files_equal(dir.file("expected.raw"), dir.file("got.raw")));
    r = arche({"image", "info", "--json", img});
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["virtual-size"], qemu_virtual_size(img, "vhdx"));
    EXPECT_EQ(j["cluster-size"], nlohmann::json::parse(qemu_img({"info", "--output=json", img}).out)["cluster-size"]);
    EXPECT_EQ(j["format-specific"]["data"]["subformat"], opts.find("fixed") != std::string::npos ? "fixed" : "dynamic");
  }
}

TEST_F(VhdxTest, ArcheImagesSatisfyQemu) {
  for (std::string opts : {"subformat=dynamic", "subformat=fixed", "block_size=1M", "block_size=64M,log_size=4M"}) {
    SCOPED_TRACE(opts);
    const std::string img = dir.file("a.vhdx");
    std::remove(img.c_str());
    auto r = arche({"image", "convert", "-O", "vhdx", "-o", opts, src, img});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    qemu_img({"check", img});
    EXPECT_EQ(run({"qemu-img", "compare", src, img}).exit_code, 0);
    EXPECT_EQ(qemu_virtual_size(img, "vhdx"), kSize);
    Layout l = layout_of(img);
    const bool fixed = opts.find("fixed") != std::string::npos;
    EXPECT_EQ(l.meta.leave_blocks_allocated, fixed);
    if (opts.find("block_size=1M") != std::string::npos) {
      EXPECT_EQ(l.meta.block_size, 1u << 20);
    }
    if (!fixed) {
      EXPECT_LE(allocated_bytes(img), data_bytes * 11 / 10) << "dynamic VHDX is not sparse";
    }
    // qemu 7.2 shows no VHDX subformat (its map says "data" everywhere); the
    // file parameters above and the file size say it.
    if (fixed) {
      EXPECT_GE(File::open(img, OpenMode::read_only).size(), kSize);
    }
    {
      auto m = nlohmann::json::parse(arche({"image", "measure", "--json", "-O", "vhdx", src, "-o", opts}).out);
      const uint64_t file_size = File::open(img, OpenMode::read_only).size();
      EXPECT_GE(m["required"].get<uint64_t>(), file_size) << "measure under-estimates";
      EXPECT_LE(m["required"].get<uint64_t>(), file_size + (4u << 20)) << "measure over-estimates";
      EXPECT_GE(m["fully-allocated"].get<uint64_t>(), m["required"].get<uint64_t>());
    }
    EXPECT_EQ(arche({"image", "check", img}).exit_code, 0);
  }
}

TEST_F(VhdxTest, RandomWritesMatchModelAndQemu) {
  for (std::string opts : {"subformat=dynamic,block_size=1M", "subformat=fixed,block_size=2M"}) {
    SCOPED_TRACE(opts);
    const std::string img = dir.file("w.vhdx");
    std::remove(img.c_str());
    ASSERT_EQ(arche({"image", "create", "-f", "vhdx", img, "30M", "-o", opts}).exit_code, 0);
    std::vector<uint8_t> model;
    random_write_exercise(img, "vhdx", 13, 60, model);
    if (HasFatalFailure()) return;
    write_file(dir.file("model.raw"), model);
    qemu_img({"check", img});
    EXPECT_EQ(run({"qemu-img", "compare", "-F", "vhdx", dir.file("model.raw"), img}).exit_code, 0);
  }
}

// Builds a dirty log by hand: the log points block 3 (NOT_PRESENT) at data that
// was written past the end of the file, and zeroes a page of block 0. Until the log
// is replayed, the BAT on disk says nothing of block 3.
TEST_F(VhdxTest, DirtyLogIsReplayed) {
  const std::string img = dir.file("log.vhdx");
  ASSERT_EQ(arche({"image", "create", "-f", "vhdx", img, "8M", "-o", "block_size=1M"}).exit_code, 0);
  ASSERT_EQ(run({"qemu-io", "-f", "vhdx", "-c", "write -P 0x77 0 1M", img}).exit_code, 0);
  Layout l = layout_of(img);
  const uint64_t file_size = File::open(img, OpenMode::read_only).size();
  const uint64_t new_block = (file_size + (1 << 20) - 1) / (1 << 20) * (1 << 20);
  pwrite_file(img, new_block, std::vector<uint8_t>(1 << 20, 0x3c));  // payload for block 3, not yet referenced
  std::vector<uint8_t> bat_page = pread_file(img, l.bat_offset, 4096);
  const uint64_t block0_host = vx::bat_offset(load_le64(bat_page.data()));
  store_le64(bat_page.data() + 3 * 8, vx::bat_entry(vx::kFullyPresent, new_block));
  std::vector<vx::LogWrite> writes(2);
  writes[0].offset = l.bat_offset;
  writes[0].length = 4096;
  writes[0].data = bat_page;
  writes[1].offset = block0_host + 8192;
  writes[1].length = 4096;  // zero descriptor
  const uint64_t end = new_block + (1 << 20);
  const vx::Id128 log_guid = image::foreign::random_guid();
  // Two entries of one sequence (the second's tail names the first), and behind
  // them a newer entry of another log that must be ignored.
  std::vector<uint8_t> first = vx::encode_log_entry(41, log_guid, 0, {writes[0]}, end, end);
  std::vector<uint8_t> second = vx::encode_log_entry(42, log_guid, 0, {writes[1]}, end, end);
  vx::LogWrite bogus = writes[0];
  bogus.data.assign(4096, 0xee);
  std::vector<uint8_t> stale =
      vx::encode_log_entry(99, image::foreign::random_guid(), 0, {bogus}, end, end);
  pwrite_file(img, l.header.log_offset, first);
  pwrite_file(img, l.header.log_offset + first.size(), second);
  pwrite_file(img, l.header.log_offset + first.size() + second.size(), stale);
  vx::Header h = l.header;
  h.log_guid = log_guid;
  h.sequence += 1;
  pwrite_file(img, vx::kHeaderOffsets[1 - l.current], vx::encode_header(h));

  std::vector<uint8_t> expected(8 << 20, 0);
  std::fill_n(expected.begin(), 1 << 20, 0x77);
  std::fill_n(expected.begin() + 8192, 4096, 0);
  std::fill_n(expected.begin() + (3 << 20), 1 << 20, 0x3c);

  // Read-only: replayed in memory, the file stays as it is.
  const std::vector<uint8_t> before = read_file(img);
  auto info = arche({"image", "info", "--json", img});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_EQ(nlohmann::json::parse(info.out)["format-specific"]["data"]["log-replay-pending"], true);
  EXPECT_EQ(read_image(img), expected);
  EXPECT_EQ(read_file(img), before);
  EXPECT_NE(arche({"image", "check", img}).exit_code, 0);  // pending replay is reported

  // qemu replays the same log the same way.
  const std::string copy = dir.file("copy.vhdx");
  write_file(copy, before);
  qemu_img({"check", "-r", "all", copy});
  qemu_img({"convert", "-O", "raw", copy, dir.file("qemu.raw")});
  EXPECT_EQ(read_file(dir.file("qemu.raw")), expected);

  // Read-write: replayed into the file, log GUID cleared; qemu then needs no replay.
  auto w = arche({"image", "write", img, "7M", "--pattern", "0x01", "--length", "4096"});
  ASSERT_EQ(w.exit_code, 0) << w.err;
  EXPECT_NE(w.err.find("replaying 2 VHDX log entries (sequence 41-42)"), std::string::npos) << w.err;
  std::fill_n(expected.begin() + (7 << 20), 4096, 0x01);
  EXPECT_TRUE(image::foreign::is_null(layout_of(img).header.log_guid));
  qemu_img({"check", img});
  qemu_img({"convert", "-O", "raw", img, dir.file("after.raw")});
  EXPECT_EQ(read_file(dir.file("after.raw")), expected);
}

TEST_F(VhdxTest, DifferencingDiskReadsThroughParent) {
  const std::string base = dir.file("base.vhdx"), child = dir.file("child.vhdx");
  ASSERT_EQ(arche({"image", "convert", "-O", "vhdx", "-o", "block_size=1M", src, base}).exit_code, 0);
  auto r = arche({"image", "create", "-f", "vhdx", "-b", "base.vhdx", child});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<uint8_t> model = read_image(base);
  const std::vector<uint8_t> parent = model;
  random_write_exercise(child, "vhdx", 17, 40, model);
  if (HasFatalFailure()) return;
  EXPECT_EQ(read_image(base), parent);
  EXPECT_EQ(read_image(child), model);
  r = arche({"image", "info", "--json", child});
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["format-specific"]["data"]["subformat"], "differencing");
  // A small write into a block the child does not hold stores only its sectors.
  const std::string small = dir.file("small.vhdx");
  ASSERT_EQ(arche({"image", "create", "-f", "vhdx", "-b", "base.vhdx", small}).exit_code, 0);
  const uint64_t before = allocated_bytes(small);
  ASSERT_EQ(arche({"image", "write", small, "3000000", "--pattern", "0x44", "--length", "100000"}).exit_code, 0);
  EXPECT_LT(allocated_bytes(small) - before, 1200u * 1024) << "a 100 KB write copied a whole block";
  std::vector<uint8_t> expect_small = parent;
  std::fill_n(expect_small.begin() + 3000000, 100000, 0x44);
  EXPECT_EQ(read_image(small), expect_small);
  auto m = arche({"image", "map", "--json", small});
  EXPECT_NE(m.out.find("\"depth\":1"), std::string::npos) << m.out;  // parent shows through
  EXPECT_NE(m.out.find("\"depth\":0"), std::string::npos) << m.out;
  EXPECT_EQ(j["backing-filename"], ".\\base.vhdx");

  // Make a present block PARTIALLY_PRESENT with a sector bitmap that keeps only its
  // second half here: the first half reads from the parent again.
  Layout l = layout_of(child);
  vx::BatLayout bl = vx::bat_layout(l.meta.virtual_disk_size, l.meta.block_size, 512, true);
  uint64_t block = UINT64_MAX, entry = 0;
  for (uint64_t b = 0; b < bl.payload_blocks && block == UINT64_MAX; ++b) {
    entry = load_le64(pread_file(child, l.bat_offset + bl.payload_index(b) * 8, 8).data());
    if (vx::bat_state(entry) == vx::kFullyPresent) block = b;
  }
  ASSERT_NE(block, UINT64_MAX);
  // The chunk's sector bitmap block: the one the child has (other partial blocks
  // keep their bits), or a new one at the end of the file.
  const uint64_t sb_entry = load_le64(pread_file(child, l.bat_offset + bl.bitmap_index(block / bl.chunk_ratio) * 8, 8).data());
  const bool have_sb = vx::bat_state(sb_entry) == vx::kSbPresent;
  const uint64_t sb = have_sb ? vx::bat_offset(sb_entry)
                              : (File::open(child, OpenMode::read_only).size() + (1 << 20) - 1) / (1 << 20) * (1 << 20);
  std::vector<uint8_t> bitmap = have_sb ? pread_file(child, sb, 1 << 20) : std::vector<uint8_t>(1 << 20, 0);
  const uint64_t sectors = l.meta.block_size / 512, first_bit = (block % bl.chunk_ratio) * sectors;
  for (uint64_t s = 0; s < sectors; ++s) {
    const uint64_t bit = first_bit + s;
    if (s < sectors / 2) bitmap[bit / 8] &= static_cast<uint8_t>(~(1 << (bit % 8)));
    else bitmap[bit / 8] |= static_cast<uint8_t>(1 << (bit % 8));
  }
  pwrite_file(child, sb, bitmap);
  std::vector<uint8_t> e(8);
  store_le64(e.data(), vx::bat_entry(vx::kPartiallyPresent, vx::bat_offset(entry)));
  pwrite_file(child, l.bat_offset + bl.payload_index(block) * 8, e);
  store_le64(e.data(), vx::bat_entry(vx::kSbPresent, sb));
  pwrite_file(child, l.bat_offset + bl.bitmap_index(block / bl.chunk_ratio) * 8, e);
  std::vector<uint8_t> got = read_image(child);
  const uint64_t start = block * l.meta.block_size, half = l.meta.block_size / 2;
  for (uint64_t k = 0; k < half; ++k) ASSERT_EQ(got[start + k], parent[start + k]) << "byte " << start + k;
  for (uint64_t k = half; k < 2 * half; ++k) ASSERT_EQ(got[start + k], model[start + k]) << "byte " << start + k;

  // Writing to the parent changes its DataWriteGuid: the child no longer links.
  ASSERT_EQ(arche({"image", "write", base, "0", "--pattern", "1", "--length", "512"}).exit_code, 0);
  expect_clean_failure(arche({"image", "info", "--backing-chain", child}), "DataWriteGuid");
}

TEST_F(VhdxTest, DamagedImagesFailCleanly) {
  const std::string good = dir.file("good.vhdx");
  ASSERT_EQ(arche({"image", "convert", "-O", "vhdx", "-o", "block_size=1M", src, good}).exit_code, 0);
  const std::vector<uint8_t> bytes = read_file(good);
  Layout l = layout_of(good);
  auto variant = [&](const std::string& name, auto mutate) {
    std::vector<uint8_t> b = bytes;
    mutate(b);
    write_file(dir.file(name), b);
    return dir.file(name);
  };
  expect_clean_failure(arche({"image", "info", "-f", "vhdx", variant("cut.vhdx", [](auto& b) { b.resize(b.size() / 2); })}),
                       "outside");
  expect_clean_failure(arche({"image", "info", "-f", "vhdx", variant("tiny.vhdx", [](auto& b) { b.resize(100000); })}),
                       "too small");
  expect_clean_failure(arche({"image", "info", "-f", "vhdx", variant("garbage.vhdx", [](auto& b) {
                                for (size_t i = 0; i < 4096; ++i) b[65536 + i] = b[131072 + i] = static_cast<uint8_t>(i);
                              })}),
                       "no valid VHDX header");
  expect_clean_failure(arche({"image", "info", "-f", "vhdx", variant("crc.vhdx", [](auto& b) {
                                b[196608 + 100] ^= 1;
                                b[262144 + 100] ^= 1;
                              })}),
                       "CRC32C");
  expect_clean_failure(arche({"image", "info", variant("bat.vhdx", [&](auto& b) {
                                store_le64(b.data() + l.bat_offset, vx::bat_entry(vx::kFullyPresent, 1ull << 40));
                              })}),
                       "outside");
  // Absurd block size in the metadata (which has no checksum of its own).
  expect_clean_failure(arche({"image", "info", variant("bs.vhdx", [&](auto& b) {
                                for (size_t at = l.metadata_offset + 65536; at < l.metadata_offset + 65536 + 8; at += 8)
                                  if (load_le32(b.data() + at) == l.meta.block_size) store_le32(b.data() + at, 3u << 30);
                              })}),
                       "block size");
  // A parent loop: the child's parent is a copy of the child.
  ASSERT_EQ(arche({"image", "create", "-f", "vhdx", "-b", "good.vhdx", dir.file("loop.vhdx")}).exit_code, 0);
  write_file(good, read_file(dir.file("loop.vhdx")));
  expect_clean_failure(arche({"image", "info", "--backing-chain", dir.file("loop.vhdx")}), "loop");
}

}  // namespace
}  // namespace arche::test
