// Images arche creates, writes, converts, commits, rebases and resizes must pass
// `qemu-img check` without errors or leaks and hold exactly the expected content.
#include <gtest/gtest.h>

#include <random>

#include "core/bytes.h"
#include "core/json.h"
#include "core/units.h"
#include "core/file.h"
#include "image/format.h"

#include <boost/filesystem.hpp>
#include "image/ops/commit.h"
#include "image/ops/rebase.h"
#include "tests/image/image_test_util.h"

namespace arche::test {
namespace {

std::unique_ptr<image::BlockDevice> open_rw(const std::string& path) {
  image::OpenOptions o;
  o.writable = true;
  return image::open_image(path, o);
}

// Random writes (data and zeroes) into dev and into the model alike.
void scribble(image::BlockDevice& dev, std::vector<uint8_t>& model, uint64_t seed, int count) {
  std::mt19937_64 rng(seed);
  for (int i = 0; i < count; ++i) {
    uint64_t len = 1 + rng() % (300 << 10);
    uint64_t off = rng() % (model.size() - len);
    if (rng() % 4 == 0) {
      dev.write_zeroes(off, len, rng() % 2);
      std::fill(model.begin() + off, model.begin() + off + len, 0);
    } else {
      std::vector<uint8_t> data = random_bytes(len, rng());
      dev.write(off, data);
      std::copy(data.begin(), data.end(), model.begin() + off);
    }
  }
}

class ArcheMadeImage : public ::testing::TestWithParam<std::string> {};

TEST_P(ArcheMadeImage, WrittenImagePassesQemuCheckAndCompare) {
  ARCHE_REQUIRE_PROGRAM("qemu-img");
  TempDir dir;
  std::string img = dir.file("a.qcow2");
  CommandResult c = arche({"image", "create", "-f", "qcow2", "-o", GetParam(), img, "48M"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  std::vector<uint8_t> model(48 << 20, 0);
  {
    auto dev = open_rw(img);
    scribble(*dev, model, 1, 200);
  }
  EXPECT_TRUE(qemu_check_clean(img));
  write_file(dir.file("model.raw"), model);
  CommandResult cmp = qemu_img({"compare", "-f", "raw", "-F", "qcow2", dir.file("model.raw"), img});
  EXPECT_EQ(cmp.exit_code, 0) << cmp.out << cmp.err;
  EXPECT_EQ(read_all_arche(img), model);
}

INSTANTIATE_TEST_SUITE_P(Options, ArcheMadeImage,
                         ::testing::Values("cluster_size=65536", "cluster_size=512", "cluster_size=4096",
                                           "cluster_size=2M", "refcount_bits=1", "refcount_bits=8,cluster_size=1024",
                                           "refcount_bits=64", "compat=0.10", "lazy_refcounts=on",
                                           "compression_type=zstd"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& ch : n)
                             if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

// A source with data, runs of zeros inside data, and holes.
std::vector<uint8_t> make_source(const std::string& path) {
  std::vector<uint8_t> raw(40 << 20, 0);
  std::vector<uint8_t> noise = random_bytes(6 << 20, 5);
  std::copy(noise.begin(), noise.end(), raw.begin() + (1 << 20));
  std::fill(raw.begin() + (3 << 20), raw.begin() + (4 << 20), 0);  // zeros inside data
  for (size_t i = 16u << 20; i < (20u << 20); ++i) raw[i] = static_cast<uint8_t>("compressible "[i % 13]);
  raw[raw.size() - 1] = 0x99;
  write_file(path, raw);
  return raw;
}

TEST(ArcheConvert, EveryQcow2VariantRoundTrips) {
  ARCHE_REQUIRE_PROGRAM("qemu-img");
  TempDir dir;
  std::vector<uint8_t> raw = make_source(dir.file("src.raw"));
  const std::vector<std::vector<std::string>> variants = {
      {}, {"-c"}, {"-c", "-o", "compression_type=zstd"}, {"-o", "cluster_size=4096"}, {"-c", "-o", "cluster_size=2M"}};
  int n = 0;
  for (const auto& extra : variants) {
    std::string out = dir.file("v" + std::to_string(n++) + ".qcow2");
    std::vector<std::string> args{"image", "convert", "-O", "qcow2"};
    args.insert(args.end(), extra.begin(), extra.end());
    args.insert(args.end(), {dir.file("src.raw"), out});
    CommandResult r = arche(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(qemu_check_clean(out));
    EXPECT_EQ(qemu_img({"compare", dir.file("src.raw"), out}).exit_code, 0);
    // ... and back to raw, sparse.
    std::string back = out + ".raw";
    ASSERT_EQ(arche({"image", "convert", "-O", "raw", out, back}).exit_code, 0);
    EXPECT_EQ(read_file(back), raw);
    EXPECT_LT(File::open(back, OpenMode::read_only).allocated_bytes(), 16u << 20) << "raw output is not sparse";
  }
  // Zero runs inside data are not stored.
  auto dev = image::open_image(dir.file("v0.qcow2"));
  EXPECT_TRUE(dev->known_zero(3 << 20, 1 << 20));
  EXPECT_FALSE(dev->known_zero(1 << 20, 64 << 10));
  // measure is an upper bound of what convert produced.
  CommandResult m = arche({"image", "measure", "--json", "-O", "qcow2", dir.file("src.raw")});
  ASSERT_EQ(m.exit_code, 0) << m.err;
  auto j = nlohmann::json::parse(m.out);
  EXPECT_GE(j["required"].get<uint64_t>(), File::open(dir.file("v0.qcow2"), OpenMode::read_only).size());
  EXPECT_GE(j["fully-allocated"].get<uint64_t>(), j["required"].get<uint64_t>());
}

// Compressed outputs (qcow2 -c in both compression types, streamOptimized VMDK) made
// by many workers: data that only back-references beyond QEMU's own 4 KiB deflate
// window compress, random data that does not compress (stored plainly in qcow2), zero
// runs, and a disk that ends inside a cluster. qemu-img reads them equal and clean.
TEST(ArcheConvert, CompressedOutputsReadEqualInQemu) {
  ARCHE_REQUIRE_PROGRAM("qemu-img");
  TempDir dir;
  std::vector<uint8_t> raw((24 << 20) + 12345, 0);
  std::vector<uint8_t> period = random_bytes(10000, 8), noise = random_bytes(3 << 20, 9);
  for (size_t i = 0; i < (12u << 20); ++i) raw[(1u << 20) + i] = period[i % period.size()];
  std::copy(noise.begin(), noise.end(), raw.begin() + (16 << 20));
  std::fill(raw.begin() + (5 << 20), raw.begin() + (6 << 20), 0);
  for (size_t i = raw.size() - 5000; i < raw.size(); ++i) raw[i] = static_cast<uint8_t>(i * 7);
  write_file(dir.file("src.raw"), raw);
  const std::vector<std::vector<std::string>> variants = {
      {"-c", "-O", "qcow2"}, {"-c", "-O", "qcow2", "-o", "compression_type=zstd"},
      {"-O", "vmdk", "-o", "subformat=streamOptimized"}};
  int n = 0;
  for (const auto& extra : variants) {
    std::string out = dir.file("c" + std::to_string(n++) + "." + extra[extra[0] == "-c" ? 2 : 1]);
    SCOPED_TRACE(out);
    std::vector<std::string> args{"image", "convert", "-m", "4"};
    args.insert(args.end(), extra.begin(), extra.end());
    args.insert(args.end(), {dir.file("src.raw"), out});
    CommandResult r = arche(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(qemu_check_clean(out));
    CommandResult cmp = qemu_img({"compare", dir.file("src.raw"), out});
    EXPECT_EQ(cmp.exit_code, 0) << cmp.out << cmp.err;
    std::vector<uint8_t> back = read_all_arche(out);  // the virtual size is rounded up to a sector
    ASSERT_EQ(back.size(), align_up(raw.size(), 512));
    EXPECT_TRUE(std::equal(raw.begin(), raw.end(), back.begin()));
    EXPECT_TRUE(all_zero(std::span(back).subspan(raw.size())));
    // The 12 MiB of repeats shrink to a sixth (one period of literals per cluster);
    // the 3 MiB of noise cannot shrink.
    uint64_t size = File::open(out, OpenMode::read_only).size();
    EXPECT_LT(size, 6u << 20);
    EXPECT_GT(size, 3u << 20);
  }
}

TEST(ArcheConvert, RefusesToOverwriteAndLeavesNothingOnFailure) {
  TempDir dir;
  make_source(dir.file("src.raw"));
  write_file(dir.file("exists.qcow2"), {1, 2, 3});
  CommandResult r = arche({"image", "convert", "-O", "qcow2", dir.file("src.raw"), dir.file("exists.qcow2")});
  EXPECT_EQ(r.exit_code, 73) << r.err;
  EXPECT_EQ(read_file(dir.file("exists.qcow2")), (std::vector<uint8_t>{1, 2, 3}));
  // A source that fails mid-way (truncated qcow2) leaves no target behind.
  ASSERT_EQ(arche({"image", "convert", "-O", "qcow2", dir.file("src.raw"), dir.file("good.qcow2")}).exit_code, 0);
  std::vector<uint8_t> cut = read_file(dir.file("good.qcow2"));
  cut.resize(cut.size() / 2);
  write_file(dir.file("cut.qcow2"), cut);
  CommandResult bad = arche({"image", "convert", "-O", "qcow2", dir.file("cut.qcow2"), dir.file("out.qcow2")});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_FALSE(boost::filesystem::exists(dir.file("out.qcow2")));
  for (auto& entry : boost::filesystem::directory_iterator(dir.path()))
    EXPECT_EQ(entry.path().filename().string().find(".arche-tmp"), std::string::npos) << entry.path();
}

TEST(ArcheCommit, OverlayIntoBaseAndThroughTheChain) {
  ARCHE_REQUIRE_PROGRAM("qemu-img");
  TempDir dir;
  std::vector<uint8_t> model = random_bytes(24 << 20, 21);
  write_file(dir.file("base.raw"), model);
  ASSERT_EQ(arche({"image", "create", "-f", "qcow2", "-b", "base.raw", "-F", "raw", dir.file("mid.qcow2")}).exit_code, 0);
  ASSERT_EQ(arche({"image", "create", "-f", "qcow2", "-o", "cluster_size=4096", "-b", "mid.qcow2", "-F", "qcow2",
                   dir.file("top.qcow2")})
                .exit_code,
            0);
  {
    auto mid = open_rw(dir.file("mid.qcow2"));
    scribble(*mid, model, 7, 40);
  }
  {
    auto top = open_rw(dir.file("top.qcow2"));
    scribble(*top, model, 8, 40);
  }
  ASSERT_EQ(read_all_arche(dir.file("top.qcow2")), model);

  // Commit top into mid: mid now holds everything, top is empty and still reads the same.
  CommandResult r = arche({"image", "commit", dir.file("top.qcow2")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_all_arche(dir.file("mid.qcow2")), model);
  EXPECT_EQ(read_all_arche(dir.file("top.qcow2")), model);
  EXPECT_TRUE(qemu_check_clean(dir.file("mid.qcow2")));
  EXPECT_TRUE(qemu_check_clean(dir.file("top.qcow2")));
  auto top = image::open_image(dir.file("top.qcow2"));
  for (const image::Extent& e : top->map()) EXPECT_NE(e.depth, 0) << "top still holds data at " << e.offset;
  top.reset();

  // Commit everything above base into base (-b): base.raw now equals the model.
  r = arche({"image", "commit", "-b", dir.file("base.raw"), dir.file("top.qcow2")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(dir.file("base.raw")), model);
}

TEST(ArcheRebase, SafeRebaseKeepsContentUnsafeOnlyRenames) {
  ARCHE_REQUIRE_PROGRAM("qemu-img");
  TempDir dir;
  write_file(dir.file("old.raw"), random_bytes(8 << 20, 31));
  std::vector<uint8_t> other = read_file(dir.file("old.raw"));
  for (size_t i = 2u << 20; i < (3u << 20); ++i) other[i] ^= 0xff;  // differs in one MiB
  write_file(dir.file("new.raw"), other);
  ASSERT_EQ(arche({"image", "create", "-f", "qcow2", "-b", "old.raw", "-F", "raw", dir.file("o.qcow2")}).exit_code, 0);
  std::vector<uint8_t> model = read_file(dir.file("old.raw"));
  {
    auto o = open_rw(dir.file("o.qcow2"));
    scribble(*o, model, 3, 10);
  }
  CommandResult r = arche({"image", "rebase", "-b", "new.raw", "-F", "raw", dir.file("o.qcow2")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_all_arche(dir.file("o.qcow2")), model);
  EXPECT_TRUE(qemu_check_clean(dir.file("o.qcow2")));
  auto info = nlohmann::json::parse(qemu_img({"info", "--output=json", dir.file("o.qcow2")}).out);
  EXPECT_EQ(info["backing-filename"], "new.raw");
  EXPECT_EQ(info["backing-filename-format"], "raw");

  // No backing file at all: everything is pulled in.
  ASSERT_EQ(arche({"image", "rebase", "-b", "", dir.file("o.qcow2")}).exit_code, 0);
  EXPECT_EQ(read_all_arche(dir.file("o.qcow2")), model);
  EXPECT_TRUE(qemu_check_clean(dir.file("o.qcow2")));
  info = nlohmann::json::parse(qemu_img({"info", "--output=json", dir.file("o.qcow2")}).out);
  EXPECT_FALSE(info.contains("backing-filename"));

  // Unsafe: only the name changes, the content then follows the new file.
  ASSERT_EQ(arche({"image", "create", "-f", "qcow2", "-b", "old.raw", "-F", "raw", dir.file("u.qcow2")}).exit_code, 0);
  ASSERT_EQ(arche({"image", "rebase", "-u", "-b", "new.raw", "-F", "raw", dir.file("u.qcow2")}).exit_code, 0);
  EXPECT_EQ(read_all_arche(dir.file("u.qcow2")), other);
  EXPECT_TRUE(qemu_check_clean(dir.file("u.qcow2")));
}

TEST(ArcheResize, GrowAndShrinkStayConsistent) {
  ARCHE_REQUIRE_PROGRAM("qemu-img");
  TempDir dir;
  std::string img = dir.file("r.qcow2");
  // 512-byte clusters: growing to 2 GiB needs a larger L1 table.
  ASSERT_EQ(arche({"image", "create", "-f", "qcow2", "-o", "cluster_size=512", img, "10M"}).exit_code, 0);
  std::vector<uint8_t> model(10 << 20, 0);
  {
    auto dev = open_rw(img);
    scribble(*dev, model, 9, 30);
  }
  ASSERT_EQ(arche({"image", "resize", img, "+2G"}).exit_code, 0);
  EXPECT_TRUE(qemu_check_clean(img));
  auto dev = image::open_image(img);
  EXPECT_EQ(dev->size(), (10ull << 20) + (2ull << 30));
  std::vector<uint8_t> head(model.size());
  dev->read(0, head);
  EXPECT_EQ(head, model);
  dev.reset();

  CommandResult refused = arche({"image", "resize", img, "5000000"});
  EXPECT_EQ(refused.exit_code, 64) << "shrinking without --shrink must be refused";
  ASSERT_EQ(arche({"image", "resize", "--shrink", img, "5000000"}).exit_code, 0);  // not cluster aligned
  EXPECT_TRUE(qemu_check_clean(img));
  ASSERT_EQ(arche({"image", "resize", img, "10M"}).exit_code, 0);
  EXPECT_TRUE(qemu_check_clean(img));
  std::vector<uint8_t> expected = model;
  std::fill(expected.begin() + 5000000, expected.end(), 0);  // what was cut off reads as zeros
  EXPECT_EQ(read_all_arche(img), expected);
  auto info = nlohmann::json::parse(qemu_img({"info", "--output=json", img}).out);
  EXPECT_EQ(info["virtual-size"].get<uint64_t>(), 10u << 20);
}

}  // namespace
}  // namespace arche::test
