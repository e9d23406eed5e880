// VHD ("vpc"): images qemu-img makes read identically in arche; images arche makes
// satisfy qemu-img; the BlockDevice write path against a model; differencing disks;
// damaged files fail with one clear error.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/endian.h"
#include "core/file.h"
#include "image/format.h"
#include "image/vhd/vhd_format.h"
#include "tests/image/vhd_vhdx_vdi_util.h"

namespace arche::test {
namespace {

using namespace foreign;
constexpr uint64_t kSize = 24 << 20;

class VhdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ARCHE_REQUIRE_PROGRAM("qemu-img");
    ARCHE_REQUIRE_PROGRAM("qemu-io");
    src = dir.file("src.raw");
    data_bytes = make_source(src, kSize, 7);
  }
  TempDir dir;
  std::string src;
  uint64_t data_bytes = 0;
};

TEST_F(VhdTest, QemuImagesReadIdentically) {
  for (std::string sub : {"dynamic", "fixed"}) {
    SCOPED_TRACE(sub);
    const std::string img = dir.file("q_" + sub + ".vhd");
    qemu_img({"convert", "-f", "raw", "-O", "vpc", "-o", "subformat=" + sub, src, img});
    // Writes through qemu-io land in new and in existing blocks.
    qemu_io({"-f", "vpc", "-c", "write -P 0x5a 4095k 3k", "-c", "write -z 1M 8k", "-c", "write -P 0x11 20M 4097", img});
    qemu_img({"convert", "-f", "vpc", "-O", "raw", img, dir.file("expected.raw")});
    auto r = arche({"image", "convert", "-f", "vpc", "-O", "raw", img, dir.file("got.raw"), "--overwrite"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(files_equal(dir.file("expected.raw"), dir.file("got.raw")));
    EXPECT_EQ(read_image(img, "vpc").size(), qemu_virtual_size(img, "vpc"));
    r = arche({"image", "info", "--json", "-f", "vpc", img});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out)["format-specific"]["data"]["subformat"], sub);
  }
  // force_size keeps the exact size (qemu writes creator "qem2" and the maximal geometry).
  const std::string forced = dir.file("forced.vhd");
  qemu_img({"create", "-f", "vpc", "-o", "force_size=on", forced, "1000000000"});
  EXPECT_EQ(read_image(forced, "vpc").size(), 1000000000u);
}

TEST_F(VhdTest, ArcheImagesSatisfyQemu) {
  for (std::string sub : {"dynamic", "fixed"}) {
    SCOPED_TRACE(sub);
    const std::string img = dir.file("a_" + sub + ".vhd");
    auto r = arche({"image", "convert", "-O", "vpc", "-o", "subformat=" + sub, src, img});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    // qemu-img has no check for vpc; compare, info and a full read are the referees.
    EXPECT_EQ(run({"qemu-img", "compare", "-f", "raw", "-F", "vpc", src, img}).exit_code, 0);
    const uint64_t vsize = qemu_virtual_size(img, "vpc");
    // Without force_size the size rounds up to a whole CHS geometry, as qemu does.
    EXPECT_GE(vsize, kSize);
    EXPECT_LT(vsize, kSize + 64 * 16 * 512);
    EXPECT_EQ(read_image(img, "vpc").size(), vsize);
    auto info = run({"qemu-img", "info", "--output=json", "-f", "vpc", img});
    auto j = nlohmann::json::parse(info.out);
    if (sub == "fixed") {
      EXPECT_EQ(File::open(img, OpenMode::read_only).size(), vsize + 512);  // data then footer
      EXPECT_FALSE(j.contains("cluster-size"));
    } else {
      EXPECT_EQ(j["cluster-size"], 2 * 1024 * 1024);  // qemu reports blocks of dynamic disks only
      EXPECT_LE(allocated_bytes(img), data_bytes * 11 / 10) << "dynamic VHD is not sparse";
    }
    {
      auto m = nlohmann::json::parse(arche({"image", "measure", "--json", "-O", "vpc", src, "-o", "subformat=" + sub}).out);
      const uint64_t file_size = File::open(img, OpenMode::read_only).size();
      EXPECT_GE(m["required"].get<uint64_t>(), file_size) << "measure under-estimates";
      EXPECT_LE(m["required"].get<uint64_t>(), file_size + (4u << 20)) << "measure over-estimates";
      EXPECT_GE(m["fully-allocated"].get<uint64_t>(), m["required"].get<uint64_t>());
    }
    auto check = arche({"image", "check", "-f", "vpc", img});
    EXPECT_EQ(check.exit_code, 0) << check.out;
  }
  // force_size=on: the exact size, which qemu sees as well.
  const std::string img = dir.file("forced.vhd");
  ASSERT_EQ(arche({"image", "create", "-f", "vpc", img, "10000000", "-o", "force_size=on"}).exit_code, 0);
  EXPECT_EQ(qemu_virtual_size(img, "vpc"), 10000384u);  // rounded up to a whole sector only
}

TEST_F(VhdTest, RandomWritesMatchModelAndQemu) {
  for (std::string sub : {"dynamic", "fixed"}) {
    SCOPED_TRACE(sub);
    const std::string img = dir.file("w_" + sub + ".vhd");
    ASSERT_EQ(arche({"image", "create", "-f", "vpc", img, "30M", "-o", "subformat=" + sub}).exit_code, 0);
    std::vector<uint8_t> model;
    random_write_exercise(img, "vpc", 11, 60, model);
    if (HasFatalFailure()) return;
    write_file(dir.file("model.raw"), model);
    EXPECT_EQ(run({"qemu-img", "compare", "-f", "raw", "-F", "vpc", dir.file("model.raw"), img}).exit_code, 0);
    EXPECT_EQ(arche({"image", "check", "-f", "vpc", img}).exit_code, 0);
  }
}

TEST_F(VhdTest, DifferencingDiskReadsThroughParent) {
  const std::string base = dir.file("base.vhd"), child = dir.file("child.vhd");
  ASSERT_EQ(arche({"image", "convert", "-O", "vpc", src, base}).exit_code, 0);
  auto r = arche({"image", "create", "-f", "vpc", "-b", "base.vhd", child});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<uint8_t> model = read_image(base, "vpc");
  random_write_exercise(child, "vpc", 5, 40, model);
  if (HasFatalFailure()) return;
  // The parent is untouched and the chain reads as the model.
  EXPECT_EQ(read_image(base, "vpc"), read_image(base, "vpc"));
  EXPECT_EQ(read_image(child, "vpc"), model);
  r = arche({"image", "info", "--json", child});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["format-specific"]["data"]["subformat"], "differencing");
  EXPECT_EQ(j["backing-filename-format"], "vpc");

  // Clear half of one block's sector bitmap: those sectors now come from the parent.
  image::vhd::Footer f = image::vhd::parse_footer(pread_file(child, 0, 512), "footer");
  auto dh = image::vhd::parse_dynamic_header(pread_file(child, f.data_offset, 1024), "header");
  uint64_t block = UINT64_MAX, host = 0;
  for (uint64_t i = 0; i < dh.max_table_entries; ++i) {
    uint32_t e = load_be32(pread_file(child, dh.table_offset + i * 4, 4).data());
    if (e != 0xFFFFFFFF) {
      block = i;
      host = uint64_t{e} * 512;
      break;
    }
  }
  ASSERT_NE(block, UINT64_MAX);
  std::vector<uint8_t> bitmap = pread_file(child, host, 512);
  std::fill(bitmap.begin(), bitmap.begin() + 256, 0x00);  // first 1 MiB of the block: absent here
  pwrite_file(child, host, bitmap);
  std::vector<uint8_t> parent = read_image(base, "vpc"), got = read_image(child, "vpc");
  const uint64_t start = block * 2 * 1024 * 1024;
  for (uint64_t k = 0; k < 1024 * 1024; ++k) ASSERT_EQ(got[start + k], parent[start + k]) << "byte " << start + k;

  // A parent that changed identity is refused.
  const std::string other = dir.file("other.vhd");
  ASSERT_EQ(arche({"image", "convert", "-O", "vpc", src, other}).exit_code, 0);
  ASSERT_EQ(::rename(other.c_str(), base.c_str()), 0);
  expect_clean_failure(arche({"image", "info", "--backing-chain", child}), "unique id");
}

TEST_F(VhdTest, DamagedImagesFailCleanly) {
  const std::string good = dir.file("good.vhd");
  ASSERT_EQ(arche({"image", "convert", "-O", "vpc", src, good}).exit_code, 0);
  const std::vector<uint8_t> bytes = read_file(good);
  auto variant = [&](const std::string& name, auto mutate) {
    std::vector<uint8_t> b = bytes;
    mutate(b);
    write_file(dir.file(name), b);
    return dir.file(name);
  };
  const uint64_t end = bytes.size() - 512;
  image::vhd::Footer f = image::vhd::parse_footer(std::span(bytes).subspan(end, 512), "footer");
  auto dh = image::vhd::parse_dynamic_header(std::span(bytes).subspan(f.data_offset, 1024), "header");

  // Cut in the middle of the blocks: the end footer is gone, the copy says where the
  // blocks are, and a block lies beyond the end.
  std::string cut = variant("cut.vhd", [&](auto& b) { b.resize(b.size() / 2); });
  expect_clean_failure(arche({"image", "convert", "-f", "vpc", "-O", "raw", cut, dir.file("o1.raw")}), "outside");
  std::string garbage = variant("garbage.vhd", [&](auto& b) {
    for (size_t i = 0; i < 512; ++i) b[i] = b[end + i] = static_cast<uint8_t>(i * 7);
  });
  expect_clean_failure(arche({"image", "info", "-f", "vpc", garbage}), "conectix");
  std::string sum = variant("checksum.vhd", [&](auto& b) {
    b[end + 40] ^= 1;  // original size: checksum no longer matches, in both copies
    b[40] ^= 1;
  });
  expect_clean_failure(arche({"image", "info", "-f", "vpc", sum}), "checksum");
  std::string bat = variant("bat.vhd", [&](auto& b) { store_be32(b.data() + dh.table_offset, 0x7ffffff0); });
  expect_clean_failure(arche({"image", "info", "-f", "vpc", bat}), "outside");
  std::string blocksize = variant("blocksize.vhd", [&](auto& b) {
    store_be32(b.data() + f.data_offset + 32, 3u << 29);  // not a power of two, huge
    store_be32(b.data() + f.data_offset + 36, 0);
    store_be32(b.data() + f.data_offset + 36, image::vhd::checksum(std::span(b).subspan(f.data_offset, 1024), 36));
  });
  expect_clean_failure(arche({"image", "info", "-f", "vpc", blocksize}), "block size");
  // A lost end footer is recovered from the copy at offset 0, and check -r all
  // writes it back.
  std::string nofooter = variant("nofooter.vhd", [&](auto& b) { b.resize(b.size() - 512); });
  auto warned = arche({"image", "convert", "-f", "vpc", "-O", "raw", nofooter, dir.file("nf.raw")});
  EXPECT_EQ(warned.exit_code, 0) << warned.err;
  EXPECT_NE(warned.err.find("footer copy"), std::string::npos) << warned.err;
  EXPECT_NE(arche({"image", "check", "-f", "vpc", nofooter}).exit_code, 0);
  auto repaired = arche({"image", "check", "-f", "vpc", "-r", "all", nofooter});
  EXPECT_EQ(repaired.exit_code, 0) << repaired.out << repaired.err;
  EXPECT_EQ(arche({"image", "check", "-f", "vpc", nofooter}).exit_code, 0);
  EXPECT_EQ(read_file(nofooter), bytes);
  // A parent chain that loops: the child's parent is a copy of the child itself.
  ASSERT_EQ(arche({"image", "create", "-f", "vpc", "-b", "good.vhd", dir.file("loop.vhd")}).exit_code, 0);
  write_file(good, read_file(dir.file("loop.vhd")));
  expect_clean_failure(arche({"image", "info", "--backing-chain", dir.file("loop.vhd")}), "loop");
}

}  // namespace
}  // namespace arche::test
