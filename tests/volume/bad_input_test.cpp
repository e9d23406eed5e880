// Damaged ext4 and NTFS volumes: every operation ends in success or one clear
// error, never a crash of the parent, never a hang. The walks run through the
// sandbox with a timeout, so a reader that loops would show up as that error.
#include <gtest/gtest.h>

#include <random>

#include "core/endian.h"
#include "core/file.h"
#include "core/error.h"
#include "tests/volume/volume_test_util.h"
#include "volume/sandbox.h"
#include "volume/tree.h"

namespace arche::volume {
namespace {

using testing::open_raw;

struct WalkResult {
  unsigned ok = 0, errors = 0;
  std::vector<std::string> messages;
};

// Lists, stats, reads and follows everything it can reach; records every error.
void walk(Filesystem& fs, const std::string& dir, WalkResult& r, int depth = 0) {
  auto attempt = [&](auto&& call) {
    try {
      call();
      ++r.ok;
      return true;
    } catch (const Error& e) {
      ++r.errors;
      r.messages.push_back(e.what());
      return false;
    }
  };
  std::vector<DirEntry> entries;
  if (!attempt([&] { entries = fs.list(dir); }) || depth > 8) return;
  std::vector<uint8_t> buf(1 << 20);
  for (const DirEntry& e : entries) {
    const std::string path = (dir == "/" ? "" : dir) + "/" + e.name;
    attempt([&] { fs.stat(path); });
    if (e.stat.type == FileType::directory) walk(fs, path, r, depth + 1);
    if (e.stat.type == FileType::regular)
      attempt([&] {
        for (uint64_t off = 0; off < std::min<uint64_t>(e.stat.size, 4 << 20); off += buf.size()) fs.read(path, off, buf);
      });
    if (e.stat.type == FileType::symlink) attempt([&] { fs.readlink(path); });
  }
}

// Opens the volume of `img` (one file system, or partition 1) and walks it.
WalkResult walk_image(const std::string& img) {
  WalkResult r;
  SandboxOptions o;
  o.timeout_seconds = 60;
  std::unique_ptr<Tree> tree = explore_sandboxed({{"bad.img", open_raw(img)}}, o);
  for (size_t i = 0; i < tree->volumes().size(); ++i) {
    if (!tree->volumes()[i].browsable) continue;
    Filesystem* fs = nullptr;
    try {
      fs = &tree->filesystem(i);
    } catch (const Error& e) {
      ++r.errors;
      r.messages.push_back(e.what());
      continue;
    }
    walk(*fs, "/", r);
    try {
      fs->used_ranges();
      ++r.ok;
    } catch (const Error& e) {
      ++r.errors;
      r.messages.push_back(e.what());
    }
  }
  return r;
}

void expect_clear(const WalkResult& r) {
  for (const std::string& m : r.messages) {
    EXPECT_EQ(m.find("did not answer"), std::string::npos) << "a reader hung: " << m;
    // Contained, but still a finding: a reader that crashes or makes a system
    // call outside the filter on bad input.
    EXPECT_EQ(m.find("crashed"), std::string::npos) << m;
    EXPECT_EQ(m.find("seccomp"), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << "one line: " << m;
    EXPECT_FALSE(m.empty());
  }
}

void sh(const std::string& script) {
  test::CommandResult r = test::run({"sh", "-c", script});
  ASSERT_EQ(r.exit_code, 0) << script << ": " << r.err;
}

std::string make_stage(const test::TempDir& dir) {
  const std::string stage = dir.file("stage");
  sh("mkdir -p " + stage + "/a/b/c && for i in $(seq 1 40); do head -c $((i * 3000)) /dev/urandom > " + stage +
     "/a/f$i; done && head -c 3M /dev/urandom > " + stage + "/a/b/gross && ln -s a/f1 " + stage + "/l");
  return stage;
}

void damage(const std::string& img, uint64_t offset, size_t length, std::mt19937_64& rng) {
  File f = File::open(img, OpenMode::read_write);
  std::vector<uint8_t> junk(length);
  for (uint8_t& b : junk) b = static_cast<uint8_t>(rng());
  f.write_all(offset, junk);
}

TEST(BadInput, DamagedExt4GivesClearErrorsNeverAHang) {
  test::TempDir dir;
  const std::string stage = make_stage(dir);
  const std::string pristine = dir.file("pristine.img");
  sh("truncate -s 32M " + pristine + " && mkfs.ext4 -q -b 1024 -d " + stage + " " + pristine);
  const std::vector<uint8_t> clean = test::read_file(pristine);
  const std::string img = dir.file("bad.img");
  std::mt19937_64 rng(20261201);
  unsigned errors = 0;
  // Whole metadata blocks, then the superblock, group descriptors and inode table.
  struct Hit {
    uint64_t offset;
    size_t length;
  };
  std::vector<Hit> hits = {{2048, 1024}, {1024 + 200, 100}, {0, 64 << 10}, {5 << 10, 4 << 10}};
  for (int i = 0; i < 24; ++i) hits.push_back({(rng() % (4 << 20)) & ~uint64_t{1023}, 1024 * (1 + rng() % 8)});
  for (const Hit& h : hits) {
    test::write_file(img, clean);
    damage(img, h.offset, h.length, rng);
    SCOPED_TRACE(fmt::format("{} bytes at {}", h.length, h.offset));
    WalkResult r = walk_image(img);
    expect_clear(r);
    errors += r.errors;
  }
  EXPECT_GT(errors, 0u) << "the damage was noticed somewhere";
  // A cut-off image.
  test::write_file(img, std::vector<uint8_t>(clean.begin(), clean.begin() + clean.size() / 3));
  expect_clear(walk_image(img));
}

TEST(BadInput, DamagedNtfsGivesClearErrorsNeverAHang) {
  test::TempDir dir;
  const std::string pristine = dir.file("pristine.img");
  sh("truncate -s 32M " + pristine + " && mkntfs -q -F -Q " + pristine + " >/dev/null 2>&1");
  for (int i = 0; i < 12; ++i) {
    const std::string f = dir.file("f" + std::to_string(i));
    sh("head -c " + std::to_string(1000 * (i + 1) * (i + 1)) + " /dev/urandom > " + f + " && ntfscp -q " + pristine +
       " " + f + " /datei" + std::to_string(i) + ".bin");
  }
  const std::vector<uint8_t> clean = test::read_file(pristine);
  // Where $MFT lies: boot sector, cluster size and MFT cluster number.
  const uint64_t cluster = uint64_t{load_le16(clean.data() + 11)} * clean[13];
  const uint64_t mft = load_le64(clean.data() + 0x30) * cluster;
  const std::string img = dir.file("bad.img");
  std::mt19937_64 rng(7);
  unsigned errors = 0;
  for (int i = 0; i < 28; ++i) {
    test::write_file(img, clean);
    // Records of $MFT itself, $MFTMirr, $LogFile, $Volume, the root, the files.
    const uint64_t record = i < 16 ? static_cast<uint64_t>(i) : 16 + rng() % 32;
    const uint64_t at = mft + record * 1024 + (rng() % 4) * 100;
    damage(img, at, 40 + rng() % 300, rng);
    if (i % 7 == 0) damage(img, rng() % clean.size(), 4096, rng);
    SCOPED_TRACE(fmt::format("record {}", record));
    WalkResult r = walk_image(img);
    expect_clear(r);
    errors += r.errors;
  }
  EXPECT_GT(errors, 0u);
}

}  // namespace
}  // namespace arche::volume
