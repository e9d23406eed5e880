// Images made by qemu-img (every variant the issue names) must read in arche exactly
// as `qemu-img convert -O raw` reads them, and arche's check must agree they are clean.
#include <gtest/gtest.h>

#include <set>

#include "core/json.h"

#include "image/format.h"
#include "tests/image/image_test_util.h"

namespace arche::test {
namespace {

struct Variant {
  std::string name;
  std::string create_options;  // -o for qemu-img create
  std::string size = "64M";
};

// Writes data, zero clusters and discards at offsets that cross cluster and L2 boundaries.
void fill_with_qemu_io(const std::string& path) {
  CommandResult r = qemu_io(path, "qcow2",
                            {"write -P 0x11 0 1M", "write -P 0x22 3145215 70000", "write -P 0x33 33554432 4096",
                             "write -z 512k 128k", "write -z -u 8M 1M", "write -P 0x44 8M 4k", "discard 1M 64k",
                             "write -P 0x55 67043328 65536"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
}

void PrintTo(const Variant& v, std::ostream* os) { *os << v.name; }

class QemuMadeImage : public ::testing::TestWithParam<Variant> {};

TEST_P(QemuMadeImage, ReadsIdenticallyAndChecksClean) {
  ARCHE_REQUIRE_PROGRAM("qemu-img");
  TempDir dir;
  const Variant& v = GetParam();
  std::string img = dir.file(v.name + ".qcow2");
  std::vector<std::string> args{"create", "-q", "-f", "qcow2"};
  if (!v.create_options.empty()) args.insert(args.end(), {"-o", v.create_options});
  args.insert(args.end(), {img, v.size});
  CommandResult c = qemu_img(args);
  ASSERT_EQ(c.exit_code, 0) << c.err;
  fill_with_qemu_io(img);

  std::vector<uint8_t> expected = read_all_qemu(img, dir.path());
  EXPECT_EQ(read_all_arche(img), expected);

  // The CLI path: convert to raw and compare bytes.
  CommandResult conv = arche({"image", "convert", "-O", "raw", img, dir.file("out.raw")});
  ASSERT_EQ(conv.exit_code, 0) << conv.err;
  EXPECT_EQ(read_file(dir.file("out.raw")), expected);

  CommandResult check = arche({"image", "check", img});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  EXPECT_NE(check.out.find("No errors were found"), std::string::npos) << check.out;
}

INSTANTIATE_TEST_SUITE_P(
    Variants, QemuMadeImage,
    ::testing::Values(Variant{"compat010", "compat=0.10"}, Variant{"compat11", "compat=1.1"},
                      Variant{"cluster512", "cluster_size=512"}, Variant{"cluster4k", "cluster_size=4096"},
                      Variant{"cluster64k", "cluster_size=65536"}, Variant{"cluster2m", "cluster_size=2M"},
                      Variant{"refcount1", "refcount_bits=1"}, Variant{"refcount64", "refcount_bits=64"},
                      Variant{"prealloc_metadata", "preallocation=metadata"},
                      Variant{"prealloc_full", "preallocation=full"},
                      Variant{"lazy_refcounts", "lazy_refcounts=on"},
                      Variant{"zstd_type", "compression_type=zstd"}),
    [](const auto& info) { return info.param.name; });

class QemuCompressed : public ::testing::TestWithParam<std::string> {};

TEST_P(QemuCompressed, ReadsIdentically) {
  ARCHE_REQUIRE_PROGRAM("qemu-img");
  TempDir dir;
  // Compressible text, random data and holes.
  std::vector<uint8_t> raw(32 << 20, 0);
  for (size_t i = 0; i < (8u << 20); ++i) raw[i] = static_cast<uint8_t>("invoice line 42\n"[i % 16]);
  std::vector<uint8_t> noise = random_bytes(4 << 20, 3);
  std::copy(noise.begin(), noise.end(), raw.begin() + (20 << 20));
  write_file(dir.file("src.raw"), raw);
  for (std::string cluster : {"4096", "65536", "2M"}) {
    std::string img = dir.file("c" + cluster + ".qcow2");
    CommandResult c = qemu_img({"convert", "-c", "-O", "qcow2", "-o",
                                "compression_type=" + GetParam() + ",cluster_size=" + cluster, dir.file("src.raw"), img});
    ASSERT_EQ(c.exit_code, 0) << c.err;
    EXPECT_EQ(read_all_arche(img), raw) << "cluster size " << cluster;
    CommandResult check = arche({"image", "check", "--json", img});
    EXPECT_EQ(check.exit_code, 0) << check.out;
    auto j = nlohmann::json::parse(check.out);
    EXPECT_GT(j["compressed-clusters"].get<uint64_t>(), 0u) << "cluster size " << cluster;
  }
}

INSTANTIATE_TEST_SUITE_P(Types, QemuCompressed, ::testing::Values("zlib", "zstd"));

TEST(QemuMadeChain, SixLayersReadIdentically) {
  ARCHE_REQUIRE_PROGRAM("qemu-img");
  TempDir dir;
  write_file(dir.file("base.raw"), random_bytes(16 << 20, 11));
  std::string below = "base.raw", below_format = "raw";
  const char* clusters[] = {"65536", "4096", "2M", "512", "65536"};
  for (int layer = 1; layer <= 5; ++layer) {
    std::string name = "layer" + std::to_string(layer) + ".qcow2";
    // The third layer grows the disk past its backing file.
    std::string size = layer >= 3 ? "24M" : "16M";
    CommandResult c = qemu_img({"create", "-q", "-f", "qcow2", "-o", std::string("cluster_size=") + clusters[layer - 1],
                                "-b", below, "-F", below_format, dir.file(name), size});
    ASSERT_EQ(c.exit_code, 0) << c.err;
    std::string offset = std::to_string(layer * 1000003);
    ASSERT_EQ(qemu_io(dir.file(name), "qcow2",
                      {"write -P " + std::to_string(layer) + " " + offset + " 300000",
                       "write -z " + std::to_string(layer * 2 << 20) + " 65536"})
                  .exit_code,
              0);
    below = name;
    below_format = "qcow2";
  }
  std::string top = dir.file("layer5.qcow2");
  std::vector<uint8_t> expected = read_all_qemu(top, dir.path());
  auto dev = image::open_image(top);
  EXPECT_EQ(image::chain_length(*dev), 6);
  EXPECT_EQ(read_all(*dev), expected);

  // map covers the disk exactly and names layers at several depths.
  std::set<int> depths;
  uint64_t covered = 0;
  for (const image::Extent& e : dev->map()) {
    EXPECT_EQ(e.offset, covered);
    covered += e.length;
    depths.insert(e.depth);
  }
  EXPECT_EQ(covered, dev->size());
  EXPECT_GE(depths.size(), 4u);
}

TEST(QemuMadeSnapshots, InternalSnapshotsAreListedAndActiveStateRead) {
  ARCHE_REQUIRE_PROGRAM("qemu-img");
  TempDir dir;
  std::string img = dir.file("snap.qcow2");
  ASSERT_EQ(qemu_img({"create", "-q", "-f", "qcow2", img, "8M"}).exit_code, 0);
  ASSERT_EQ(qemu_io(img, "qcow2", {"write -P 0xaa 0 1M"}).exit_code, 0);
  ASSERT_EQ(qemu_img({"snapshot", "-c", "before-update", img}).exit_code, 0);
  ASSERT_EQ(qemu_io(img, "qcow2", {"write -P 0xbb 512k 1M"}).exit_code, 0);
  ASSERT_EQ(qemu_img({"snapshot", "-c", "after-update", img}).exit_code, 0);

  EXPECT_EQ(read_all_arche(img), read_all_qemu(img, dir.path()));
  CommandResult info = arche({"image", "info", "--json", img});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  auto j = nlohmann::json::parse(info.out);
  ASSERT_EQ(j["snapshots"].size(), 2u);
  EXPECT_EQ(j["snapshots"][0]["name"], "before-update");
  EXPECT_EQ(j["snapshots"][1]["name"], "after-update");
  CommandResult check = arche({"image", "check", img});
  EXPECT_EQ(check.exit_code, 0) << check.out;
}

}  // namespace
}  // namespace arche::test
