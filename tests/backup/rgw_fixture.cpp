#include "tests/backup/rgw_fixture.h"

#include <unistd.h>

#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include "tests/backup/sshd_fixture.h"

namespace arche::test {
namespace {

std::string script(const char* name) { return std::string(ARCHE_SOURCE_DIR) + "/tests/backup/ceph/" + name; }

std::map<std::string, std::string> parse_env_lines(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    const size_t eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

std::string log_tail(const std::string& dir) {
  const CommandResult r = run({"sh", "-c", "tail -n 5 " + dir + "/log/*.log 2>/dev/null | cut -c1-300"});
  return r.out;
}

}  // namespace

RgwCluster& RgwCluster::shared() {
  // Destroyed at exit, after the tests: that stops the cluster.
  static std::unique_ptr<RgwCluster> cluster;
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  if (!cluster) cluster.reset(new RgwCluster());
  return *cluster;
}

RgwCluster::RgwCluster() : dir_(std::make_unique<TempDir>()) {
  const uint16_t mon_port = free_port();
  uint16_t rgw_port = free_port(), tls_port = free_port();
  while (rgw_port == mon_port) rgw_port = free_port();
  while (tls_port == mon_port || tls_port == rgw_port) tls_port = free_port();
  const CommandResult r = run({script("start-rgw.sh"), dir_->path(), std::to_string(mon_port), std::to_string(rgw_port),
                               std::to_string(tls_port), std::to_string(::getpid())});
  if (r.exit_code != 0) {
    throw std::runtime_error("the Ceph test cluster did not start (exit " + std::to_string(r.exit_code) + "): " + r.err +
                             "\n" + log_tail(dir_->path()));
  }
  const auto env = parse_env_lines(r.out);
  endpoint_ = env.at("RGW_ENDPOINT");
  tls_endpoint_ = env.at("RGW_TLS_ENDPOINT");
  ca_file_ = env.at("RGW_CA_FILE");
  access_key_ = env.at("AWS_ACCESS_KEY_ID");
  secret_key_ = env.at("AWS_SECRET_ACCESS_KEY");
}

RgwCluster::~RgwCluster() { run({script("stop-rgw.sh"), dir_->path()}); }

std::string RgwCluster::url(const std::string& bucket, const std::string& prefix) const {
  return "s3+http://" + endpoint_ + "/" + bucket + (prefix.empty() ? "" : "/" + prefix);
}

std::string RgwCluster::https_url(const std::string& bucket) const { return "s3://" + tls_endpoint_ + "/" + bucket; }

backup::s3::Credentials RgwCluster::credentials() const {
  backup::s3::Credentials c;
  c.access_key_id = access_key_;
  c.secret_access_key = backup::SecretBytes(secret_key_.size());
  std::memcpy(c.secret_access_key.data(), secret_key_.data(), secret_key_.size());
  c.source = "the test cluster";
  return c;
}

backup::S3Options RgwCluster::options() const {
  backup::S3Options o;
  o.addressing = backup::S3Options::Addressing::path;
  o.region = "us-east-1";
  o.retry.attempts = 4;
  o.retry.first_delay = std::chrono::milliseconds(100);
  o.retry.max_delay = std::chrono::milliseconds(400);
  o.http.connect_timeout = std::chrono::milliseconds(3000);
  o.http.stall_timeout = std::chrono::seconds(30);
  return o;
}

std::unique_ptr<backup::S3Store> RgwCluster::store(const std::string& bucket, const std::string& prefix) const {
  auto s = std::make_unique<backup::S3Store>(url(bucket, prefix), credentials(), options());
  s->ensure_bucket();
  return s;
}

std::map<std::string, std::string> RgwCluster::environment() const {
  return {{"AWS_ACCESS_KEY_ID", access_key_}, {"AWS_SECRET_ACCESS_KEY", secret_key_}, {"AWS_SESSION_TOKEN", ""}};
}

void RgwCluster::damage_object(const std::string& key, uint64_t offset) {
  // The RADOS name of a small object is "<bucket marker>_<key>".
  const std::string conf = dir_->file("ceph.conf"), pool = "default.rgw.buckets.data";
  const CommandResult listed = run({"rados", "-c", conf, "-p", pool, "ls"});
  if (listed.exit_code != 0) throw std::runtime_error("rados ls failed: " + listed.err);
  std::istringstream lines(listed.out);
  std::string rados_name;
  for (std::string line; std::getline(lines, line);) {
    if (line.size() > key.size() && line.ends_with("_" + key)) rados_name = line;
  }
  if (rados_name.empty()) throw std::runtime_error("no RADOS object for " + key);
  const std::string file = dir_->file("damaged");
  if (run({"rados", "-c", conf, "-p", pool, "get", rados_name, file}).exit_code != 0) throw std::runtime_error("rados get failed");
  std::vector<uint8_t> bytes = read_file(file);
  if (offset >= bytes.size()) throw std::runtime_error("offset beyond the RADOS object");
  bytes[offset] ^= 0x01;
  write_file(file, bytes);
  if (run({"rados", "-c", conf, "-p", pool, "put", rados_name, file}).exit_code != 0) throw std::runtime_error("rados put failed");
}

void RgwCluster::kill_gateway() { run({script("stop-rgw.sh"), "--rgw", dir_->path()}); }

void RgwCluster::start_gateway() {
  const CommandResult r = run({script("start-rgw.sh"), "--rgw-only", dir_->path()});
  if (r.exit_code != 0) throw std::runtime_error("radosgw did not come back: " + r.err + "\n" + log_tail(dir_->path()));
}

}  // namespace arche::test
