// FAT volumes made by other products (../shared/fixtures/real-images, README
// there): dissect.fat's FAT12 floppy from mkfs.fat, Windows XP's FAT32 volumes
// from dosfstools' tests with the labels fatlabel reports, and an exFAT volume
// the reader must refuse by name. Skipped, with the reason, where absent.
#include <gtest/gtest.h>

#include <boost/filesystem.hpp>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/file.h"
#include "tests/volume/fat_xfs_test_util.h"
#include "volume/readers.h"

namespace arche::test {
namespace {

#define REAL_IMAGE(var, relative)                                                        \
  const std::string var = real_images_dir().empty() ? "" : real_images_dir() + relative; \
  if (var.empty() || !boost::filesystem::exists(var))                                    \
  GTEST_SKIP() << "real image " relative " absent (../shared/fixtures/real-images)"

// `xxd -a` hex dumps back to bytes ("OFFSET: hex hex ...  text"; skipped runs of
// zero lines are holes).
void undump(const std::string& xxd, const std::string& out) {
  std::ifstream in(xxd);
  File f = File::open(out, OpenMode::create_new);
  uint64_t end = 0;
  for (std::string line; std::getline(in, line);) {
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    uint64_t at = std::stoull(line.substr(0, colon), nullptr, 16);
    std::vector<uint8_t> bytes;
    // Up to 16 bytes in groups of 4 hex digits, then two spaces and the text column.
    std::string hex = line.substr(colon + 2);
    hex = hex.substr(0, hex.find("  "));
    for (size_t i = 0; i + 1 < hex.size(); ++i) {
      if (hex[i] == ' ') continue;
      bytes.push_back(static_cast<uint8_t>(std::stoul(hex.substr(i, 2), nullptr, 16)));
      ++i;
    }
    f.write_all(at, bytes);
    end = std::max(end, at + bytes.size());
  }
  f.truncate(end);
}

std::string text_of(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  std::string t = s.str();
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  return t;
}

// The P2V property on a volume fsck may already complain about (Windows XP left
// the boot sector's label empty): its used ranges alone get the same verdict.
void expect_copy_checks_as_original(const std::string& image, volume::Filesystem& fs, const std::string& copy) {
  copy_ranges(image, copy, fs.used_ranges());
  CommandResult original = run({"fsck.vfat", "-n", image}), copied = run({"fsck.vfat", "-n", copy});
  EXPECT_EQ(copied.exit_code, original.exit_code);
  auto without_name = [](std::string out, const std::string& name) {
    for (size_t at; (at = out.find(name)) != std::string::npos;) out.erase(at, name.size());
    return out;
  };
  EXPECT_EQ(without_name(copied.out, copy), without_name(original.out, image));
}

std::string blkid_value(const std::string& image, const std::string& tag) {
  std::string v = run({"blkid", "-p", "-s", tag, "-o", "value", image}).out;
  while (!v.empty() && v.back() == '\n') v.pop_back();
  return v;
}

TEST(FatRealImages, DissectFat12FloppyListsAndReadsAsMtoolsDoes) {
  REAL_IMAGE(image, "/fox-it__dissect.fat/tests/_data/fat12.bin");
  auto fs = volume::open_fat(open_raw(image));
  EXPECT_EQ(fs->type(), "fat12");
  EXPECT_EQ(fs->label(), "VOLLAB1");
  EXPECT_EQ(fs->uuid(), "E038-BB7C");
  std::vector<std::string> names;
  for (const auto& e : fs->list("/")) names.push_back(e.name);
  EXPECT_EQ(names, (std::vector<std::string>{"file1.txt", "file2.txt", "subdir1"}));
  ASSERT_EQ(fs->list("/subdir1").size(), 1u);
  EXPECT_EQ(fs->list("/subdir1")[0].name, "file3.txt");
  for (const char* path : {"/file1.txt", "/file2.txt", "/subdir1/file3.txt"}) {
    SCOPED_TRACE(path);
    const std::string expected =
        run_ok({"env", "MTOOLS_SKIP_CHECK=1", "mtype", "-i", image, std::string("::") + path}).out;
    std::vector<uint8_t> data(4096);
    data.resize(fs->read(path, 0, data));
    EXPECT_EQ(std::string(data.begin(), data.end()), expected);
    EXPECT_EQ(fs->stat(path).size, expected.size());
  }
  // mdir (TZ=UTC, as the reader reads FAT's local times) says 2021-07-15 13:17.
  EXPECT_EQ(fs->stat("/file2.txt").mtime_ns / 1'000'000'000 / 60, (1626307200 + 13 * 3600 + 17 * 60) / 60);
  TempDir dir;
  expect_copy_checks_as_original(image, *fs, dir.file("copy.img"));
}

TEST(FatRealImages, ExfatIsRefusedByName) {
  REAL_IMAGE(image, "/fox-it__dissect.fat/tests/_data/exfat.bin");
  try {
    volume::open_fat(open_raw(image));
    ADD_FAILURE() << "exFAT opened as FAT";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::format);
    EXPECT_NE(std::string(e.what()).find("exFAT"), std::string::npos) << e.what();
  }
}

TEST(FatRealImages, WindowsXpFat32LabelsAreWhatFatlabelAndBlkidSay) {
  REAL_IMAGE(folder, "/dosfstools__dosfstools/tests");
  TempDir dir;
  for (const char* name : {"label-fat32_xp_label1", "label-fat32_xp_none", "label-fat32_xp_none_dosfslabel_label1",
                           "label-fat32_xp_none_mlabel_label1"}) {
    SCOPED_TRACE(name);
    const std::string image = dir.file(std::string(name) + ".img");
    undump(folder + "/" + name + ".xxd", image);
    auto fs = volume::open_fat(open_raw(image));
    EXPECT_EQ(fs->type(), "fat32");
    // The label is the root directory's entry (a label only in the boot sector,
    // as old dosfslabel wrote it, is no label: fatlabel and blkid agree).
    EXPECT_EQ(fs->label(), text_of(folder + "/" + name + ".label"));
    EXPECT_EQ(fs->label(), blkid_value(image, "LABEL"));
    EXPECT_EQ(fs->uuid(), blkid_value(image, "UUID"));
    EXPECT_TRUE(fs->list("/").empty());
    expect_copy_checks_as_original(image, *fs, dir.file(std::string(name) + ".copy"));
  }
}

}  // namespace
}  // namespace arche::test
