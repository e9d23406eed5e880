#include "tests/backup/store_factories.h"

#include <atomic>
#include <mutex>

#include "backup/store_s3.h"
#include "backup/store_sftp.h"
#include "tests/backup/rgw_fixture.h"
#include "tests/backup/sshd_fixture.h"

namespace arche::test {
namespace {

std::atomic<int> counter{0};

SshServer& shared_sshd() {
  static std::mutex mutex;
  static std::unique_ptr<SshServer> server;
  std::lock_guard lock(mutex);
  if (!server) server = std::make_unique<SshServer>();
  return *server;
}

std::unique_ptr<backup::Store> sftp_store() {
  SshServer& server = shared_sshd();
  return std::make_unique<backup::SftpStore>(server.url("contract-" + std::to_string(++counter)), server.options());
}

std::unique_ptr<backup::Store> s3_store() {
  RgwCluster& cluster = RgwCluster::shared();
  static std::once_flag bucket;
  std::call_once(bucket, [&] { cluster.store("arche-contract"); });
  backup::S3Options options = cluster.options();
  options.part_size = 5 << 20;  // S3's smallest, so that the tests' objects take several parts
  const std::string prefix = "t" + std::to_string(++counter) + "-" + std::to_string(::time(nullptr));
  return std::make_unique<backup::S3Store>(cluster.url("arche-contract", prefix), cluster.credentials(), options);
}

}  // namespace

std::vector<StoreFactory> store_factories() {
  return {
      {"Sftp", sftp_store},
      {"S3", s3_store},
  };
}

}  // namespace arche::test
