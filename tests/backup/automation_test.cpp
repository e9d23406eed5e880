// Issue 9, points 8, 11, 13, 14 and 15 for backups: passphrases that do not linger,
// files only their owner reads, what cron jobs and scripts need (ARCHE_REPO, the
// passphrase variables, name placeholders, --dry-run) and JSON with RFC 3339 times,
// kebab-case keys and null for what is absent.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/filesystem.hpp>
#include <regex>

#include "backup/create.h"
#include "backup/lock.h"
#include "core/json.h"
#include "tests/backup/backup_test_util.h"

namespace fs = boost::filesystem;

namespace arche::backup::test {
namespace {

class BackupAutomation : public RepositoryTest {
 protected:
  void TearDown() override {
    for (const char* v : {"ARCHE_REPO", "ARCHE_NEW_PASSPHRASE", "ARCHE_PASSPHRASE_FILE", "ARCHE_PASSPHRASE_COMMAND"})
      ::unsetenv(v);
    use_passphrase();
  }
  void write_secret(const std::string& path, const std::string& text, mode_t mode) {
    arche::test::write_file(path, std::vector<uint8_t>(text.begin(), text.end()));
    ::chmod(path.c_str(), mode);
  }
};

TEST_F(BackupAutomation, NewPassphraseIsWipedFromTheEnvironmentWhileArcheRuns) {
  // The passphrase command runs while the old passphrase is checked, long before the
  // new one is used: by then neither may be readable in /proc/PID/environ.
  const std::string seen = dir.file("seen");
  ::setenv("ARCHE_NEW_PASSPHRASE", "brand-new-secret-4711", 1);
  const std::string command = "tr '\\0' '\\n' < /proc/$PPID/environ > '" + seen + "'; printf '%s' '" +
                              std::string(kPassphrase) + "'";
  backup_ok({"key", "add", repo, "--kdf-memory", "8M", "--kdf-ops", "1", "--passphrase-command", command});
  const std::string environ_text = [&] {
    std::vector<uint8_t> d = arche::test::read_file(seen);
    return std::string(d.begin(), d.end());
  }();
  EXPECT_NE(environ_text.find("PATH="), std::string::npos) << "the environment was read";
  EXPECT_EQ(environ_text.find("brand-new-secret-4711"), std::string::npos) << environ_text;
  EXPECT_EQ(environ_text.find(kPassphrase), std::string::npos) << environ_text;
  use_passphrase("brand-new-secret-4711");
  backup_ok({"list", repo});
}

TEST_F(BackupAutomation, WorldReadablePassphraseFilesWarnAndRepositoryFilesAreTheOwnersOnly) {
  const std::string loose = dir.file("loose"), tight = dir.file("tight");
  write_secret(loose, kPassphrase, 0644);
  write_secret(tight, kPassphrase, 0600);
  ::unsetenv("ARCHE_PASSPHRASE");
  CommandResult warned = backup_ok({"list", repo, "--passphrase-file", loose});
  EXPECT_NE(warned.err.find("readable by every user"), std::string::npos) << warned.err;
  CommandResult quiet = backup_ok({"list", repo, "--passphrase-file", tight});
  EXPECT_EQ(quiet.err.find("readable by every user"), std::string::npos) << quiet.err;
  use_passphrase();

  // Under umask 022 (and 000) config and key slots are created 0600 all the same.
  for (mode_t mask : {mode_t{022}, mode_t{0}}) {
    const mode_t old = ::umask(mask);
    TempDir d;
    const std::string r = d.file("repo");
    init_repo(r);
    ::setenv("ARCHE_NEW_PASSPHRASE", "another one", 1);
    backup_ok({"key", "add", r, "--kdf-memory", "8M", "--kdf-ops", "1"});
    ::unsetenv("ARCHE_NEW_PASSPHRASE");
    ::umask(old);
    std::vector<std::string> files{r + "/config"};
    for (const auto& e : fs::directory_iterator(r + "/keys")) files.push_back(e.path().string());
    ASSERT_EQ(files.size(), 3u);
    for (const std::string& f : files) {
      struct stat st {};
      ASSERT_EQ(::stat(f.c_str(), &st), 0);
      EXPECT_EQ(st.st_mode & 0777, 0600u) << f << " under umask " << std::oct << mask;
    }
  }
}

TEST_F(BackupAutomation, PassphraseAndRepositoryFromTheEnvironment) {
  write_random_file(dir.file("data"), 5000, 801);
  ::unsetenv("ARCHE_PASSPHRASE");
  const std::string file = dir.file("pass");
  write_secret(file, kPassphrase, 0600);
  ::setenv("ARCHE_REPO", repo.c_str(), 1);
  ::setenv("ARCHE_PASSPHRASE_FILE", file.c_str(), 1);
  backup_ok({"create", "::from-env", dir.file("data")});
  backup_ok({"list"});
  backup_ok({"info", "::from-env"});
  ::unsetenv("ARCHE_PASSPHRASE_FILE");
  ::setenv("ARCHE_PASSPHRASE_COMMAND", (std::string("printf '%s' '") + kPassphrase + "'").c_str(), 1);
  Json list = Json::parse(backup_ok({"list", "--json"}).out);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["name"], "from-env");
  backup_ok({"restore", "::latest", "--to", dir.file("out")});
  EXPECT_TRUE(same_content(dir.file("data"), dir.file("out") + dir.file("data")));
  ::setenv("ARCHE_PASSPHRASE_FILE", file.c_str(), 1);
  CommandResult both = backup({"list"});
  EXPECT_EQ(both.exit_code, 64) << "two sources set: " << both.err;
  ::unsetenv("ARCHE_PASSPHRASE_FILE");
  ::unsetenv("ARCHE_PASSPHRASE_COMMAND");
  CommandResult none = backup({"list"});
  EXPECT_EQ(none.exit_code, 64);
  EXPECT_NE(none.err.find("ARCHE_PASSPHRASE_FILE"), std::string::npos) << none.err;
  ::unsetenv("ARCHE_REPO");
  use_passphrase();
  CommandResult no_repo = backup({"list"});
  EXPECT_EQ(no_repo.exit_code, 64);
  EXPECT_NE(no_repo.err.find("ARCHE_REPO"), std::string::npos) << no_repo.err;
}

TEST_F(BackupAutomation, InitTakesTheNewPassphraseOptionsAndKeyAddNamesThem) {
  const std::string file = dir.file("new");
  write_secret(file, "init passphrase", 0600);
  ::unsetenv("ARCHE_PASSPHRASE");
  const std::string r = dir.file("r2");
  backup_ok({"init", r, "--new-passphrase-file", file, "--kdf-memory", "8M", "--kdf-ops", "1"});
  use_passphrase("init passphrase");
  backup_ok({"list", r});
  // Without a new passphrase (no terminal in tests), key add names its own options.
  CommandResult missing = backup({"key", "add", r});
  EXPECT_EQ(missing.exit_code, 64);
  EXPECT_NE(missing.err.find("--new-passphrase-file"), std::string::npos) << missing.err;
  EXPECT_NE(missing.err.find("ARCHE_NEW_PASSPHRASE"), std::string::npos) << missing.err;
  EXPECT_EQ(missing.err.find(" --passphrase-file"), std::string::npos) << missing.err;
}

TEST_F(BackupAutomation, SnapshotNamePlaceholders) {
  const int64_t t = 1795267562;  // 2026-11-21 (UTC)
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  EXPECT_EQ(expand_snapshot_name("{utcnow:%Y-%m-%d}", {}, t), "2026-11-21");
  EXPECT_EQ(expand_snapshot_name("{hostname}-{image}", {"/vms/web/disk.qcow2"}, t), std::string(host) + "-disk.qcow2");
  EXPECT_EQ(expand_snapshot_name("a{{b}}", {}, t), "a{b}");
  EXPECT_EQ(expand_snapshot_name("{utcnow}", {}, t), "2026-11-21T13:26:02");
  for (const char* bad : {"{nope}", "{image}", "{hostname:x}", "open{", "close}"}) {
    try {
      expand_snapshot_name(bad, {}, t);
      ADD_FAILURE() << bad << " was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.category(), ErrorCategory::usage) << bad;
    }
  }
  write_random_file(dir.file("vm.raw"), 1u << 20, 802);
  Json j = Json::parse(
      backup_ok({"create", repo + "::{hostname}-{image}-{now:%Y}", "--image", dir.file("vm.raw"), "--json"}).out);
  EXPECT_EQ(j["name"].get<std::string>().rfind(std::string(host) + "-vm.raw-20", 0), 0u) << j["name"];
}

TEST_F(BackupAutomation, CreateDryRunReadsEverythingAndWritesNothing) {
  write_random_file(dir.file("a"), 3u << 20, 803);
  backup_ok({"create", repo + "::first", dir.file("a")});
  write_random_file(dir.file("b"), 2u << 20, 804);
  std::vector<std::string> before = files_below(repo);
  Json j = Json::parse(backup_ok({"create", repo + "::second", dir.file("a"), dir.file("b"), "--dry-run", "--json"}).out);
  EXPECT_TRUE(j["dry-run"].get<bool>());
  EXPECT_TRUE(j["id"].is_null());
  EXPECT_EQ(j["stats"]["new-bytes"].get<uint64_t>() >= (2u << 20), true) << "b is new";
  EXPECT_LT(j["stats"]["new-bytes"].get<uint64_t>(), (2u << 20) + (64u << 10)) << "a is known";
  EXPECT_EQ(files_below(repo), before) << "nothing was written";
  CommandResult text = backup_ok({"create", repo + "::second", dir.file("b"), "--dry-run"});
  EXPECT_NE(text.out.find("dry run"), std::string::npos) << text.out;
  EXPECT_EQ(Json::parse(backup_ok({"list", repo, "--json"}).out).size(), 1u);
}

TEST_F(BackupAutomation, JsonTimesAreRfc3339AbsentValuesNullAndDiffTakesTheSharedLock) {
  write_random_file(dir.file("a"), 1000, 805);
  backup_ok({"create", repo + "::one", dir.file("a")});
  backup_ok({"create", repo + "::two", dir.file("a")});
  const std::regex rfc3339(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d))");
  Json list = Json::parse(backup_ok({"list", repo, "--json"}).out);
  EXPECT_TRUE(std::regex_match(list[0]["time"].get<std::string>(), rfc3339)) << list[0]["time"];
  EXPECT_TRUE(list[0]["damaged"].is_null());
  Json one = Json::parse(backup_ok({"info", repo + "::one", "--json"}).out);
  EXPECT_TRUE(one["parent"].is_null()) << "the first snapshot has no parent";
  Json two = Json::parse(backup_ok({"info", repo + "::two", "--json"}).out);
  EXPECT_EQ(two["parent"], list[0]["id"]);
  Json keys = Json::parse(backup_ok({"key", "list", repo, "--json"}).out);
  EXPECT_TRUE(std::regex_match(keys[0]["created"].get<std::string>(), rfc3339)) << keys[0]["created"];
  Json info = Json::parse(backup_ok({"info", repo, "--json"}).out);
  EXPECT_TRUE(std::regex_match(info["created"].get<std::string>(), rfc3339)) << info["created"];
  std::function<void(const Json&)> kebab = [&](const Json& j) {
    if (j.is_array())
      for (const Json& x : j) kebab(x);
    if (!j.is_object()) return;
    for (const auto& [key, value] : j.items()) {
      EXPECT_EQ(key.find('_'), std::string::npos) << key;
      kebab(value);
    }
  };
  kebab(list);
  kebab(two);
  kebab(info);

  // diff, like list, info and restore, waits for exclusive work to end.
  auto r = open_repo(repo);
  RepoLock held(*r, LockMode::exclusive, "test holds it");
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"diff", repo + "::one", "two"}, {"list", repo}, {"info", repo}, {"info", repo + "::one"}}) {
    CommandResult busy = backup(args);
    EXPECT_EQ(busy.exit_code, 75) << args[0] << ": " << busy.err;
  }
}

}  // namespace
}  // namespace arche::backup::test
