#include "tests/backup/store_factories.h"

#include "backup/store_local.h"
#include "tests/backup/memory_store.h"

#ifdef ARCHE_TEST_REMOTE_STORES
#include <atomic>
#include <ctime>
#include <mutex>

#include "backup/store_s3.h"
#include "backup/store_sftp.h"
#include "tests/backup/rgw_fixture.h"
#include "tests/backup/sshd_fixture.h"
#endif

namespace arche::backup::test {
namespace {

#ifdef ARCHE_TEST_REMOTE_STORES
std::atomic<int> counter{0};

arche::test::SshServer& shared_sshd() {
  static std::mutex mutex;
  static std::unique_ptr<arche::test::SshServer> server;
  std::lock_guard lock(mutex);
  if (!server) server = std::make_unique<arche::test::SshServer>();
  return *server;
}

std::shared_ptr<Store> sftp_store(const std::string&) {
  arche::test::SshServer& server = shared_sshd();
  return std::make_shared<SftpStore>(server.url("store-" + std::to_string(++counter)), server.options());
}

std::shared_ptr<Store> s3_store(const std::string&) {
  arche::test::RgwCluster& cluster = arche::test::RgwCluster::shared();
  static std::once_flag bucket;
  std::call_once(bucket, [&] { cluster.store("arche-contract"); });
  S3Options options = cluster.options();
  options.part_size = 5 << 20;  // S3's smallest, so that the tests' objects take several parts
  const std::string prefix = "t" + std::to_string(++counter) + "-" + std::to_string(::time(nullptr));
  return std::make_shared<S3Store>(cluster.url("arche-contract", prefix), cluster.credentials(), options);
}
#endif

}  // namespace

std::vector<StoreFactory> store_factories() {
  std::vector<StoreFactory> out = {
      {"Local", [](const std::string& scratch) { return std::shared_ptr<Store>(LocalStore::create(scratch + "/repo")); }},
      {"Memory", [](const std::string&) { return std::shared_ptr<Store>(std::make_shared<MemoryStore>()); }},
      // An S3-like store: listings lag behind writes, no rename, no exclusive create.
      {"EventualMemory",
       [](const std::string&) {
         MemoryStore::Options o;
         o.listing_lag = std::chrono::milliseconds(30);
         o.capabilities.listing_delay_ms = 60;
         return std::shared_ptr<Store>(std::make_shared<MemoryStore>(o));
       }},
  };
#ifdef ARCHE_TEST_REMOTE_STORES
  out.push_back({"Sftp", sftp_store});
  out.push_back({"S3", s3_store});
#endif
  return out;
}

}  // namespace arche::backup::test
