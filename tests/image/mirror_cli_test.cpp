// The mirror through the command line: `arche raid ...` as docs/cli.md writes it,
// and `mirror:A+B` wherever an image command, an overlay or a backup takes an image.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "core/file.h"
#include "image/mirror/assemble.h"
#include "tests/image/mirror_test_util.h"

namespace arche::test {
namespace {

using nlohmann::json;

CommandResult ok(const std::vector<std::string>& args) {
  CommandResult r = arche(args);
  std::string line;
  for (const auto& a : args) line += " " + a;
  EXPECT_EQ(r.exit_code, 0) << "arche" << line << "\n" << r.err;
  return r;
}

TEST(MirrorCli, CreateStatusFailRemoveAddThroughTheCommandLine) {
  TempDir dir;
  const std::string a = dir.file("a.raw"), b = dir.file("b.raw"), c = dir.file("c.raw");
  CommandResult r = ok({"raid", "create", a, b, "--size", "16M", "--region-size", "1M", "--checksum", "crc32c"});
  EXPECT_NE(r.out.find("created mirror:"), std::string::npos) << r.out;
  EXPECT_GE(File::open(b, OpenMode::read_only).size(), 16u << 20);
  const std::string m = image::mirror::mirror_name({a, b});

  json j = json::parse(ok({"raid", "status", "--json", b}).out);
  EXPECT_EQ(j["state"], "clean");
  EXPECT_EQ(j["size"], 16u << 20);
  EXPECT_EQ(j["checksum"], "crc32c");
  EXPECT_EQ(j["region-size"], 1u << 20);
  ASSERT_EQ(j["legs"].size(), 2u);
  EXPECT_EQ(j["legs"][0]["state"], "active");
  EXPECT_TRUE(j["last-rebuild"].is_null());
  r = ok({"raid", "status", a});
  EXPECT_NE(r.out.find("state: clean"), std::string::npos) << r.out;

  ok({"image", "write", m, "1M", "--pattern", "0x5a", "--length", "2M"});
  ok({"raid", "fail", a, b});
  j = json::parse(ok({"raid", "status", "--json", a}).out);
  EXPECT_EQ(j["state"], "degraded");
  EXPECT_EQ(j["legs"][1]["state"], "failed");
  // Degraded writes, through the remaining leg's name with the mirror format.
  ok({"image", "write", "-f", "mirror", a, "8M", "--pattern", "0x77", "--length", "64K"});
  r = arche({"raid", "remove", a, a});
  EXPECT_EQ(r.exit_code, 64) << "the last leg in sync cannot be removed";
  ok({"raid", "remove", a, b});
  ok({"raid", "add", a, "1", c});
  j = json::parse(ok({"raid", "status", "--json", c}).out);
  EXPECT_EQ(j["state"], "clean");
  EXPECT_EQ(j["last-rebuild"]["bytes-written"], (2u << 20) + (64u << 10));
  // Both legs hold the data at the guest's offsets, as plain images.
  std::vector<uint8_t> want(16 << 20, 0);
  std::fill(want.begin() + (1 << 20), want.begin() + (3 << 20), 0x5a);
  std::fill(want.begin() + (8 << 20), want.begin() + (8 << 20) + (64 << 10), 0x77);
  EXPECT_TRUE(leg_data(a, want.size()) == want);
  EXPECT_TRUE(leg_data(c, want.size()) == want);
  // b.raw was removed: a plain image that no longer names the array.
  r = arche({"raid", "status", b});
  EXPECT_EQ(r.exit_code, 65) << r.err;
}

TEST(MirrorCli, ImageCommandsTakeMirrorNames) {
  TempDir dir;
  const std::string a = dir.file("a.raw"), b = dir.file("b.qcow2");
  ARCHE_REQUIRE_PROGRAM("qemu-img");
  ASSERT_EQ(qemu_img({"create", "-q", "-f", "qcow2", b, "20M"}).exit_code, 0);
  ok({"raid", "create", a, b, "--size", "16M"});
  const std::string m = "mirror:" + a + "+" + b;
  ok({"image", "write", m, "4M", "--pattern", "0x11", "--length", "1M"});
  ok({"image", "write", m, "12M", "--zeroes", "--length", "1M"});

  json info = json::parse(ok({"image", "info", "--json", m}).out);
  EXPECT_EQ(info["format"], "mirror");
  EXPECT_EQ(info["virtual-size"], 16u << 20);
  EXPECT_EQ(info["format-specific"]["data"]["legs"].size(), 2u);

  json map = json::parse(ok({"image", "map", "--json", m}).out);
  bool found = false;
  for (const auto& e : map)
    if (e["start"] == 4u << 20 && e["data"] == true) found = true;
  EXPECT_TRUE(found) << map.dump();

  CommandResult r = ok({"image", "read", m, "4M", "16", "--to", dir.file("bytes")});
  EXPECT_EQ(read_file(dir.file("bytes")), std::vector<uint8_t>(16, 0x11));

  // Convert out of the mirror; qemu-img agrees with every leg read as a plain image.
  ok({"image", "convert", "-O", "qcow2", m, dir.file("out.qcow2")});
  EXPECT_EQ(arche({"image", "compare", m, dir.file("out.qcow2")}).exit_code, 0);
  std::vector<uint8_t> copy = read_all_qemu(dir.file("out.qcow2"), dir.path());
  EXPECT_TRUE(leg_data(a, 16 << 20) == copy);
  EXPECT_TRUE(leg_data(b, 16 << 20) == copy);

  // An overlay on the mirror: the mirror is a leaf layer, its legs are no backing files.
  ok({"image", "create", "-f", "qcow2", "-b", m, "-F", "mirror", dir.file("top.qcow2")});
  ok({"image", "write", dir.file("top.qcow2"), "0", "--pattern", "0x22", "--length", "4K"});
  json chain = json::parse(ok({"image", "info", "--backing-chain", "--json", dir.file("top.qcow2")}).out);
  ASSERT_EQ(chain.size(), 2u);
  EXPECT_EQ(chain[1]["format"], "mirror");
  ok({"image", "read", dir.file("top.qcow2"), "4M", "16", "--to", dir.file("bytes2")});
  EXPECT_EQ(read_file(dir.file("bytes2")), std::vector<uint8_t>(16, 0x11));
}

TEST(MirrorCli, BackupOfAMirrorTracksAllLegs) {
  TempDir dir;
  const std::string a = dir.file("a.raw"), b = dir.file("b.raw"), repo = dir.file("repo");
  ok({"raid", "create", a, b, "--size", "8M"});
  const std::string m = "mirror:" + a + "+" + b;
  ok({"image", "write", m, "0", "--pattern", "0x33", "--length", "3M"});
  setenv("ARCHE_PASSPHRASE", "mirror test passphrase", 1);
  ok({"backup", "init", repo, "--kdf-memory", "8M", "--kdf-ops", "1"});
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));  // the legs' times settle (backup.md)
  json one = json::parse(ok({"backup", "create", "--json", repo + "::one", "--image", m}).out);
  EXPECT_EQ(one["images"][0]["bytes-read"], 3u << 20);
  // Nothing changed on any leg: the second backup reads nothing.
  json two = json::parse(ok({"backup", "create", "--json", repo + "::two", "--image", m}).out);
  EXPECT_EQ(two["images"][0]["bytes-read"], 0u);
  EXPECT_EQ(two["images"][0]["reused-chunks"], 8u);
  // A write through the mirror changes the layer: it is read again.
  ok({"image", "write", m, "5M", "--pattern", "0x44", "--length", "1M"});
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  json three = json::parse(ok({"backup", "create", "--json", repo + "::three", "--image", m}).out);
  EXPECT_EQ(three["images"][0]["bytes-read"], 4u << 20);
  const std::string name = three["images"][0]["name"];
  ok({"backup", "restore", repo + "::three", "--image", name, "--to", dir.file("restored.raw")});
  std::vector<uint8_t> want(8 << 20, 0);
  std::fill(want.begin(), want.begin() + (3 << 20), 0x33);
  std::fill(want.begin() + (5 << 20), want.begin() + (6 << 20), 0x44);
  EXPECT_EQ(read_file(dir.file("restored.raw")), want);
}

}  // namespace
}  // namespace arche::test
