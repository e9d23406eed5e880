// Issue 16, acceptance 7: `arche schedule install` writes a .service and a .timer
// that systemd's own checker accepts (systemd-analyze verify), with the passphrase
// as a credential; list and remove find them again. With --unit-dir systemctl is
// never run (the test would otherwise change this machine's systemd).
#include <gtest/gtest.h>

#include <boost/filesystem.hpp>

#include "core/error.h"
#include "core/json.h"
#include "tests/jobs/job_test_util.h"

namespace fs = boost::filesystem;

namespace arche::jobs::test {
namespace {

using arche::test::TempDir;

std::string write(const TempDir& dir, const std::string& name, const std::string& text) {
  arche::test::write_file(dir.file(name), {text.begin(), text.end()});
  return dir.file(name);
}

CommandResult schedule(const std::vector<std::string>& args) {
  std::vector<std::string> a{"schedule"};
  a.insert(a.end(), args.begin(), args.end());
  return arche::test::arche(a);
}

const std::string kBody =
    "repository = \"/srv/backup/arche\"\npassphrase-credential = \"arche-passphrase\"\n"
    "[[vm]]\nname = \"web\"\ndisks = [\"/var/lib/arche/web.qcow2\"]\n";

TEST(Schedule, TheUnitsPassSystemdAnalyzeVerify) {
  ARCHE_REQUIRE_PROGRAM("systemd-analyze");
  TempDir dir;
  const std::string job = write(dir, "nightly.toml", "schedule = \"Mon..Fri *-*-* 01:30:00\"\n" + kBody);
  const std::string units = dir.file("units");
  fs::create_directories(units);
  CommandResult r = schedule({"install", job, "--unit-dir", units, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json j = Json::parse(r.out);
  EXPECT_EQ(j["enabled"], false) << "no systemctl with --unit-dir";
  const std::string service = units + "/arche-job-nightly.service", timer = units + "/arche-job-nightly.timer";
  EXPECT_EQ(j["timer"], timer);
  const std::string s = read_text(service), t = read_text(timer);
  EXPECT_NE(s.find("\nExecStart=\"" + arche::test::arche_binary() + "\" job run \"" + job + "\"\n"), std::string::npos)
      << s;
  EXPECT_NE(s.find("\nLoadCredential=arche-passphrase:/etc/arche/credentials/arche-passphrase\n"), std::string::npos)
      << s;
  EXPECT_EQ(s.find("Environment"), std::string::npos) << "the passphrase never goes through the environment";
  EXPECT_NE(t.find("\nOnCalendar=Mon..Fri *-*-* 01:30:00\n"), std::string::npos) << t;
  EXPECT_NE(t.find("\nPersistent=true\n"), std::string::npos) << t;
  EXPECT_NE(t.find("\nRandomizedDelaySec=15min\n"), std::string::npos) << t;
  EXPECT_NE(t.find("\nUnit=arche-job-nightly.service\n"), std::string::npos) << t;

  CommandResult verify = arche::test::run({"systemd-analyze", "verify", service, timer});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  EXPECT_EQ(verify.err.find(".service"), std::string::npos) << verify.err;
  EXPECT_EQ(verify.err.find(".timer"), std::string::npos) << verify.err;

  // The checker does catch a bad unit: a schedule systemd cannot parse.
  const std::string bad = write(dir, "bad.toml", "schedule = \"*-*-* 25:99\"\n" + kBody);
  ASSERT_EQ(schedule({"install", bad, "--unit-dir", units}).exit_code, 0);
  EXPECT_NE(arche::test::run({"systemd-analyze", "verify", units + "/arche-job-bad.service",
                              units + "/arche-job-bad.timer"}).exit_code, 0);
}

TEST(Schedule, ListAndRemoveFindTheUnitsAgain) {
  TempDir dir;
  const std::string units = dir.file("units");
  fs::create_directories(units);
  const std::string a = write(dir, "a.toml", kBody), b = write(dir, "b.toml", "schedule = \"weekly\"\n" + kBody);
  ASSERT_EQ(schedule({"install", a, "--unit-dir", units}).exit_code, 0);
  ASSERT_EQ(schedule({"install", b, "--unit-dir", units}).exit_code, 0);
  ASSERT_EQ(schedule({"install", b, "--unit-dir", units}).exit_code, 0) << "installing again replaces its own units";
  write(dir, "units/other.timer", "[Timer]\nOnCalendar=daily\n");
  Json listed = Json::parse(schedule({"list", "--unit-dir", units, "--json"}).out);
  ASSERT_EQ(listed.size(), 2u) << listed.dump();
  EXPECT_EQ(listed[0]["job"], a);
  EXPECT_EQ(listed[0]["schedule"], "daily");
  EXPECT_EQ(listed[1]["timer"], "arche-job-b.timer");
  EXPECT_EQ(listed[1]["schedule"], "weekly");

  ASSERT_EQ(schedule({"remove", a, "--unit-dir", units}).exit_code, 0);
  EXPECT_FALSE(fs::exists(units + "/arche-job-a.service"));
  EXPECT_FALSE(fs::exists(units + "/arche-job-a.timer"));
  EXPECT_TRUE(fs::exists(units + "/other.timer"));
  CommandResult again = schedule({"remove", a, "--unit-dir", units});
  EXPECT_EQ(again.exit_code, exit_code(ErrorCategory::not_found));
  EXPECT_EQ(again.err, "arche: " + a + ": no timer of this job in " + units + "\n");
  EXPECT_EQ(Json::parse(schedule({"list", "--unit-dir", units, "--json"}).out).size(), 1u);

  // A unit of the same name that arche did not write is left alone.
  write(dir, "units/arche-job-c.timer", "[Timer]\nOnCalendar=daily\n");
  const std::string c = write(dir, "c.toml", kBody);
  CommandResult clash = schedule({"install", c, "--unit-dir", units});
  EXPECT_EQ(clash.exit_code, exit_code(ErrorCategory::exists)) << clash.err;
  EXPECT_EQ(read_text(units + "/arche-job-c.timer"), "[Timer]\nOnCalendar=daily\n");
}

TEST(Schedule, APassphraseFromTheEnvironmentIsRefused) {
  TempDir dir;
  const std::string job = write(dir, "env.toml",
                                "repository = \"/r\"\npassphrase-env = \"PASS\"\n[[files]]\nname = \"etc\"\n"
                                "paths = [\"/etc\"]\n");
  CommandResult r = schedule({"install", job, "--unit-dir", dir.path()});
  EXPECT_EQ(r.exit_code, 64);
  EXPECT_EQ(r.err, "arche: " + job +
                       ": passphrase-env does not reach a job started by a timer: use passphrase-credential (or "
                       "passphrase-file)\n");
  EXPECT_FALSE(fs::exists(dir.file("arche-job-env.timer")));
}

}  // namespace
}  // namespace arche::jobs::test
