// What only the SFTP store does, against a real sshd started here: host keys checked
// and refused with their fingerprint, the ways to authenticate, and uploads across a
// dropped connection and a server that dies.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>

#include "backup/store_sftp.h"
#include "core/error.h"
#include "tests/backup/sshd_fixture.h"
#include "tests/common/test_util.h"

namespace arche::backup {
namespace {

using test::random_bytes;
using test::SshServer;

Error error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "no error thrown";
  return Error(ErrorCategory::internal, "none");
}

void expect_one_line(const Error& e) { EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what(); }

TEST(SftpHostKey, UnknownKeyIsRefusedWithItsFingerprint) {
  SshServer server;
  SftpOptions options = server.options();
  test::TempDir dir;
  options.ssh.known_hosts = dir.file("empty_known_hosts");  // does not exist: nothing is known
  SftpStore store(server.url("repo"), options);
  const Error e = error_of([&] { store.connect(); });
  EXPECT_EQ(e.category(), ErrorCategory::crypto);
  EXPECT_NE(std::string(e.what()).find(server.host_fingerprint()), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find("unknown host key"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find("127.0.0.1"), std::string::npos) << e.what();
  expect_one_line(e);
  // Nothing was added behind the admin's back.
  EXPECT_EQ(error_of([&] { store.connect(); }).category(), ErrorCategory::crypto);
}

TEST(SftpHostKey, ChangedKeyIsRefusedWithTheNewFingerprint) {
  SshServer server;
  {
    SftpStore store(server.url("repo"), server.options());
    store.write("config", random_bytes(10, 1), WriteMode::create);
  }
  const std::string old_fingerprint = server.host_fingerprint();
  server.replace_host_key();
  ASSERT_NE(server.host_fingerprint(), old_fingerprint);
  SftpStore store(server.url("repo"), server.options());
  const Error e = error_of([&] { store.read("config"); });
  EXPECT_EQ(e.category(), ErrorCategory::crypto);
  EXPECT_NE(std::string(e.what()).find("CHANGED"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find(server.host_fingerprint()), std::string::npos) << e.what();
  expect_one_line(e);
}

TEST(SftpAuth, WrongKeyIsRefusedInOneLine) {
  SshServer server;
  test::TempDir dir;
  ASSERT_EQ(test::run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", dir.file("other")}).exit_code, 0);
  SftpOptions options = server.options();
  options.ssh.identity_files = {dir.file("other")};
  SftpStore store(server.url("repo"), options);
  const Error e = error_of([&] { store.connect(); });
  EXPECT_EQ(e.category(), ErrorCategory::permission);
  EXPECT_NE(std::string(e.what()).find("authentication as " + server.user() + " failed"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find(dir.file("other")), std::string::npos) << e.what();
  expect_one_line(e);
}

TEST(SftpAuth, EncryptedKeyWithItsPassphraseFromAFile) {
  SshServer server;
  test::TempDir dir;
  // The server's user key, encrypted: same key, so the server accepts it.
  ASSERT_EQ(test::run({"cp", server.user_key_file(), dir.file("key")}).exit_code, 0);
  ASSERT_EQ(test::run({"ssh-keygen", "-q", "-p", "-N", "correct horse", "-f", dir.file("key")}).exit_code, 0);
  SftpOptions options = server.options();
  options.ssh.identity_files = {dir.file("key")};
  {
    SftpStore store(server.url("repo"), options);  // no passphrase source: the key is skipped
    EXPECT_EQ(error_of([&] { store.connect(); }).category(), ErrorCategory::permission);
  }
  test::write_file(dir.file("passphrase"), {'c', 'o', 'r', 'r', 'e', 'c', 't', ' ', 'h', 'o', 'r', 's', 'e', '\n'});
  PassphraseSource source;
  source.file = dir.file("passphrase");
  source.env = "ARCHE_TEST_NO_SUCH_VARIABLE";
  options.ssh.key_passphrase = source;
  SftpStore store(server.url("repo"), options);
  EXPECT_NO_THROW(store.connect());
}

TEST(SftpAuth, SshAgent) {
  ARCHE_REQUIRE_PROGRAM("ssh-agent");
  SshServer server;
  test::TempDir dir;
  const std::string socket = dir.file("agent.sock");
  // -D: in the foreground, as our child; killed at the end of the test.
  const pid_t agent = fork();
  if (agent == 0) {
    const int null = ::open("/dev/null", O_WRONLY);
    dup2(null, 1);
    execlp("ssh-agent", "ssh-agent", "-D", "-a", socket.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  struct Reap {
    pid_t pid;
    ~Reap() {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
    }
  } reap{agent};
  for (int i = 0; i < 200 && access(socket.c_str(), F_OK) != 0; ++i) usleep(10000);
  const test::CommandResult added =
      test::run({"env", "SSH_AUTH_SOCK=" + socket, "ssh-add", "-q", server.user_key_file()});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  SftpOptions options = server.options();
  options.ssh.identity_files.clear();  // the agent is the only way in
  options.ssh.agent_socket = socket;
  SftpStore store(server.url("repo"), options);
  store.write("config", random_bytes(10, 2), WriteMode::create);
  EXPECT_EQ(store.read("config"), random_bytes(10, 2));
}

TEST(SftpPaths, HomeRelativeAndAbsolute) {
  SshServer server;
  // The user's login directory is the real home of the user running the tests; a
  // relative path there would write outside the test's directory, so only its form is
  // checked. Absolute paths are what the other tests use.
  SftpStore relative("sftp://" + server.user() + "@127.0.0.1:" + std::to_string(server.port()) + "/~/repo", server.options());
  EXPECT_EQ(relative.remote_path("config"), "repo/config");
  SftpStore absolute(server.url("repo"), server.options());
  EXPECT_EQ(absolute.remote_path("data/ab/x"), server.data_dir() + "/repo/data/ab/x");
}

TEST(SftpDroppedConnection, UploadResumesOverANewSession) {
  SshServer server;
  SftpStore store(server.url("repo"), server.options());
  const auto data = random_bytes(24 << 20, 3);
  auto w = store.create("data/ab/resumed", WriteMode::create);
  w->append(std::span(data).first(8 << 20));
  server.kill_connections();  // sshd stays: the next connection is accepted
  w->append(std::span(data).subspan(8 << 20));
  w->commit();
  EXPECT_EQ(store.read("data/ab/resumed"), data);
  EXPECT_TRUE(store.temporaries("").empty());
}

TEST(SftpDroppedConnection, RequestsAreRetriedOverANewSession) {
  SshServer server;
  SftpStore store(server.url("repo"), server.options());
  store.write("snapshots/s", random_bytes(1000, 4), WriteMode::create);
  server.kill_connections();
  EXPECT_EQ(store.read("snapshots/s"), random_bytes(1000, 4));
  server.kill_connections();
  EXPECT_EQ(store.list("snapshots/").size(), 1u);
  server.kill_connections();
  auto reader = store.open("snapshots/s");
  server.kill_connections();
  std::vector<uint8_t> part(10);
  reader->read(990, part);
  EXPECT_TRUE(std::equal(part.begin(), part.end(), random_bytes(1000, 4).begin() + 990));
}

TEST(SftpServerKilled, MidWriteGivesOneErrorAndNoObjectThenARerunSucceeds) {
  SshServer server;
  const auto data = random_bytes(32 << 20, 5);
  {
    SftpStore store(server.url("repo"), server.options());
    store.write("config", random_bytes(100, 6), WriteMode::create);
    std::optional<Error> error;
    try {
      auto w = store.create("data/cd/killed", WriteMode::create);
      w->append(std::span(data).first(8 << 20));
      server.kill();  // sshd and every session: gone until started again
      w->append(std::span(data).subspan(8 << 20));
      w->commit();
    } catch (const Error& e) {
      error = e;
    }
    ASSERT_TRUE(error) << "the write succeeded without a server";
    EXPECT_EQ(error->category(), ErrorCategory::io) << error->what();
    EXPECT_NE(std::string(error->what()).find("127.0.0.1"), std::string::npos) << error->what();
    EXPECT_NE(std::string(error->what()).find("data/cd/killed"), std::string::npos) << error->what();
    expect_one_line(*error);
  }
  server.start();
  SftpStore store(server.url("repo"), server.options());
  EXPECT_FALSE(store.stat("data/cd/killed"));
  EXPECT_TRUE(store.list("data/").empty());
  // The half-written temporary object remains (the server was gone when the writer
  // gave up): never listed, found for removal by temporaries().
  const std::vector<ObjectInfo> leftovers = store.temporaries("");
  ASSERT_EQ(leftovers.size(), 1u);
  EXPECT_TRUE(leftovers[0].name.starts_with("data/cd/.killed.arche-tmp-")) << leftovers[0].name;
  EXPECT_EQ(store.remove_temporaries("", std::chrono::hours(1)), 0u);  // young: left alone
  EXPECT_EQ(store.remove_temporaries("", std::chrono::seconds(0)), 1u);
  EXPECT_TRUE(store.temporaries("").empty());

  auto w = store.create("data/cd/killed", WriteMode::create);
  w->append(data);
  w->commit();
  EXPECT_EQ(store.read("data/cd/killed"), data);
  EXPECT_EQ(store.read("config"), random_bytes(100, 6));
}

TEST(SftpServerKilled, RequestsFailWithOneErrorWhileTheServerIsAway) {
  SshServer server;
  SftpStore store(server.url("repo"), server.options());
  store.write("config", random_bytes(100, 7), WriteMode::create);
  server.kill();
  const Error e = error_of([&] { store.read("config"); });
  EXPECT_EQ(e.category(), ErrorCategory::io);
  EXPECT_NE(std::string(e.what()).find("gave up after 4 attempts"), std::string::npos) << e.what();
  expect_one_line(e);
  server.start();
  EXPECT_EQ(store.read("config"), random_bytes(100, 7));
}

TEST(SftpCapabilities, OpenSshOffersAtomicReplaceAndExclusiveCreate) {
  SshServer server;
  SftpStore store(server.url("repo"), server.options());
  const StoreCapabilities caps = store.capabilities();
  EXPECT_TRUE(caps.atomic_rename);  // posix-rename@openssh.com
  EXPECT_TRUE(caps.exclusive_create);
  EXPECT_TRUE(caps.consistent_listing);
  EXPECT_FALSE(caps.local);
}

TEST(SftpFullDisk, AFullFileSystemIsANoSpaceErrorAndLeavesNothing) {
  ARCHE_SKIP_UNLESS_ROOT();
  SshServer server;
  const std::string small = server.data_dir() + "/small";
  ASSERT_EQ(::mkdir(small.c_str(), 0700), 0);
  const test::CommandResult mounted = test::run({"mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", small});
  if (mounted.exit_code != 0) GTEST_SKIP() << "cannot mount a tmpfs here: " << mounted.err;
  struct Unmount {
    std::string path;
    ~Unmount() { test::run({"umount", path}); }
  } unmount{small};
  SftpStore store(server.url("small/repo"), server.options());
  const Error e = error_of([&] { store.write("data/ab/too-big", random_bytes(4 << 20, 8), WriteMode::create); });
  EXPECT_EQ(e.category(), ErrorCategory::no_space) << e.what();
  EXPECT_NE(std::string(e.what()).find("data/ab/too-big"), std::string::npos) << e.what();
  expect_one_line(e);
  EXPECT_FALSE(store.stat("data/ab/too-big"));
  EXPECT_TRUE(store.temporaries("").empty());  // the writer removed its temporary object
  store.write("config", random_bytes(1000, 9), WriteMode::create);  // the space is back
  EXPECT_EQ(store.read("config"), random_bytes(1000, 9));
}

}  // namespace
}  // namespace arche::backup
