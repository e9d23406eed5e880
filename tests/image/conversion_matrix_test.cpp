// Every format converts into every other: a source with data, runs of zeros and
// holes goes through each pair and ends equal to the original (arche reads it, and
// qemu-img compares it), and sparse outputs stay sparse.
#include <gtest/gtest.h>

#include <tuple>

#include "core/file.h"
#include "tests/image/image_test_util.h"

namespace arche::test {
namespace {

struct Format {
  std::string name;                  // for test names
  std::string format;                // -O
  std::vector<std::string> options;  // -o ...
  bool sparse;                       // output allocates only (about) what holds data
};

const std::vector<Format>& formats() {
  static const std::vector<Format> all = {
      {"raw", "raw", {}, true},
      {"qcow2", "qcow2", {}, true},
      {"vmdk_sparse", "vmdk", {"-o", "subformat=monolithicSparse"}, true},
      {"vmdk_stream", "vmdk", {"-o", "subformat=streamOptimized"}, true},
      {"vhd_fixed", "vpc", {"-o", "subformat=fixed,force_size=on"}, false},
      {"vhd_dynamic", "vpc", {"-o", "subformat=dynamic,force_size=on"}, true},
      {"vhdx", "vhdx", {}, true},
      {"vdi", "vdi", {}, true},
  };
  return all;
}

constexpr uint64_t kDisk = 48 << 20;

// 24 MiB of data in three places, zeros inside data, holes elsewhere. VHD keeps the
// exact size with force_size=on (otherwise it rounds up to a CHS geometry, as qemu).
// (The disk is no larger than that needs: the 64 pairs read and compare it whole.)
uint64_t make_source(const std::string& path) {
  std::vector<uint8_t> a = random_bytes(8 << 20, 1), b = random_bytes(8 << 20, 2), text(8 << 20);
  std::fill(a.begin() + (2 << 20), a.begin() + (4 << 20), 0);  // zero run inside data
  for (size_t i = 0; i < text.size(); ++i) text[i] = static_cast<uint8_t>("text "[i % 5]);
  File f = File::open(path, OpenMode::create_new);
  f.truncate(kDisk);
  f.write_all(1 << 20, a);
  f.write_all(20 << 20, b);
  f.write_all(36 << 20, text);
  return 22 << 20;  // bytes that are not zero
}

class ConversionMatrix : public ::testing::TestWithParam<std::tuple<size_t, size_t>> {};

TEST_P(ConversionMatrix, RoundTripsEqualAndSparse) {
  ARCHE_REQUIRE_PROGRAM("qemu-img");
  const Format& from = formats()[std::get<0>(GetParam())];
  const Format& to = formats()[std::get<1>(GetParam())];
  TempDir dir;
  uint64_t data = make_source(dir.file("orig.raw"));

  std::string src = dir.file("src." + from.name);
  std::vector<std::string> args{"image", "convert", "-f", "raw", "-O", from.format};
  args.insert(args.end(), from.options.begin(), from.options.end());
  args.insert(args.end(), {dir.file("orig.raw"), src});
  CommandResult r = arche(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;

  std::string dst = dir.file("dst." + to.name);
  args = {"image", "convert", "-f", from.format, "-O", to.format};
  args.insert(args.end(), to.options.begin(), to.options.end());
  args.insert(args.end(), {src, dst});
  r = arche(args);
  ASSERT_EQ(r.exit_code, 0) << from.name << " -> " << to.name << ": " << r.err;

  // (The format is given: a fixed VHD is raw data plus a footer, it cannot be probed.)
  EXPECT_EQ(read_all_arche(dst, to.format), read_file(dir.file("orig.raw"))) << from.name << " -> " << to.name;
  CommandResult cmp = qemu_img({"compare", "-f", "raw", "-F", to.format, dir.file("orig.raw"), dst});
  EXPECT_EQ(cmp.exit_code, 0) << from.name << " -> " << to.name << ": " << cmp.out << cmp.err;
  if (to.sparse) {
    uint64_t allocated = File::open(dst, OpenMode::read_only).allocated_bytes();
    EXPECT_LE(allocated, data * 11 / 10) << to.name << " output is not sparse: " << allocated << " bytes for "
                                         << data << " bytes of data";
  }
}

INSTANTIATE_TEST_SUITE_P(AllPairs, ConversionMatrix,
                         ::testing::Combine(::testing::Range<size_t>(0, 8), ::testing::Range<size_t>(0, 8)),
                         [](const auto& info) {
                           return formats()[std::get<0>(info.param)].name + "_to_" +
                                  formats()[std::get<1>(info.param)].name;
                         });

}  // namespace
}  // namespace arche::test
