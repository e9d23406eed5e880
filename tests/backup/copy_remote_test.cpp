// Issue 12, acceptance 5: `arche backup copy` local → SFTP → S3 → local through the
// CLI, on the test's own sshd and radosgw. Every snapshot restores byte-identical at
// the end; the copies move packs as they are, so no store holds the marker strings,
// and the S3 leg goes through a relay that records the bytes on the wire.
#include <gtest/gtest.h>

#include <boost/filesystem.hpp>

#include "backup/store.h"
#include "core/json.h"
#include "tests/backup/backup_test_util.h"
#include "tests/backup/rgw_fixture.h"
#include "tests/backup/sshd_fixture.h"
#include "tests/backup/tcp_recorder.h"

namespace fs = boost::filesystem;

namespace arche::backup::test {
namespace {

const std::string kMarker = "Steuerberater Vertrag Hoffmann KG";

bool store_holds(const std::string& url, const std::string& needle) {
  std::unique_ptr<Store> store = open_store(url);
  for (const ObjectInfo& o : store->list("")) {
    const std::vector<uint8_t> data = store->read(o.name);
    if (std::search(data.begin(), data.end(), needle.begin(), needle.end()) != data.end()) return true;
  }
  return false;
}

TEST(RemoteCopy, LocalToSftpToS3ToLocalRestoresEverySnapshot) {
  use_passphrase();
  arche::test::SshServer sshd;
  arche::test::RgwCluster& rgw = arche::test::RgwCluster::shared();
  for (const auto& env : {sshd.environment(), rgw.environment()})
    for (const auto& [name, value] : env) ::setenv(name.c_str(), value.c_str(), 1);
  rgw.store("arche-copy");
  // The S3 leg through a relay that keeps every byte it forwards.
  arche::test::TcpRecorder relay(rgw.endpoint());

  TempDir dir;
  const std::string data = dir.file("data");
  fs::create_directories(data);
  std::string text;
  for (int i = 0; i < 4000; ++i) text += kMarker + " " + std::to_string(i) + "\n";
  arche::test::write_file(data + "/contract.txt", {text.begin(), text.end()});
  write_random_file(data + "/blob.bin", 2u << 20, 5001);
  make_test_image(dir.file("disk.raw"), "32M", kMarker);

  const std::string local = dir.file("local");
  init_repo(local, {"--pack-size", "1M"});
  backup_ok({"create", local + "::first", data, "--image", dir.file("disk.raw")});
  write_random_file(data + "/second.bin", 1u << 20, 5002);
  backup_ok({"create", local + "::second", data});

  const std::string sftp = sshd.url("offsite");
  const std::string s3 = "s3+http://" + relay.endpoint() + "/arche-copy/repo-" + std::to_string(::time(nullptr));
  const std::string back = dir.file("back");
  const std::vector<std::string> kdf{"--kdf-memory", "8M", "--kdf-ops", "1"};
  auto init_replica = [&](const std::string& to, const std::string& from) {
    std::vector<std::string> args{"init", to, "--same-key-as", from};
    args.insert(args.end(), kdf.begin(), kdf.end());
    backup_ok(args);
  };
  init_replica(sftp, local);
  backup_ok({"copy", local, sftp});
  init_replica(s3, sftp);
  backup_ok({"copy", sftp, s3});
  init_replica(back, s3);
  backup_ok({"copy", s3, back});

  Json list = Json::parse(backup_ok({"list", back, "--json"}).out);
  ASSERT_EQ(list.size(), 2u) << list.dump();
  backup_ok({"restore", back + "::first", "--image", "disk.raw", "--to", dir.file("disk.out")});
  EXPECT_TRUE(same_content(dir.file("disk.raw"), dir.file("disk.out")));
  backup_ok({"restore", back + "::second", "--to", dir.file("out")});
  for (const char* f : {"/contract.txt", "/blob.bin", "/second.bin"})
    EXPECT_TRUE(same_content(data + f, dir.file("out") + data + f)) << f;
  CommandResult check = backup({"check", s3, "--read-data"});
  EXPECT_EQ(check.exit_code, 0) << check.err;

  for (const std::string& url : {local, sftp, s3, back}) EXPECT_FALSE(store_holds(url, kMarker)) << url;
  ASSERT_GT(relay.bytes().size(), 4u << 20) << "the S3 leg went through the relay";
  const std::string& wire = relay.bytes();
  EXPECT_EQ(wire.find(kMarker), std::string::npos) << "plaintext on the wire to S3";
}

}  // namespace
}  // namespace arche::backup::test
