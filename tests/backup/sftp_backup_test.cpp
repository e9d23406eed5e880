// Issue 12, acceptance 2, at the repository's level: sshd killed in the middle of a
// backup to an SFTP repository gives one clear error; the repository then checks
// clean, and a rerun completes and reuses the packs that were uploaded whole.
#include <gtest/gtest.h>

#include <boost/filesystem.hpp>
#include <algorithm>
#include <thread>

#include "backup/check.h"
#include "backup/create.h"
#include "backup/restore.h"
#include "backup/store_sftp.h"
#include "core/error.h"
#include "tests/backup/backup_test_util.h"
#include "tests/backup/sshd_fixture.h"

namespace fs = boost::filesystem;

namespace arche::backup::test {
namespace {

std::span<const uint8_t> pass() { return {reinterpret_cast<const uint8_t*>(kPassphrase), std::strlen(kPassphrase)}; }

size_t packs_on_server(const std::string& repo_dir) {
  size_t n = 0;
  if (!fs::exists(repo_dir + "/data")) return 0;
  for (auto it = fs::recursive_directory_iterator(repo_dir + "/data"); it != fs::recursive_directory_iterator(); ++it)
    n += fs::is_regular_file(it->path()) && it->path().filename().string()[0] != '.';
  return n;
}

TEST(SftpBackupServerKilled, OneErrorACleanCheckAndARerunThatReusesTheUploadedPacks) {
  arche::test::SshServer server;
  TempDir dir;
  const std::string src = dir.file("src");
  fs::create_directories(src);
  for (int i = 0; i < 12; ++i) write_random_file(src + "/f" + std::to_string(i), 4u << 20, 6000 + i);
  const std::string repo_dir = server.data_dir() + "/repo";
  auto store = std::make_shared<SftpStore>(server.url("repo"), server.options());
  InitOptions init;
  init.kdf.memlimit = 8u << 20;
  init.kdf.opslimit = 1;
  init.settings.pack_size = 4u << 20;
  Repository::init(*store, pass(), init);

  // The first run is an arche process, as in real life: when it has ended, the lock it
  // could not remove (the server was gone) belongs to a dead process.
  for (const auto& [name, value] : server.environment()) ::setenv(name.c_str(), value.c_str(), 1);
  use_passphrase();
  Background first({"backup", "create", server.url("repo") + "::first", src}, dir.path());
  for (int i = 0; i < 6000 && packs_on_server(repo_dir) < 3 && !first.finished(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  server.kill();  // sshd and every session
  EXPECT_NE(first.wait(), 0) << "the backup finished without a server";
  const std::string err = first.err();
  size_t errors = 0;  // lines that are not warnings (the lock it could not remove is one)
  for (size_t at = 0; at < err.size();) {
    const size_t end = err.find('\n', at);
    errors += err.compare(at, 15, "arche: warning:") != 0;
    at = end == std::string::npos ? err.size() : end + 1;
  }
  EXPECT_EQ(errors, 1u) << "one error line: " << err;
  EXPECT_NE(err.find("127.0.0.1"), std::string::npos) << err;
  const size_t uploaded = packs_on_server(repo_dir);
  EXPECT_GE(uploaded, 3u);

  server.start();
  auto repo = Repository::open(std::make_shared<SftpStore>(server.url("repo"), server.options()), pass());
  EXPECT_TRUE(load_snapshots(*repo).empty()) << "no snapshot from the failed run";
  CheckOptions c;
  c.read_data = true;
  CheckReport r = check_repository(*repo, c);
  EXPECT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0]);

  CreateOptions o;
  o.name = "first";
  o.paths = {src};
  o.threads = 2;
  Snapshot s = create_snapshot(*repo, o);
  EXPECT_LE(s.stats.stored_bytes, (48u << 20) - uploaded * (3u << 20))
      << "the packs uploaded whole before the kill were adopted, not sent again";
  RestoreRequest rr;
  rr.snapshot = "first";
  rr.to = dir.file("out");
  restore_snapshot(*repo, rr);
  for (int i = 0; i < 12; ++i) {
    const std::string f = src + "/f" + std::to_string(i);
    EXPECT_TRUE(same_content(f, dir.file("out") + f)) << f;
  }
  EXPECT_TRUE(check_repository(*repo, c).ok());
}

}  // namespace
}  // namespace arche::backup::test
