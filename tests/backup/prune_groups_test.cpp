// Issue 9, point 2: prune per source. Two VMs backed up every night into one
// repository: --keep-daily 7 keeps seven snapshots of each, as restic does (groups of
// host and what was backed up), and the filters choose what the policy touches.
#include <gtest/gtest.h>

#include <ctime>
#include <map>

#include "core/json.h"
#include "tests/backup/backup_test_util.h"

namespace arche::backup::test {
namespace {

constexpr int64_t kDay = 86400ll * 1000000000;

class BackupPruneGroups : public RepositoryTest {
 protected:
  // Ten nights of both VMs; snapshot i of each is i days older than the newest.
  void SetUp() override {
    RepositoryTest::SetUp();
    write_random_file(dir.file("web.raw"), 1u << 20, 201);
    write_random_file(dir.file("db.raw"), 1u << 20, 202);
    const int64_t newest = (static_cast<int64_t>(std::time(nullptr)) / 86400 - 1) * kDay + 12 * 3600ll * 1000000000;
    for (int night = 0; night < 10; ++night) {
      for (const char* vm : {"web", "db"}) {
        const std::string name = std::string(vm) + "-" + std::to_string(night);
        std::vector<std::string> args{"create", repo + "::" + name, "--image", dir.file(std::string(vm) + ".raw"),
                                      "--json"};
        if (night % 3 == 0) args.insert(args.end(), {"--tag", "monthly-candidate"});
        Json j = Json::parse(backup_ok(args).out);
        rewrite_snapshot(repo, j["id"], [&](Snapshot& s) { s.time_ns = newest - night * kDay; });
      }
    }
  }

  std::map<std::string, int> names_by_vm() {
    std::map<std::string, int> n;
    for (const Json& s : Json::parse(backup_ok({"list", repo, "--json"}).out))
      ++n[s["name"].get<std::string>().substr(0, s["name"].get<std::string>().find('-'))];
    return n;
  }
};

TEST_F(BackupPruneGroups, KeepDailySevenKeepsSevenOfEachVm) {
  // The dry run shows the groups: one per VM image.
  Json dry = Json::parse(backup_ok({"prune", repo, "--keep-daily", "7", "--dry-run", "--json"}).out);
  ASSERT_EQ(dry["groups"].size(), 2u) << dry.dump(1);
  for (const Json& g : dry["groups"]) {
    EXPECT_FALSE(g["host"].is_null());
    ASSERT_EQ(g["paths"].size(), 1u);
    EXPECT_TRUE(g["tags"].is_null()) << "tags are not grouped by default";
    EXPECT_EQ(g["kept"].size(), 7u);
    EXPECT_EQ(g["removed"].size(), 3u);
    const std::string vm = g["paths"][0].get<std::string>().find("web.raw") != std::string::npos ? "web" : "db";
    for (const Json& s : g["kept"]) EXPECT_EQ(s["name"].get<std::string>().rfind(vm, 0), 0u) << s["name"];
  }
  CommandResult text = backup_ok({"prune", repo, "--keep-daily", "7", "--dry-run"});
  EXPECT_NE(text.out.find("group host "), std::string::npos) << text.out;
  EXPECT_NE(text.out.find(dir.file("web.raw")), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("would remove"), std::string::npos) << text.out;
  EXPECT_EQ((names_by_vm()), (std::map<std::string, int>{{"db", 10}, {"web", 10}})) << "a dry run changes nothing";

  // All in one group (what prune did before): seven snapshots in all.
  Json one = Json::parse(backup_ok({"prune", repo, "--keep-daily", "7", "--group-by", "", "--dry-run", "--json"}).out);
  ASSERT_EQ(one["groups"].size(), 1u);
  EXPECT_EQ(one["groups"][0]["kept"].size(), 7u);

  backup_ok({"prune", repo, "--keep-daily", "7"});
  EXPECT_EQ((names_by_vm()), (std::map<std::string, int>{{"db", 7}, {"web", 7}}));
  CommandResult check = backup({"check", "--read-data", repo});
  EXPECT_EQ(check.exit_code, 0) << check.out;
  backup_ok({"restore", repo + "::db-6", "--image", "db.raw", "--to", dir.file("db.out")});
  EXPECT_TRUE(same_content(dir.file("db.raw"), dir.file("db.out")));
}

TEST_F(BackupPruneGroups, FiltersChooseWhatThePolicyTouches) {
  // Three of db's snapshots come from another host now.
  for (const Json& s : Json::parse(backup_ok({"list", repo, "--json"}).out)) {
    const std::string name = s["name"];
    if (name == "db-7" || name == "db-8" || name == "db-9")
      rewrite_snapshot(repo, s["id"], [](Snapshot& x) { x.host = "other-host"; });
  }
  Json by_host = Json::parse(backup_ok({"prune", repo, "--keep-last", "1", "--host", "other-host", "--dry-run",
                                        "--json"}).out);
  ASSERT_EQ(by_host["groups"].size(), 1u);
  EXPECT_EQ(by_host["groups"][0]["host"], "other-host");
  EXPECT_EQ(by_host["removed"].size(), 2u);

  // --tag: only the tagged ones (nights 0, 3, 6, 9 of both), grouped by tags too.
  Json by_tag = Json::parse(backup_ok({"prune", repo, "--keep-last", "1", "--tag", "monthly-candidate", "--group-by",
                                       "paths,tags", "--dry-run", "--json"}).out);
  ASSERT_EQ(by_tag["groups"].size(), 2u);
  size_t considered = 0;
  for (const Json& g : by_tag["groups"]) {
    EXPECT_EQ(g["tags"], Json::array({"monthly-candidate"}));
    EXPECT_TRUE(g["host"].is_null());
    considered += g["kept"].size() + g["removed"].size();
  }
  EXPECT_EQ(considered, 8u);
  EXPECT_EQ(backup({"prune", repo, "--keep-last", "1", "--tag", "no-such-tag", "--json"}).exit_code, 0);
  EXPECT_EQ((names_by_vm()), (std::map<std::string, int>{{"db", 10}, {"web", 10}})) << "nothing matched";

  // --prefix still works, within each group.
  backup_ok({"prune", repo, "--keep-last", "2", "--prefix", "web-"});
  EXPECT_EQ((names_by_vm()), (std::map<std::string, int>{{"db", 10}, {"web", 2}}));
  EXPECT_EQ(backup({"prune", repo, "--keep-last", "1", "--group-by", "vm"}).exit_code, 64);
}

}  // namespace
}  // namespace arche::backup::test
