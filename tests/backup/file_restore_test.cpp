// Issue 11, acceptance 1: files out of image backups and file backups. The disks
// are made at test time with the real tools (tests/volume/make_fixture.sh: GPT +
// ext4 via mkfs.ext4 -d; MBR with NTFS via mkntfs + ntfs-3g and FAT32 via mkfs.vfat
// + mcopy; LVM2 with an ext4 and an XFS LV), each holding the same tree (nested
// directories, a 105 MiB file, symlinks, non-ASCII names, fixed times). All three
// and the tree itself go into one snapshot; `backup ls` must show what was put in
// and `backup restore-file` must give the files back byte-identical with size,
// mode and mtime (as far as each file system keeps them).
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/filesystem.hpp>
#include <set>

#include <gtest/gtest.h>

#include "core/json.h"
#include "tests/backup/backup_test_util.h"
#include "tests/volume/volume_test_util.h"

namespace arche::backup::test {
namespace {

using volume::testing::make_fixture;

std::vector<std::string> cat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

bool can_fill_ntfs() { return arche::test::is_root() && ::access("/dev/fuse", R_OK | W_OK) == 0; }

// What a file system keeps of the host tree.
struct Keeps {
  bool mode = true, owner = true, symlinks = true;
};

std::vector<std::string> names_in(const std::string& dir, bool with_symlinks) {
  std::vector<std::string> out;
  for (const auto& e : boost::filesystem::directory_iterator(dir)) {
    if (!with_symlinks && boost::filesystem::is_symlink(e.symlink_status())) continue;
    out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Every entry of `host` is in `restored` with the same type, size, bytes, mtime
// (seconds) and, as far as kept, mode, owner and link target; directories hold the
// same names. Returns the number of regular files compared.
size_t expect_restored(const std::string& host, const std::string& restored, const Keeps& keeps) {
  size_t files = 0;
  const std::vector<std::string> names = names_in(host, keeps.symlinks);
  EXPECT_EQ(names, names_in(restored, true)) << host << " vs " << restored;
  for (const std::string& n : names) {
    const std::string a = host + "/" + n, b = restored + "/" + n;
    struct stat sa {}, sb {};
    if (::lstat(b.c_str(), &sb) != 0 || ::lstat(a.c_str(), &sa) != 0) continue;  // reported above
    SCOPED_TRACE(b);
    EXPECT_EQ(sa.st_mode & S_IFMT, sb.st_mode & S_IFMT);
    if (keeps.mode && !S_ISLNK(sa.st_mode)) {
      EXPECT_EQ(sa.st_mode & 07777, sb.st_mode & 07777);
    }
    if (keeps.owner && arche::test::is_root()) {
      EXPECT_EQ(sa.st_uid, sb.st_uid);
      EXPECT_EQ(sa.st_gid, sb.st_gid);
    }
    if (!S_ISLNK(sa.st_mode)) {
      EXPECT_EQ(sa.st_mtim.tv_sec, sb.st_mtim.tv_sec);
    }
    if (S_ISDIR(sa.st_mode)) {
      files += expect_restored(a, b, keeps);
    } else if (S_ISLNK(sa.st_mode)) {
      EXPECT_EQ(boost::filesystem::read_symlink(a), boost::filesystem::read_symlink(b));
    } else if (S_ISREG(sa.st_mode)) {
      EXPECT_EQ(sa.st_size, sb.st_size);
      EXPECT_TRUE(same_content(a, b)) << "contents differ";
      ++files;
    }
  }
  return files;
}

// The disks and the host tree in one snapshot. The fixtures take a while to make
// and back up, so the checks on them are few tests with many parts (ctest runs each
// test in a process of its own).
class FilesOutOfBackups : public ::testing::Test {
 protected:
  void SetUp() override { use_passphrase(); }

  // GPT + ext4 always; with `all`, LVM2 (root: loop devices) and MBR with NTFS and FAT32.
  void make(bool all) {
    make_fixture({"stage", stage()});
    make_fixture({"gpt-ext4", dir_.file("gpt.raw"), stage()});
    std::vector<std::string> args{repo(), "--image", dir_.file("gpt.raw")};
    if (all) {
      vg_ = make_fixture({"lvm", dir_.file("lvm.raw"), stage()});
      args.insert(args.end(), {"--image", dir_.file("lvm.raw")});
      if (can_fill_ntfs()) {
        make_fixture({"mbr", dir_.file("mbr.raw"), stage()});
        args.insert(args.end(), {"--image", dir_.file("mbr.raw")});
      }
    }
    args.push_back(stage());
    init_repo(dir_.file("repo"));
    backup_ok(cat({"create"}, args));
  }

  std::string repo() const { return dir_.file("repo") + "::nightly"; }
  std::string stage() const { return dir_.file("stage"); }
  Json ls(const std::vector<std::string>& path) {
    CommandResult r = backup_ok(cat({"ls", "--json", repo()}, path));
    return Json::parse(r.out);
  }
  // restore-file into a fresh directory; returns it.
  std::string restore(const std::vector<std::string>& paths) {
    const std::string to = dir_.file("to" + std::to_string(++restores_));
    CommandResult r = backup_ok(cat(cat({"restore-file", "--json", repo()}, paths), {"--to", to}));
    last_ = r.out.empty() ? Json() : Json::parse(r.out);
    return to;
  }

 public:  // (the test bodies take their addresses)
  // The parts of the tests below.
  void SnapshotListingShowsImagesPartitionsAndFileSystems();
  void DirectoryListingsMatchWhatWasPutIn();
  void Ext4PartitionOfAGptDisk();
  void Ext4AndXfsLogicalVolumes();
  void NtfsAndFat32PartitionsOfAnMbrDisk();
  void FilesOfAFileBackup();
  void OneFileReadsOnlyWhatHoldsIt();
  void WrongAddressesAreOneClearError();

  TempDir dir_;
  std::string vg_;
  int restores_ = 0;
  Json last_;
};

const Json* volume_named(const Json& image, const std::string& address) {
  for (const Json& v : image["volumes"])
    if (v["address"] == address) return &v;
  ADD_FAILURE() << "no volume " << address << " in " << image.dump();
  return nullptr;
}

void FilesOutOfBackups::SnapshotListingShowsImagesPartitionsAndFileSystems() {
  Json j = ls({});
  EXPECT_EQ(j["snapshot"], "nightly");
  std::set<std::string> names;
  for (const Json& i : j["images"]) names.insert(i["name"].get<std::string>());
  EXPECT_TRUE(names.count("gpt.raw") && names.count("lvm.raw")) << j.dump();
  EXPECT_FALSE(j["files"].is_null()) << "the snapshot holds files too";

  Json gpt = ls({"gpt.raw"})["image"];
  EXPECT_EQ(gpt["size"], 320u << 20);
  if (const Json* p1 = volume_named(gpt, "gpt.raw/p1")) {
    EXPECT_EQ((*p1)["fs"], "ext4");
    EXPECT_EQ((*p1)["label"], "wurzel");
    EXPECT_EQ((*p1)["uuid"], "5b3e2f5e-8d1f-4f6a-9a51-1c2b3d4e5f60");
    EXPECT_EQ((*p1)["type"], "Linux filesystem");
    EXPECT_EQ((*p1)["partition-name"], "daten");
  }
  if (const Json* p2 = volume_named(gpt, "gpt.raw/p2")) {
    EXPECT_EQ((*p2)["fs"], "swap");
    EXPECT_FALSE((*p2)["browsable"].get<bool>());
  }

  Json lvm = ls({"lvm.raw"})["image"];
  if (const Json* root = volume_named(lvm, "lvm.raw/" + vg_ + "/root")) {
    EXPECT_EQ((*root)["fs"], "ext4");
    EXPECT_EQ((*root)["label"], "lvroot");
  }
  if (const Json* data = volume_named(lvm, "lvm.raw/" + vg_ + "/data")) {
    EXPECT_EQ((*data)["fs"], "xfs");
    EXPECT_EQ((*data)["label"], "xfsdaten");
  }

  if (!can_fill_ntfs()) return;
  Json mbr = ls({"mbr.raw"})["image"];
  if (const Json* p1 = volume_named(mbr, "mbr.raw/p1")) {
    EXPECT_EQ((*p1)["fs"], "ntfs");
    EXPECT_EQ((*p1)["label"], "Daten");
  }
  if (const Json* p5 = volume_named(mbr, "mbr.raw/p5")) {
    EXPECT_EQ((*p5)["fs"], "fat32");
    EXPECT_EQ((*p5)["label"], "DATEN");
  }
}

// A directory listing gives what the host directory holds: names (non-ASCII ones
// too), types, sizes, modes, owners and mtimes, link targets.
void FilesOutOfBackups::DirectoryListingsMatchWhatWasPutIn() {
  const std::string host = stage() + "/home/kunde";
  auto check = [&](const std::string& address, const Keeps& keeps) {
    SCOPED_TRACE(address);
    Json j = ls({address});
    EXPECT_TRUE(j["directory"].get<bool>());
    std::vector<std::string> listed;
    for (const Json& e : j["entries"]) {
      const std::string name = e["name"];
      if (name == "lost+found") continue;
      listed.push_back(name);
      struct stat st {};
      ASSERT_EQ(::lstat((host + "/" + name).c_str(), &st), 0) << name;
      EXPECT_EQ(e["mtime-ns"].get<int64_t>() / 1000000000, st.st_mtim.tv_sec) << name;
      if (S_ISREG(st.st_mode)) {
        EXPECT_EQ(e["size"], st.st_size) << name;
      }
      if (keeps.mode && !S_ISLNK(st.st_mode)) {
        EXPECT_EQ(e["mode"], fmt::format("{:04o}", st.st_mode & 07777)) << name;
      }
      if (keeps.owner) {
        EXPECT_EQ(e["uid"], st.st_uid) << name;
      }
      if (S_ISLNK(st.st_mode)) {
        EXPECT_EQ(e["target"], boost::filesystem::read_symlink(host + "/" + name).string());
      }
    }
    EXPECT_EQ(listed, names_in(host, keeps.symlinks));
  };
  check("gpt.raw/p1/home/kunde", {});
  check("lvm.raw/" + vg_ + "/root/home/kunde", {});
  check("lvm.raw/" + vg_ + "/data/home/kunde", {});
  check(host, {});  // the file backup
  Json one = ls({"gpt.raw/p1/home/kunde/Dokumente/Bücher_Übersicht_ß.txt"});
  EXPECT_FALSE(one["directory"].get<bool>());
  ASSERT_EQ(one["entries"].size(), 1u);
  EXPECT_EQ(one["entries"][0]["size"], 19u);
  EXPECT_EQ(one["volume"], "p1");
  EXPECT_EQ(one["fs"], "ext4");
  if (!can_fill_ntfs()) return;
  check("mbr.raw/p1/home/kunde", {.mode = false, .owner = false, .symlinks = true});
  check("mbr.raw/p5/home/kunde", {.mode = false, .owner = false, .symlinks = false});
}

void FilesOutOfBackups::Ext4PartitionOfAGptDisk() {
  const std::string to = restore({"gpt.raw/p1/home", "gpt.raw/p1/etc"});
  EXPECT_EQ(expect_restored(stage() + "/home", to + "/home", {}), 5u);
  expect_restored(stage() + "/etc", to + "/etc", {});
  EXPECT_GT(last_["bytes"].get<uint64_t>(), 105u << 20);
}

void FilesOutOfBackups::Ext4AndXfsLogicalVolumes() {
  std::string to = restore({"lvm.raw/" + vg_ + "/root/home"});
  EXPECT_EQ(expect_restored(stage() + "/home", to + "/home", {}), 5u);
  // A file system's root: its contents go into DIR.
  to = restore({"lvm.raw/" + vg_ + "/data"});
  EXPECT_EQ(expect_restored(stage(), to, {}), 7u);
}

void FilesOutOfBackups::NtfsAndFat32PartitionsOfAnMbrDisk() {
  if (!can_fill_ntfs()) return;
  std::string to = restore({"mbr.raw/p1/home"});
  EXPECT_GE(expect_restored(stage() + "/home", to + "/home", {.mode = false, .owner = false, .symlinks = true}), 5u);
  to = restore({"mbr.raw/p5/home"});
  EXPECT_GE(expect_restored(stage() + "/home", to + "/home", {.mode = false, .owner = false, .symlinks = false}), 5u);
}

void FilesOutOfBackups::FilesOfAFileBackup() {
  const std::string to = restore({stage() + "/home/kunde", stage() + "/etc/absolut"});
  EXPECT_EQ(expect_restored(stage() + "/home/kunde", to + "/kunde", {}), 5u);
  EXPECT_EQ(boost::filesystem::read_symlink(to + "/absolut"), "/etc/app/config.ini");
}

// One small file out of a snapshot of ~700 MiB reads a few chunks: its own and the
// metadata on the way, not the image (the count is the device's, not a timing).
void FilesOutOfBackups::OneFileReadsOnlyWhatHoldsIt() {
  const std::string to = restore({"gpt.raw/p1/home/kunde/wichtig.txt"});
  EXPECT_TRUE(same_content(stage() + "/home/kunde/wichtig.txt", to + "/wichtig.txt"));
  const uint64_t read = last_["repository-bytes-read"].get<uint64_t>();
  EXPECT_GT(read, 0u);
  EXPECT_LT(read, 16u << 20) << "the partition holds a 105 MiB file that must not be read";
}

void FilesOutOfBackups::WrongAddressesAreOneClearError() {
  CommandResult r = backup({"ls", repo(), "nope.raw/p1"});
  EXPECT_EQ(r.exit_code, 66) << r.err;  // not_found
  EXPECT_NE(r.err.find("no image 'nope.raw'"), std::string::npos) << r.err;
  r = backup({"ls", repo(), "gpt.raw/p7/home"});
  EXPECT_EQ(r.exit_code, 66) << r.err;
  EXPECT_NE(r.err.find("p1, p2"), std::string::npos) << "names what exists: " << r.err;
  r = backup({"ls", repo(), "gpt.raw/p2/x"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("swap"), std::string::npos) << r.err;
  r = backup({"restore-file", repo(), "gpt.raw", "--to", dir_.file("x")});
  EXPECT_EQ(r.exit_code, 64) << r.err;  // usage: a whole image is `backup restore --image`
  EXPECT_NE(r.err.find("backup restore --image"), std::string::npos) << r.err;
  EXPECT_FALSE(boost::filesystem::exists(dir_.file("x"))) << "nothing is written before every path resolved";
  r = backup({"restore-file", repo(), "gpt.raw/p1/home/kunde/wichtig.txt", "gpt.raw/p1/fehlt", "--to", dir_.file("y")});
  EXPECT_EQ(r.exit_code, 66) << r.err;
  EXPECT_FALSE(boost::filesystem::exists(dir_.file("y/wichtig.txt")));
}

TEST_F(FilesOutOfBackups, EveryFileSystemListsAndRestoresAsPutIn) {
  if (!arche::test::is_root()) GTEST_SKIP() << "the LVM2 fixture needs loop devices (root) for its PVs";
  if (!can_fill_ntfs()) std::fprintf(stderr, "note: no NTFS/FAT32 disk (filling NTFS needs ntfs-3g through FUSE)\n");
  make(true);
  for (auto [name, part] : std::vector<std::pair<const char*, void (FilesOutOfBackups::*)()>>{
           {"listing of the snapshot and its images", &FilesOutOfBackups::SnapshotListingShowsImagesPartitionsAndFileSystems},
           {"directory listings", &FilesOutOfBackups::DirectoryListingsMatchWhatWasPutIn},
           {"GPT + ext4", &FilesOutOfBackups::Ext4PartitionOfAGptDisk},
           {"LVM2 ext4 and XFS", &FilesOutOfBackups::Ext4AndXfsLogicalVolumes},
           {"MBR NTFS and FAT32", &FilesOutOfBackups::NtfsAndFat32PartitionsOfAnMbrDisk},
           {"file backup", &FilesOutOfBackups::FilesOfAFileBackup},
           {"bytes read for one file", &FilesOutOfBackups::OneFileReadsOnlyWhatHoldsIt}}) {
    SCOPED_TRACE(name);
    (this->*part)();
  }
}

TEST_F(FilesOutOfBackups, WrongAddressesAreOneClearErrorAndWriteNothing) {
  make(false);
  WrongAddressesAreOneClearError();
}

}  // namespace
}  // namespace arche::backup::test
