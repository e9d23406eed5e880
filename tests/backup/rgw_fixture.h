// A real Ceph RADOS Gateway for tests: the one-node cluster of
// tests/backup/ceph/start-rgw.sh (one mon, one memstore OSD, radosgw on 127.0.0.1,
// no mgr, no cephx), started once per test binary at its first use (it needs ≈ 18 s
// and ≈ 350 MB) and stopped when the binary exits; a watcher started by the script
// stops it too if the binary dies without cleaning up.
//
// Part of the library arche_test_servers, for any test binary that needs an S3 peer.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "backup/store_s3.h"
#include "tests/common/test_util.h"

namespace arche::test {

class RgwCluster {
 public:
  // The binary's cluster, started at the first call (throws when it does not come up).
  static RgwCluster& shared();
  ~RgwCluster();

  const std::string& endpoint() const { return endpoint_; }  // "127.0.0.1:PORT"
  const std::string& access_key() const { return access_key_; }
  // s3+http://127.0.0.1:PORT/BUCKET[/PREFIX]
  std::string url(const std::string& bucket, const std::string& prefix = "") const;
  // s3://127.0.0.1:TLS-PORT/BUCKET: https with a self-signed certificate, which
  // ca_file() holds (for HttpOptions::ca_bundle / AWS_CA_BUNDLE).
  std::string https_url(const std::string& bucket) const;
  const std::string& ca_file() const { return ca_file_; }
  backup::s3::Credentials credentials() const;
  // Short retries, path-style addressing.
  backup::S3Options options() const;
  // A store on a fresh bucket (created here).
  std::unique_ptr<backup::S3Store> store(const std::string& bucket, const std::string& prefix = "") const;
  // AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, for tests that run the arche CLI.
  std::map<std::string, std::string> environment() const;

  // Flips one byte of an object in RADOS itself, below the gateway (a damaged disk):
  // the gateway serves the damaged bytes. `key` is the full S3 key, unique among the
  // cluster's buckets; objects up to 4 MiB (one RADOS object).
  void damage_object(const std::string& key, uint64_t offset);

  // SIGKILL to radosgw (mon and osd stay): requests fail as with a crashed gateway.
  void kill_gateway();
  // radosgw again; returns when it answers a PUT.
  void start_gateway();

 private:
  RgwCluster();
  std::unique_ptr<TempDir> dir_;
  std::string endpoint_;
  std::string tls_endpoint_;
  std::string ca_file_;
  std::string access_key_;
  std::string secret_key_;
};

}  // namespace arche::test
