// `arche image ls` and `arche image extract` as scripts and people call them.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "core/json.h"
#include "core/error.h"
#include "tests/volume/volume_test_util.h"

namespace arche::volume {
namespace {

class ImageCli : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string script =
        "set -e; s=" + stage + "; mkdir -p $s/home/kunde/tief $s/etc; printf 'Kundendaten\\n' > $s/home/kunde/wichtig.txt;"
        " chmod 0640 $s/home/kunde/wichtig.txt; head -c 300000 /dev/urandom > $s/home/kunde/tief/daten.bin;"
        " ln -s wichtig.txt $s/home/kunde/verweis; printf 'x\\n' > \"$s/etc/Grüße.conf\";"
        " find $s -mindepth 1 -depth -exec touch -h -d @1600000000 {} +;"
        " truncate -s 40M " + disk + "; printf 'label: gpt\\nsize=32M, type=L, name=daten\\n' | sfdisk -q " + disk + ";"
        " truncate -s 32M " + dir.file("p1") + "; mkfs.ext4 -q -L cli -d $s " + dir.file("p1") + ";"
        " dd if=" + dir.file("p1") + " of=" + disk + " bs=1M seek=1 conv=notrunc status=none;"
        " truncate -s 16M " + whole + "; mkfs.ext4 -q -L ganz -d $s " + whole;
    test::CommandResult r = test::run({"sh", "-c", script});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  test::TempDir dir;
  std::string stage = dir.file("stage"), disk = dir.file("disk.img"), whole = dir.file("whole.img");
};

TEST_F(ImageCli, LsListsVolumesAndDirectories) {
  test::CommandResult r = test::arche({"image", "ls", disk});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("p1"), std::string::npos);
  EXPECT_NE(r.out.find("Linux filesystem"), std::string::npos);
  EXPECT_NE(r.out.find("cli"), std::string::npos);

  r = test::arche({"image", "ls", "--json", disk});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json j = Json::parse(r.out);
  ASSERT_EQ(j["volumes"].size(), 2u);
  const Json& p1 = j["volumes"][1];
  EXPECT_EQ(p1["name"], "p1");
  EXPECT_EQ(p1["kind"], "partition");
  EXPECT_EQ(p1["fs"], "ext4");
  EXPECT_EQ(p1["label"], "cli");
  EXPECT_EQ(p1["partition-name"], "daten");
  EXPECT_EQ(p1["offset"], 1 << 20);
  EXPECT_EQ(p1["size"], 32 << 20);
  EXPECT_TRUE(p1["browsable"].get<bool>());
  EXPECT_TRUE(p1["unsupported"].is_null());
  EXPECT_GT(p1["used"].get<uint64_t>(), 300000u);

  r = test::arche({"image", "ls", "--json", disk, "p1/home/kunde"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  j = Json::parse(r.out);
  EXPECT_EQ(j["fs"], "ext4");
  EXPECT_TRUE(j["directory"].get<bool>());
  ASSERT_EQ(j["entries"].size(), 3u);
  const Json& tief = j["entries"][0];
  EXPECT_EQ(tief["name"], "tief");
  EXPECT_EQ(tief["type"], "directory");
  const Json& link = j["entries"][1];
  EXPECT_EQ(link["type"], "symlink");
  EXPECT_EQ(link["target"], "wichtig.txt");
  const Json& file = j["entries"][2];
  EXPECT_EQ(file["path"], "/home/kunde/wichtig.txt");
  EXPECT_EQ(file["mode"], "0640");
  EXPECT_EQ(file["size"], 12);
  EXPECT_EQ(file["mtime"], "2020-09-13T12:26:40Z");
  EXPECT_EQ(file["mtime-ns"], int64_t{1600000000} * 1000000000);
  EXPECT_TRUE(file["target"].is_null());

  r = test::arche({"image", "ls", disk, "p1/home/kunde/wichtig.txt"});
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("-rw-r-----"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("wichtig.txt"), std::string::npos);

  r = test::arche({"image", "ls", whole, "/etc"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Grüße.conf"), std::string::npos);
  r = test::arche({"image", "ls", "--json", whole});
  EXPECT_EQ(Json::parse(r.out)["volumes"][0]["name"], "/");

  r = test::arche({"image", "ls", disk, "p1/fehlt"});
  EXPECT_EQ(r.exit_code, 66);
  EXPECT_EQ(r.err, "arche: /fehlt: no such file or directory\n");
  r = test::arche({"image", "ls", disk, "p9"});
  EXPECT_EQ(r.exit_code, 66);
  EXPECT_NE(r.err.find("its volumes: p1"), std::string::npos) << r.err;
}

TEST_F(ImageCli, ExtractWritesFilesDirectoriesAndRoots) {
  const std::string to = dir.file("out");
  test::CommandResult r = test::arche({"image", "extract", disk, "p1/home/kunde/wichtig.txt", "p1/home/kunde/tief", "--to", to});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("extracted 2 files, 1 directory"), std::string::npos) << r.out;
  EXPECT_EQ(test::read_file(to + "/wichtig.txt"), test::read_file(stage + "/home/kunde/wichtig.txt"));
  EXPECT_EQ(test::read_file(to + "/tief/daten.bin"), test::read_file(stage + "/home/kunde/tief/daten.bin"));
  struct stat st {};
  ASSERT_EQ(::stat((to + "/wichtig.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1600000000);
  ASSERT_EQ(::stat((to + "/tief").c_str(), &st), 0);
  EXPECT_EQ(st.st_mtim.tv_sec, 1600000000) << "directory times are set after their contents";

  // Again: nothing is replaced without --overwrite.
  r = test::arche({"image", "extract", disk, "p1/home/kunde/wichtig.txt", "--to", to});
  EXPECT_EQ(r.exit_code, 73);
  EXPECT_NE(r.err.find("--overwrite"), std::string::npos) << r.err;
  r = test::arche({"image", "extract", "--overwrite", disk, "p1/home/kunde/wichtig.txt", "--to", to});
  EXPECT_EQ(r.exit_code, 0) << r.err;

  // A partition's root: its contents go into DIR; and the whole-disk form.
  const std::string all = dir.file("all");
  r = test::arche({"image", "extract", "--json", disk, "p1", "--to", all});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json j = Json::parse(r.out);
  EXPECT_EQ(j["files"], 3);
  EXPECT_EQ(j["links"], 1);
  EXPECT_EQ(j["warnings"], 0);
  std::remove((all + "/lost+found").c_str());
  testing::expect_same_host_tree(all, stage, false);
  const std::string all2 = dir.file("all2");
  r = test::arche({"image", "extract", whole, "/", "--to", all2});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::remove((all2 + "/lost+found").c_str());
  testing::expect_same_host_tree(all2, stage, false);

  // Any image format: the same disk as qcow2.
  const std::string qcow = dir.file("disk.qcow2");
  ASSERT_EQ(test::arche({"image", "convert", "-O", "qcow2", disk, qcow}).exit_code, 0);
  r = test::arche({"image", "extract", qcow, "p1/etc", "--to", dir.file("q")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(test::read_file(dir.file("q") + "/etc/Grüße.conf"), std::vector<uint8_t>({'x', '\n'}));

  r = test::arche({"image", "extract", disk, "p1/etc"});
  EXPECT_EQ(r.exit_code, 64) << "--to is required";
  // No temporary files are left behind.
  test::CommandResult leftovers = test::run({"sh", "-c", "find " + dir.path() + " -name '*arche-tmp*' | wc -l"});
  EXPECT_EQ(leftovers.out, "0\n");
}

// FAT and XFS through the same commands: an MBR disk with a FAT32 partition
// (mkfs.vfat + mcopy) and an XFS one (mkfs.xfs with a protofile), and a
// whole-disk FAT volume, whose boot sector ends in 0x55AA like an MBR.
TEST(ImageCliFatXfs, LsAndExtractReadBothAsTheirToolsWroteThem) {
  ARCHE_REQUIRE_PROGRAM("mkfs.vfat");
  ARCHE_REQUIRE_PROGRAM("mcopy");
  ARCHE_REQUIRE_PROGRAM("mkfs.xfs");
  test::TempDir dir;
  const std::string s = dir.file("stage"), disk = dir.file("disk.img"), whole = dir.file("fat.img");
  const std::string script =
      "set -e; s=" + s + "; mkdir -p $s/home/kunde/tief $s/etc; printf 'Kundendaten\\n' > $s/home/kunde/wichtig.txt;"
      " chmod 0640 $s/home/kunde/wichtig.txt; head -c 300000 /dev/urandom > $s/home/kunde/tief/daten.bin;"
      " printf 'x\\n' > \"$s/etc/Grüße.conf\"; find $s -mindepth 1 -depth -exec touch -h -d @1600000000 {} +;"
      " truncate -s 400M " + disk + ";"
      " printf 'label: dos\\nsize=40M, type=c\\nsize=320M, type=83\\n' | sfdisk -q " + disk + ";"
      " truncate -s 40M " + dir.file("p1") + "; mkfs.vfat -F 32 -n FATCLI " + dir.file("p1") + " >/dev/null;"
      " MTOOLS_SKIP_CHECK=1 mcopy -s -m -Q -i " + dir.file("p1") + " $s/home $s/etc ::/;"
      " dd if=" + dir.file("p1") + " of=" + disk + " bs=1M seek=1 conv=notrunc status=none;"
      " printf 'proto\\n0 0\\nd--755 0 0\\nhome d--755 0 0\\nkunde d--750 1000 1000\\n"
      "wichtig.txt ---640 1000 1000 %s/home/kunde/wichtig.txt\\nverweis l--777 0 0 wichtig.txt\\n"
      "tief d--755 0 0\\ndaten.bin ---644 0 0 %s/home/kunde/tief/daten.bin\\n$\\n$\\n$\\n$\\n' $s $s > " +
      dir.file("proto") + ";"
      " truncate -s 320M " + dir.file("p2") + "; mkfs.xfs -q -L xfscli -p " + dir.file("proto") + " " +
      dir.file("p2") + ";"
      " dd if=" + dir.file("p2") + " of=" + disk + " bs=1M seek=41 conv=notrunc,sparse status=none;"
      " cp " + dir.file("p1") + " " + whole;
  test::CommandResult r = test::run({"sh", "-c", script});
  ASSERT_EQ(r.exit_code, 0) << r.err;

  r = test::arche({"image", "ls", "--json", disk});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json j = Json::parse(r.out);
  ASSERT_EQ(j["volumes"].size(), 3u);
  EXPECT_EQ(j["volumes"][1]["fs"], "fat32");
  EXPECT_EQ(j["volumes"][1]["label"], "FATCLI");
  EXPECT_TRUE(j["volumes"][1]["browsable"].get<bool>());
  EXPECT_EQ(j["volumes"][2]["fs"], "xfs");
  EXPECT_EQ(j["volumes"][2]["label"], "xfscli");
  EXPECT_TRUE(j["volumes"][2]["browsable"].get<bool>());
  EXPECT_GT(j["volumes"][2]["used"].get<uint64_t>(), 300000u);

  // FAT: long and non-ASCII names, sizes and (2-second) times as mtools wrote them.
  r = test::arche({"image", "ls", "--json", disk, "p1/home/kunde"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  j = Json::parse(r.out);
  EXPECT_EQ(j["fs"], "fat32");
  ASSERT_EQ(j["entries"].size(), 2u);
  EXPECT_EQ(j["entries"][0]["name"], "tief");
  EXPECT_EQ(j["entries"][1]["name"], "wichtig.txt");
  EXPECT_EQ(j["entries"][1]["size"], 12);
  EXPECT_EQ(j["entries"][1]["mtime"], "2020-09-13T12:26:40Z");
  // Names compare case-insensitively on FAT, as on Windows.
  r = test::arche({"image", "ls", disk, "p1/HOME/Kunde/WICHTIG.TXT"});
  EXPECT_EQ(r.exit_code, 0) << r.err;

  const std::string fat_out = dir.file("fat-out");
  r = test::arche({"image", "extract", disk, "p1", "--to", fat_out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(test::read_file(fat_out + "/home/kunde/tief/daten.bin"), test::read_file(s + "/home/kunde/tief/daten.bin"));
  EXPECT_EQ(test::read_file(fat_out + "/etc/Grüße.conf"), std::vector<uint8_t>({'x', '\n'}));
  struct stat st {};
  ASSERT_EQ(::stat((fat_out + "/home/kunde/wichtig.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mtim.tv_sec, 1600000000);

  // XFS: modes, owners and links as the protofile gave them.
  r = test::arche({"image", "ls", "--json", disk, "p2/home/kunde"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  j = Json::parse(r.out);
  EXPECT_EQ(j["fs"], "xfs");
  ASSERT_EQ(j["entries"].size(), 3u);
  EXPECT_EQ(j["entries"][1]["type"], "symlink");
  EXPECT_EQ(j["entries"][1]["target"], "wichtig.txt");
  EXPECT_EQ(j["entries"][2]["mode"], "0640");
  EXPECT_EQ(j["entries"][2]["uid"], 1000);
  const std::string xfs_out = dir.file("xfs-out");
  r = test::arche({"image", "extract", disk, "p2/home/kunde/wichtig.txt", "p2/home/kunde/tief", "--to", xfs_out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(test::read_file(xfs_out + "/wichtig.txt"), test::read_file(s + "/home/kunde/wichtig.txt"));
  EXPECT_EQ(test::read_file(xfs_out + "/tief/daten.bin"), test::read_file(s + "/home/kunde/tief/daten.bin"));
  ASSERT_EQ(::stat((xfs_out + "/wichtig.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);

  // A whole-disk FAT volume is a file system, not an MBR: its root is "/".
  r = test::arche({"image", "ls", "--json", whole});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  j = Json::parse(r.out);
  ASSERT_EQ(j["volumes"].size(), 1u);
  EXPECT_EQ(j["volumes"][0]["name"], "/");
  EXPECT_EQ(j["volumes"][0]["fs"], "fat32");
  r = test::arche({"image", "ls", whole, "/etc"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Grüße.conf"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace arche::volume
