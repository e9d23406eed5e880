// VDI: qemu-made static and dynamic images read identically; arche-made images pass
// qemu-img check and compare; the write path against a model; damaged files fail
// with one clear error.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/endian.h"
#include "core/file.h"
#include "image/format.h"
#include "tests/image/vhd_vhdx_vdi_util.h"

namespace arche::test {
namespace {

using namespace foreign;
constexpr uint64_t kSize = 20 << 20;

class VdiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ARCHE_REQUIRE_PROGRAM("qemu-img");
    ARCHE_REQUIRE_PROGRAM("qemu-io");
    src = dir.file("src.raw");
    data_bytes = make_source(src, kSize, 3);
  }
  TempDir dir;
  std::string src;
  uint64_t data_bytes = 0;
};

TEST_F(VdiTest, QemuImagesReadIdentically) {
  for (std::string opt : {"static=off", "static=on"}) {
    SCOPED_TRACE(opt);
    const std::string img = dir.file("q.vdi");
    std::remove(img.c_str());
    qemu_img({"convert", "-f", "raw", "-O", "vdi", "-o", opt, src, img});
    qemu_io({"-f", "vdi", "-c", "write -P 0x5a 4095k 3k", "-c", "write -P 0x11 15M 4097", img});
    qemu_img({"convert", "-f", "vdi", "-O", "raw", img, dir.file("expected.raw")});
    auto r = arche({"image", "convert", "-O", "raw", img, dir.file("got.raw"), "--overwrite"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(files_equal(dir.file("expected.raw"), dir.file("got.raw")));
    auto j = nlohmann::json::parse(arche({"image", "info", "--json", img}).out);
    EXPECT_EQ(j["virtual-size"], qemu_virtual_size(img, "vdi"));
    EXPECT_EQ(j["format-specific"]["data"]["subformat"], opt == "static=on" ? "static" : "dynamic");
  }
}

TEST_F(VdiTest, ArcheImagesSatisfyQemu) {
  for (std::string opt : {"static=off", "static=on"}) {
    SCOPED_TRACE(opt);
    const std::string img = dir.file("a.vdi");
    std::remove(img.c_str());
    auto r = arche({"image", "convert", "-O", "vdi", "-o", opt, src, img});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    qemu_img({"check", img});
    EXPECT_EQ(run({"qemu-img", "compare", src, img}).exit_code, 0);
    EXPECT_EQ(qemu_virtual_size(img, "vdi"), kSize);
    // Static images have every block in the file.
    auto info = nlohmann::json::parse(arche({"image", "info", "--json", img}).out)["format-specific"]["data"];
    if (opt == "static=on") {
      EXPECT_EQ(info["allocated-blocks"], info["blocks"]);
      EXPECT_EQ(File::open(img, OpenMode::read_only).size(), (1u << 20) + kSize);
    } else {
      EXPECT_LT(info["allocated-blocks"].get<uint64_t>(), info["blocks"].get<uint64_t>());
      EXPECT_LE(allocated_bytes(img), data_bytes * 11 / 10) << "dynamic VDI is not sparse";
    }
    // qemu sees the subformat: every block of a static image is allocated.
    if (opt == "static=on") {
      EXPECT_EQ(qemu_data_bytes(img, "vdi"), kSize);
    } else {
      EXPECT_LT(qemu_data_bytes(img, "vdi"), kSize);
    }
    {
      auto m = nlohmann::json::parse(arche({"image", "measure", "--json", "-O", "vdi", src, "-o", opt}).out);
      const uint64_t file_size = File::open(img, OpenMode::read_only).size();
      EXPECT_GE(m["required"].get<uint64_t>(), file_size) << "measure under-estimates";
      EXPECT_LE(m["required"].get<uint64_t>(), file_size + (4u << 20)) << "measure over-estimates";
      EXPECT_GE(m["fully-allocated"].get<uint64_t>(), m["required"].get<uint64_t>());
    }
    EXPECT_EQ(arche({"image", "check", img}).exit_code, 0);
  }
}

TEST_F(VdiTest, RandomWritesMatchModelAndQemu) {
  for (std::string opt : {"static=off", "static=on"}) {
    SCOPED_TRACE(opt);
    const std::string img = dir.file("w.vdi");
    std::remove(img.c_str());
    ASSERT_EQ(arche({"image", "create", "-f", "vdi", img, "30M", "-o", opt}).exit_code, 0);
    std::vector<uint8_t> model;
    random_write_exercise(img, "vdi", 19, 60, model);
    if (HasFatalFailure()) return;
    write_file(dir.file("model.raw"), model);
    qemu_img({"check", img});
    EXPECT_EQ(run({"qemu-img", "compare", "-F", "vdi", dir.file("model.raw"), img}).exit_code, 0);
  }
}

TEST_F(VdiTest, DamagedImagesFailCleanly) {
  const std::string good = dir.file("good.vdi");
  ASSERT_EQ(arche({"image", "convert", "-O", "vdi", src, good}).exit_code, 0);
  const std::vector<uint8_t> bytes = read_file(good);
  auto variant = [&](const std::string& name, auto mutate) {
    std::vector<uint8_t> b = bytes;
    mutate(b);
    write_file(dir.file(name), b);
    return dir.file(name);
  };
  const uint32_t map_at = load_le32(bytes.data() + 340);
  expect_clean_failure(arche({"image", "info", "-f", "vdi", variant("cut.vdi", [](auto& b) { b.resize(b.size() - 300000); })}),
                       "outside");
  expect_clean_failure(arche({"image", "info", "-f", "vdi", variant("garbage.vdi", [](auto& b) {
                                for (size_t i = 0; i < 512; ++i) b[i] = static_cast<uint8_t>(i * 13);
                              })}),
                       "not a VDI");
  expect_clean_failure(arche({"image", "info", variant("blocksize.vdi", [](auto& b) { store_le32(b.data() + 376, 12345); })}),
                       "block size");
  expect_clean_failure(arche({"image", "info", variant("blocks.vdi", [](auto& b) { store_le32(b.data() + 384, 0x7fffffff); })}),
                       "blocks");
  expect_clean_failure(arche({"image", "info", variant("map.vdi", [&](auto& b) { store_le32(b.data() + map_at, 17); })}),
                       "outside");
  expect_clean_failure(arche({"image", "info", variant("twice.vdi", [&](auto& b) {
                                store_le32(b.data() + map_at + 4, load_le32(b.data() + map_at));
                              })}),
                       "used twice");
}

}  // namespace
}  // namespace arche::test
