// The maintenance commands through the CLI: list, info, diff, prune (with
// repacking), forget, repair index.
#include <gtest/gtest.h>

#include <boost/filesystem.hpp>

#include "core/json.h"
#include "tests/backup/backup_test_util.h"

namespace fs = boost::filesystem;

namespace arche::backup::test {
namespace {

class BackupCli : public ::testing::Test {
 protected:
  void SetUp() override {
    use_passphrase();
    repo = dir.file("repo");
    init_repo(repo, {"--pack-size", "1M"});
    src = dir.file("src");
    fs::create_directories(src + "/d");
  }
  TempDir dir;
  std::string repo, src;
};

TEST_F(BackupCli, ListInfoAndDiff) {
  write_random_file(src + "/a", 500000, 71);
  write_random_file(src + "/d/b", 200000, 72);
  write_random_file(dir.file("disk.raw"), 4u << 20, 73);
  backup_ok({"create", repo + "::monday", src, "--image", dir.file("disk.raw"), "--tag", "daily"});
  write_random_file(src + "/c", 1000, 74);
  fs::remove(src + "/d/b");
  write_random_file(src + "/a", 500000, 75);
  {
    File f = File::open(dir.file("disk.raw"), OpenMode::read_write);
    std::vector<uint8_t> x(100, 1);
    f.write_all(3u << 20, x);
  }
  backup_ok({"create", repo + "::tuesday", src, "--image", dir.file("disk.raw")});

  Json list = Json::parse(backup_ok({"list", repo, "--json"}).out);
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0]["name"], "monday");
  EXPECT_EQ(list[0]["tags"][0], "daily");
  EXPECT_EQ(list[0]["images"][0], "disk.raw");
  EXPECT_EQ(list[0]["id"].get<std::string>().size(), 64u);
  CommandResult text = backup_ok({"list", repo});
  EXPECT_NE(text.out.find("monday"), std::string::npos);

  Json info = Json::parse(backup_ok({"info", repo, "--json"}).out);
  EXPECT_EQ(info["snapshots"], 2u);
  EXPECT_GT(info["dedup-ratio"].get<double>(), 1.4) << "9.2 MiB in snapshots, 6.2 MiB unique";
  EXPECT_EQ(info["index-ram-bytes"].get<uint64_t>(), info["chunks"].get<uint64_t>() * 40);
  Json one = Json::parse(backup_ok({"info", repo + "::monday", "--json"}).out);
  EXPECT_EQ(one["images"][0]["virtual-size"], 4u << 20);
  EXPECT_EQ(one["stats"]["files"], 2u);
  // By id prefix, and "latest".
  backup_ok({"info", repo + "::" + list[1]["id"].get<std::string>().substr(0, 6)});
  EXPECT_NE(backup_ok({"info", repo + "::latest"}).out.find("tuesday"), std::string::npos);

  CommandResult diff = backup_ok({"diff", repo + "::monday", "tuesday"});
  EXPECT_NE(diff.out.find("M image disk.raw: 1 of 4 chunks differ"), std::string::npos) << diff.out;
  EXPECT_NE(diff.out.find("+ " + src + "/c"), std::string::npos) << diff.out;
  EXPECT_NE(diff.out.find("- " + src + "/d/b"), std::string::npos) << diff.out;
  EXPECT_NE(diff.out.find("M " + src + "/a"), std::string::npos) << diff.out;
  Json dj = Json::parse(backup_ok({"diff", repo, "monday", "tuesday", "--json"}).out);
  EXPECT_EQ(dj["images"][0]["changed-chunks"], 1u);

  CommandResult dup = backup({"create", repo + "::monday", src});
  EXPECT_EQ(dup.exit_code, 73) << "names are unique: " << dup.err;
  EXPECT_EQ(backup({"create", repo + "::latest", src}).exit_code, 64);
}

TEST_F(BackupCli, PruneRemovesWhatThePolicyDropsAndFreesTheSpace) {
  // Five snapshots, each with data of its own and data shared by all.
  write_random_file(src + "/shared", 2u << 20, 80);
  for (int i = 0; i < 5; ++i) {
    write_random_file(src + "/own", 3u << 20, 81 + i);
    backup_ok({"create", repo + "::s" + std::to_string(i), src});
  }
  uint64_t before = 0;
  for (const std::string& f : files_below(repo + "/data")) before += fs::file_size(f);

  Json dry = Json::parse(backup_ok({"prune", repo, "--keep-last", "2", "--dry-run", "--json"}).out);
  EXPECT_EQ(dry["removed"].size(), 3u);
  EXPECT_EQ(Json::parse(backup_ok({"list", repo, "--json"}).out).size(), 5u) << "a dry run changes nothing";

  Json r = Json::parse(backup_ok({"prune", repo, "--keep-last", "2", "--json"}).out);
  EXPECT_EQ(r["removed"].size(), 3u);
  EXPECT_EQ(r["kept"].size(), 2u);
  EXPECT_EQ(r["kept"][0]["reasons"][0], "last");
  uint64_t after = 0;
  for (const std::string& f : files_below(repo + "/data")) after += fs::file_size(f);
  EXPECT_LT(after, before - (8u << 20)) << "three snapshots' own 3 MiB are gone";
  EXPECT_GE(after, 8u << 20) << "the remaining two own 3 MiB each, plus 2 MiB shared";
  Json list = Json::parse(backup_ok({"list", repo, "--json"}).out);
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0]["name"], "s3");
  CommandResult check = backup({"check", "--read-data", repo});
  EXPECT_EQ(check.exit_code, 0) << check.out;
  backup_ok({"restore", repo + "::s4", "--to", dir.file("out")});
  EXPECT_TRUE(same_content(src + "/own", dir.file("out") + src + "/own"));
  EXPECT_TRUE(same_content(src + "/shared", dir.file("out") + src + "/shared"));
  EXPECT_EQ(backup({"restore", repo + "::s0", "--to", dir.file("gone")}).exit_code, 66);
  EXPECT_EQ(std::distance(fs::directory_iterator(repo + "/index"), fs::directory_iterator()), 1)
      << "prune leaves one index";

  // Partly used packs are repacked: forget one more, prune with a low threshold.
  backup_ok({"forget", repo + "::s3"});
  Json again = Json::parse(backup_ok({"prune", repo, "--keep-last", "1", "--repack-threshold", "0", "--json"}).out);
  EXPECT_GE(again["packs-deleted"].get<uint64_t>(), 1u);
  check = backup({"check", "--read-data", repo});
  EXPECT_EQ(check.exit_code, 0) << check.out;
  backup_ok({"restore", repo + "::s4", "--to", dir.file("out2")});
  EXPECT_TRUE(same_content(src + "/own", dir.file("out2") + src + "/own"));
  EXPECT_EQ(backup({"prune", repo}).exit_code, 64) << "no rule: refused, not 'remove everything'";
}

TEST_F(BackupCli, RepairIndexRebuildsItFromThePacks) {
  write_random_file(src + "/a", 3u << 20, 90);
  write_random_file(dir.file("disk.raw"), 3u << 20, 91);
  backup_ok({"create", repo + "::x", src, "--image", dir.file("disk.raw")});
  for (const auto& e : fs::directory_iterator(repo + "/index")) fs::remove(e.path());
  CommandResult lost = backup({"restore", repo + "::x", "--image", "disk.raw", "--to", dir.file("o")});
  EXPECT_EQ(lost.exit_code, 80) << lost.err;
  EXPECT_NE(backup({"check", repo}).exit_code, 0);
  Json rep = Json::parse(backup_ok({"repair", "index", repo, "--json"}).out);
  EXPECT_GE(rep["packs"].get<uint64_t>(), 6u);
  backup_ok({"check", "--read-data", repo});
  backup_ok({"restore", repo + "::x", "--image", "disk.raw", "--to", dir.file("o")});
  EXPECT_TRUE(same_content(dir.file("disk.raw"), dir.file("o")));

  // A pack whose footer is damaged: repair finds its frames by scanning and rewrites it.
  std::string pack;
  for (const std::string& f : files_below(repo + "/data")) pack = f;
  {
    File f = File::open(pack, OpenMode::read_write);
    std::vector<uint8_t> junk(20, 0xff);
    f.write_all(f.size() - 40, junk);
  }
  EXPECT_EQ(backup({"check", repo}).exit_code, 2);
  rep = Json::parse(backup_ok({"repair", "index", repo, "--json"}).out);
  EXPECT_EQ(rep["scanned-packs"], 1u);
  CommandResult check = backup({"check", "--read-data", repo});
  EXPECT_EQ(check.exit_code, 0) << check.out;
  backup_ok({"restore", repo + "::x", "--to", dir.file("files")});
  EXPECT_TRUE(same_content(src + "/a", dir.file("files") + src + "/a"));
}

}  // namespace
}  // namespace arche::backup::test
