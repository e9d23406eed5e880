// VMDKs arche writes: conversions to monolithicSparse and streamOptimized checked
// by qemu-img (check, compare, info), the BlockDevice write path against an
// in-memory model across close and reopen, and the rules of stream writing.
#include <gtest/gtest.h>

#include <boost/filesystem.hpp>
#include <cstring>
#include <random>

#include "core/endian.h"
#include "core/error.h"
#include "core/json.h"
#include "core/units.h"
#include "image/format.h"
#include "tests/image/vmdk_test_util.h"

namespace arche::test {
namespace {

constexpr uint64_t kSize = (64 << 20) + 512;  // ends in a short grain

Json qemu_info(const std::string& path) {
  CommandResult r = must({"qemu-img", "info", "--output=json", path});
  return Json::parse(r.out);
}

uint64_t data_bytes(const std::string& raw) {
  auto dev = image::open_image(raw);
  uint64_t n = 0;
  for (const image::Extent& e : dev->map())
    if (e.kind == image::ExtentKind::data) n += e.length;
  return n;
}

class ArcheConvert : public ::testing::TestWithParam<std::string> {};

TEST_P(ArcheConvert, QemuAgrees) {
  ARCHE_REQUIRE_PROGRAM("qemu-img");
  const std::string subformat = GetParam();
  TempDir dir;
  const std::string src = dir.file("src.raw"), vmdk = dir.file("out.vmdk");
  make_source(src, kSize, {30 << 20, 63 << 20});
  CommandResult c = arche({"image", "convert", "-O", "vmdk", "-o", "subformat=" + subformat, src, vmdk});
  ASSERT_EQ(c.exit_code, 0) << c.err;

  must({"qemu-img", "check", "-f", "vmdk", vmdk});
  must({"qemu-img", "compare", "-f", "raw", "-F", "vmdk", src, vmdk});
  Json info = qemu_info(vmdk);
  EXPECT_EQ(info["format"], "vmdk");
  EXPECT_EQ(info["virtual-size"], kSize);
  EXPECT_EQ(info["format-specific"]["data"]["create-type"], subformat);
  // arche's own check and reading agree too.
  CommandResult check = arche({"image", "check", vmdk});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  EXPECT_EQ(arche({"image", "compare", src, vmdk}).exit_code, 0);

  // Sparse stays sparse: no more than the data (grain rounding) and the metadata.
  const uint64_t data = data_bytes(src);
  if (subformat == "monolithicSparse") {
    EXPECT_LE(allocated(vmdk), data * 11 / 10 + (1 << 20)) << "data " << data;
  } else {
    EXPECT_LT(allocated(vmdk), data) << "compressed stream larger than its data";
    // The stream ends with footer marker, footer and end-of-stream marker.
    std::vector<uint8_t> bytes = read_file(vmdk);
    ASSERT_GE(bytes.size(), 2048u);
    const uint8_t* tail = bytes.data() + bytes.size() - 1536;
    EXPECT_EQ(load_le32(tail + 12), 3u);                  // footer marker
    EXPECT_EQ(load_le32(tail + 512), 0x564d444bu);        // footer = header copy
    EXPECT_NE(load_le64(tail + 512 + 56), ~0ull);         // with the real GD offset
    EXPECT_EQ(load_le32(tail + 1024 + 12), 0u);           // end of stream
    EXPECT_EQ(load_le64(bytes.data() + 56), ~0ull);       // the header says: GD at the end
  }

  // And back: vmdk -> qcow2 equals the source.
  ASSERT_EQ(arche({"image", "convert", "-O", "qcow2", vmdk, dir.file("back.qcow2")}).exit_code, 0);
  must({"qemu-img", "compare", "-f", "raw", "-F", "qcow2", src, dir.file("back.qcow2")});
}

INSTANTIATE_TEST_SUITE_P(Subformats, ArcheConvert, ::testing::Values("monolithicSparse", "streamOptimized"));

TEST(VmdkWrite, CreateOptionsReachTheDescriptor) {
  ARCHE_REQUIRE_PROGRAM("qemu-img");
  TempDir dir;
  const std::string f = dir.file("o.vmdk");
  CommandResult c = arche({"image", "create", "-f", "vmdk", "-o", "adapter_type=lsilogic,hwversion=14,zeroed_grain=on", f, "10M"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  must({"qemu-img", "check", f});
  Json info = Json::parse(arche({"image", "info", "--json", f}).out);
  EXPECT_EQ(info["format-specific"]["data"]["hardware-version"], "14");
  EXPECT_EQ(info["format-specific"]["data"]["adapter-type"], "lsilogic");
  EXPECT_EQ(info["format-specific"]["data"]["extents"][0]["zeroed-grain"], true);
  // The embedded descriptor names the file by its final name, not the temporary one.
  std::vector<uint8_t> head = read_file(f);
  std::string text(reinterpret_cast<const char*>(head.data()) + 512, 2048);
  EXPECT_NE(text.find("SPARSE \"o.vmdk\""), std::string::npos) << text;
  EXPECT_NE(text.find("ddb.geometry.heads = \"255\""), std::string::npos);
  EXPECT_NE(arche({"image", "create", "-f", "vmdk", "-o", "subformat=bogus", dir.file("x.vmdk"), "1M"}).exit_code, 0);
  EXPECT_NE(arche({"image", "create", "-f", "vmdk", "-o", "compat6=on,hwversion=7", dir.file("y.vmdk"), "1M"}).exit_code, 0);
  EXPECT_FALSE(boost::filesystem::exists(dir.file("x.vmdk")));
}

// Random writes, zeroes and discards through the BlockDevice, checked against a
// model after every phase, after close and reopen, and by qemu-img.
void random_writes_against_model(const std::string& path, std::vector<uint8_t>& model, uint64_t seed, int rounds) {
  std::mt19937_64 rng(seed);
  image::OpenOptions o;
  o.writable = true;
  auto dev = image::open_image(path, o);
  ASSERT_EQ(dev->size(), model.size());
  for (int i = 0; i < rounds; ++i) {
    const uint64_t kind = rng() % 10;
    const uint64_t len = 1 + rng() % (kind < 2 ? 300000 : 70000);
    const uint64_t at = rng() % (model.size() - len);
    if (kind == 0) {
      dev->write_zeroes(at, len, rng() % 2);
      std::memset(model.data() + at, 0, len);
    } else if (kind == 1) {
      dev->discard(at, len);
      // Whole grains inside the range read as zeros; the edges are unchanged.
      const uint64_t grain = dev->granularity();
      const uint64_t from = align_up(at, grain), to = at + len == model.size() ? model.size() : align_down(at + len, grain);
      if (to > from) std::memset(model.data() + from, 0, to - from);
    } else {
      std::vector<uint8_t> data = random_bytes(len, rng());
      dev->write(at, data);
      std::memcpy(model.data() + at, data.data(), len);
    }
  }
  std::vector<uint8_t> all(model.size());
  dev->read(0, all);
  ASSERT_TRUE(all == model) << "content differs from the model before close";
  dev.reset();
  dev = image::open_image(path);
  dev->read(0, all);
  ASSERT_TRUE(all == model) << "content differs from the model after reopen";
}

TEST(VmdkWrite, RandomWritesMatchAModel) {
  ARCHE_REQUIRE_PROGRAM("qemu-img");
  TempDir dir;
  const std::string f = dir.file("rw.vmdk");
  ASSERT_EQ(arche({"image", "create", "-f", "vmdk", f, std::to_string(kSize)}).exit_code, 0);
  std::vector<uint8_t> model(kSize, 0);
  random_writes_against_model(f, model, 42, 300);
  random_writes_against_model(f, model, 43, 100);  // a second session over the first
  write_file(dir.file("model.raw"), model);
  must({"qemu-img", "check", f});
  must({"qemu-img", "compare", "-f", "raw", "-F", "vmdk", dir.file("model.raw"), f});
  EXPECT_EQ(arche({"image", "check", f}).exit_code, 0);
  // Every write marked the image unclean while open; close cleared it.
  EXPECT_EQ(Json::parse(arche({"image", "info", "--json", f}).out)["dirty-flag"], false);
}

TEST(VmdkWrite, RandomWritesOnAChildKeepItsParent) {
  ARCHE_REQUIRE_PROGRAM("qemu-img");
  ARCHE_REQUIRE_PROGRAM("qemu-io");
  for (const char* zeroed : {"off", "on"}) {
    TempDir dir;
    const std::string base = dir.file("base.vmdk"), child = dir.file("child.vmdk");
    must({"qemu-img", "create", "-q", "-f", "vmdk", base, std::to_string(kSize)});
    must({"qemu-io", "-f", "vmdk", "-c", "write -P 0x5a 0 64M", base});
    const std::vector<uint8_t> parent = read_file(base);
    CommandResult c = arche({"image", "create", "-f", "vmdk", "-o", std::string("zeroed_grain=") + zeroed, "-b",
                             "base.vmdk", child});
    ASSERT_EQ(c.exit_code, 0) << c.err;
    std::vector<uint8_t> model(kSize, 0);
    std::memset(model.data(), 0x5a, 64 << 20);
    random_writes_against_model(child, model, 7, 200);
    EXPECT_TRUE(read_file(base) == parent) << "the parent changed";
    write_file(dir.file("model.raw"), model);
    must({"qemu-img", "check", child});
    must({"qemu-img", "compare", "-f", "raw", "-F", "vmdk", dir.file("model.raw"), child});
  }
}

TEST(VmdkWrite, QemuSparseImageTakesArcheWrites) {
  ARCHE_REQUIRE_PROGRAM("qemu-img");
  TempDir dir;
  const std::string f = dir.file("q.vmdk");
  must({"qemu-img", "create", "-q", "-f", "vmdk", f, std::to_string(kSize)});
  std::vector<uint8_t> model(kSize, 0);
  random_writes_against_model(f, model, 99, 150);
  write_file(dir.file("model.raw"), model);
  must({"qemu-img", "check", f});
  must({"qemu-img", "compare", "-f", "raw", "-F", "vmdk", dir.file("model.raw"), f});
}

TEST(VmdkWrite, DescriptorFileSubformatsTakeWrites) {
  ARCHE_REQUIRE_PROGRAM("qemu-img");
  for (const char* subformat : {"monolithicFlat", "twoGbMaxExtentSparse", "twoGbMaxExtentFlat"}) {
    TempDir dir;
    const std::string f = dir.file("d.vmdk");
    must({"qemu-img", "create", "-q", "-f", "vmdk", "-o", std::string("subformat=") + subformat, f,
          std::to_string(kSize)});
    std::vector<uint8_t> model(kSize, 0);
    random_writes_against_model(f, model, 11, 120);
    write_file(dir.file("model.raw"), model);
    must({"qemu-img", "check", f});
    must({"qemu-img", "compare", "-f", "raw", "-F", "vmdk", dir.file("model.raw"), f});
  }
}

TEST(VmdkWrite, StreamIsWrittenFrontToBackOnly) {
  ARCHE_REQUIRE_PROGRAM("qemu-img");
  TempDir dir;
  const std::string f = dir.file("s.vmdk");
  ASSERT_EQ(arche({"image", "create", "-f", "vmdk", "-o", "subformat=streamOptimized", f, "8M"}).exit_code, 0);
  must({"qemu-img", "check", f});  // an empty stream is a complete image
  image::OpenOptions o;
  o.writable = true;
  {
    auto dev = image::open_image(f, o);
    EXPECT_TRUE(dev->sequential_writes_only());
    std::vector<uint8_t> a = random_bytes(100000, 5);
    dev->write(1 << 20, a);
    try {
      dev->write(0, a);
      ADD_FAILURE() << "a write before an earlier one was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.category(), ErrorCategory::usage);
      EXPECT_NE(std::string(e.what()).find("front to back"), std::string::npos) << e.what();
    }
    // flush() leaves a complete, valid stream behind. The device still holds its
    // write lock, so qemu-img must be told to share (-U) to look at it.
    dev->flush();
    must({"qemu-img", "check", "-U", f});
    std::vector<uint8_t> b(4096, 0x77);
    dev->write(7 << 20, b);
  }
  std::vector<uint8_t> want(8 << 20, 0);
  std::vector<uint8_t> a = random_bytes(100000, 5);
  std::memcpy(want.data() + (1 << 20), a.data(), a.size());
  std::memset(want.data() + (7 << 20), 0x77, 4096);
  write_file(dir.file("want.raw"), want);
  must({"qemu-img", "check", f});
  must({"qemu-img", "compare", "-f", "raw", "-F", "vmdk", dir.file("want.raw"), f});

  // A stream that holds data cannot be opened for writing.
  CommandResult r = arche({"image", "write", f, "0", "--pattern", "1", "--length", "512"});
  EXPECT_ONE_CLEAR_ERROR(r);
  EXPECT_NE(r.err.find("streamOptimized"), std::string::npos) << r.err;
}

TEST(VmdkWrite, QemuStreamIsReadOnlyAndConvertsToQcow2) {
  ARCHE_REQUIRE_PROGRAM("qemu-img");
  TempDir dir;
  const std::string src = dir.file("src.raw"), s = dir.file("q.vmdk");
  make_source(src, kSize);
  must({"qemu-img", "convert", "-O", "vmdk", "-o", "subformat=streamOptimized", src, s});
  CommandResult r = arche({"image", "write", s, "0", "--pattern", "1", "--length", "512"});
  EXPECT_ONE_CLEAR_ERROR(r);
  ASSERT_EQ(arche({"image", "convert", "-O", "qcow2", s, dir.file("out.qcow2")}).exit_code, 0);
  must({"qemu-img", "compare", "-f", "raw", "-F", "qcow2", src, dir.file("out.qcow2")});
  // Compressed grains are reported as such.
  Json map = Json::parse(arche({"image", "map", "--json", s}).out);
  bool compressed = false;
  for (const Json& e : map) compressed |= e["compressed"].get<bool>();
  EXPECT_TRUE(compressed);
}

TEST(VmdkWrite, MeasureCoversTheConversion) {
  TempDir dir;
  const std::string src = dir.file("src.raw");
  make_source(src, kSize);
  Json m = Json::parse(arche({"image", "measure", "--json", "-O", "vmdk", src}).out);
  ASSERT_EQ(arche({"image", "convert", "-O", "vmdk", src, dir.file("o.vmdk")}).exit_code, 0);
  const uint64_t size = boost::filesystem::file_size(dir.file("o.vmdk"));
  EXPECT_GE(m["required"].get<uint64_t>(), size);
  // measure counts the written run of zeros (data to the file system) that the
  // conversion leaves out.
  EXPECT_LE(m["required"].get<uint64_t>(), size + (2 << 20));
  EXPECT_GE(m["fully-allocated"].get<uint64_t>(), kSize);
}

}  // namespace
}  // namespace arche::test
