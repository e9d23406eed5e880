// What only the S3 store does: against the real Ceph gateway (a gateway killed in the
// middle of a multipart upload, damaged objects, conditional PUT, credentials), and
// against a small fake HTTP server here for what a healthy gateway never does on
// demand (throttling, 5xx, stalls, dropped connections).
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <thread>

#include "backup/store_s3.h"
#include "core/error.h"
#include "tests/backup/rgw_fixture.h"
#include "tests/backup/sshd_fixture.h"
#include "tests/common/test_util.h"

namespace arche::backup {
namespace {

using test::random_bytes;
using test::RgwCluster;

Error error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "no error thrown";
  return Error(ErrorCategory::internal, "none");
}

std::string unique(const std::string& base) {
  static std::atomic<int> n{0};
  return base + "-" + std::to_string(::getpid()) + "-" + std::to_string(++n);
}

S3Options small_parts() {
  S3Options o = RgwCluster::shared().options();
  o.part_size = 5 << 20;
  return o;
}

TEST(RgwGatewayKilled, MidMultipartUploadGivesOneErrorNoObjectAndTheUploadIsAbortedLater) {
  RgwCluster& cluster = RgwCluster::shared();
  const std::string prefix = unique("killed");
  cluster.store("arche-s3-tests");
  S3Store store(cluster.url("arche-s3-tests", prefix), cluster.credentials(), small_parts());
  const auto data = random_bytes(16 << 20, 1);
  std::optional<Error> error;
  {
    auto w = store.create("data/ab/killed", WriteMode::create);
    try {
      w->append(std::span(data).first(6 << 20));  // one part uploaded
      cluster.kill_gateway();
      w->append(std::span(data).subspan(6 << 20));
      w->commit();
    } catch (const Error& e) {
      error = e;
    }
    // The writer goes while the gateway is down: its abort cannot reach it.
  }
  cluster.start_gateway();
  ASSERT_TRUE(error) << "the upload succeeded without a gateway";
  EXPECT_EQ(error->category(), ErrorCategory::io) << error->what();
  EXPECT_NE(std::string(error->what()).find(cluster.endpoint()), std::string::npos) << error->what();
  EXPECT_NE(std::string(error->what()).find("data/ab/killed"), std::string::npos) << error->what();
  EXPECT_EQ(std::string(error->what()).find('\n'), std::string::npos) << error->what();

  EXPECT_FALSE(store.stat("data/ab/killed"));
  EXPECT_TRUE(store.list("").empty());
  const std::vector<s3::PendingUpload> pending = store.incomplete_uploads();
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].key, "data/ab/killed");
  EXPECT_EQ(store.abort_incomplete_uploads(std::chrono::hours(1)), 0u);  // young: left alone
  EXPECT_EQ(store.abort_incomplete_uploads(std::chrono::seconds(0)), 1u);
  EXPECT_TRUE(store.incomplete_uploads().empty());

  // And a rerun succeeds.
  store.write("data/ab/killed", data, WriteMode::create);
  EXPECT_EQ(store.read("data/ab/killed"), data);
}

TEST(RgwMultipart, AnAbandonedWriterAbortsItsUpload) {
  RgwCluster& cluster = RgwCluster::shared();
  cluster.store("arche-s3-tests");
  S3Store store(cluster.url("arche-s3-tests", unique("abandoned")), cluster.credentials(), small_parts());
  {
    auto w = store.create("data/cd/abandoned", WriteMode::create);
    w->append(random_bytes(11 << 20, 2));  // two parts uploaded
    EXPECT_EQ(store.incomplete_uploads().size(), 1u);
  }
  EXPECT_TRUE(store.incomplete_uploads().empty());
  EXPECT_FALSE(store.stat("data/cd/abandoned"));
}

TEST(RgwMultipart, CreateOverAnExistingObjectIsRefused) {
  RgwCluster& cluster = RgwCluster::shared();
  cluster.store("arche-s3-tests");
  S3Store store(cluster.url("arche-s3-tests", unique("exists")), cluster.credentials(), small_parts());
  store.write("data/ef/x", random_bytes(100, 3), WriteMode::create);
  auto w = store.create("data/ef/x", WriteMode::create);
  EXPECT_EQ(error_of([&] {
              w->append(random_bytes(12 << 20, 4));
              w->commit();
            }).category(),
            ErrorCategory::exists);
  w.reset();
  EXPECT_EQ(store.read("data/ef/x"), random_bytes(100, 3));
  EXPECT_TRUE(store.incomplete_uploads().empty());
}

TEST(RgwDamage, ADamagedObjectIsReadAsTheBytesStored) {
  // The gateway does not check what it serves: finding the damage is the
  // repository's job (check --read-data); the store hands over the bytes.
  RgwCluster& cluster = RgwCluster::shared();
  const std::string prefix = unique("damaged");
  cluster.store("arche-s3-damage");
  S3Store prefixed(cluster.url("arche-s3-damage", prefix), cluster.credentials(), cluster.options());
  const auto data = random_bytes(1 << 20, 5);
  prefixed.write("data/12/pack", data, WriteMode::create);
  cluster.damage_object(prefix + "/data/12/pack", 123456);
  const std::vector<uint8_t> read = prefixed.read("data/12/pack");
  ASSERT_EQ(read.size(), data.size());
  EXPECT_NE(read, data);
  EXPECT_EQ(read[123456], data[123456] ^ 0x01);
  const auto range = prefixed.read_range("data/12/pack", 123450, 10);
  EXPECT_EQ(range[6], data[123456] ^ 0x01);
}

TEST(RgwConditionalPut, IsDetectedAndCanBeTurnedOff) {
  RgwCluster& cluster = RgwCluster::shared();
  cluster.store("arche-s3-tests");
  S3Store probed(cluster.url("arche-s3-tests", unique("probe")), cluster.credentials(), cluster.options());
  EXPECT_TRUE(probed.capabilities().exclusive_create) << "Ceph 16's radosgw honours If-None-Match: *";
  EXPECT_FALSE(probed.capabilities().atomic_rename);
  EXPECT_TRUE(probed.list("").empty()) << "the probe object is gone";

  S3Options off = cluster.options();
  off.conditional_put = S3Options::ConditionalPut::no;
  S3Store plain(cluster.url("arche-s3-tests", unique("plain")), cluster.credentials(), off);
  EXPECT_FALSE(plain.capabilities().exclusive_create);
  plain.write("locks/l", random_bytes(10, 6), WriteMode::create);
  EXPECT_EQ(error_of([&] { plain.write("locks/l", random_bytes(10, 7), WriteMode::create); }).category(),
            ErrorCategory::exists);  // by a HEAD first: not atomic, still refused
}

TEST(RgwCredentials, AWrongSecretIsRefusedWithoutShowingIt) {
  RgwCluster& cluster = RgwCluster::shared();
  s3::Credentials wrong = cluster.credentials();
  const std::string bad = "not-the-secret-at-all-000000000000000000";
  wrong.secret_access_key = SecretBytes(bad.size());
  std::memcpy(wrong.secret_access_key.data(), bad.data(), bad.size());
  S3Store store(cluster.url("arche-s3-tests"), std::move(wrong), cluster.options());
  const Error e = error_of([&] { store.stat("config"); });
  EXPECT_EQ(e.category(), ErrorCategory::permission) << e.what();
  EXPECT_NE(std::string(e.what()).find("the test cluster"), std::string::npos) << e.what();
  EXPECT_EQ(std::string(e.what()).find(bad), std::string::npos) << e.what();
}

TEST(RgwBucket, AMissingBucketIsNamedAndEnsureBucketCreatesIt) {
  RgwCluster& cluster = RgwCluster::shared();
  const std::string bucket = unique("fresh");
  S3Store store(cluster.url(bucket), cluster.credentials(), cluster.options());
  const Error e = error_of([&] { store.list(""); });
  EXPECT_EQ(e.category(), ErrorCategory::not_found);
  EXPECT_NE(std::string(e.what()).find("bucket " + bucket + " does not exist"), std::string::npos) << e.what();
  store.ensure_bucket();
  store.ensure_bucket();  // twice is fine
  EXPECT_TRUE(store.list("").empty());
}

TEST(RgwTls, HttpsWithTheGatewaysCertificate) {
  RgwCluster& cluster = RgwCluster::shared();
  cluster.store("arche-s3-tls");
  S3Options options = cluster.options();
  options.http.ca_bundle = cluster.ca_file();
  S3Store store(cluster.https_url("arche-s3-tls") + "/" + unique("tls"), cluster.credentials(), options);
  store.write("config", random_bytes(3000, 10), WriteMode::create);
  EXPECT_EQ(store.read("config"), random_bytes(3000, 10));
  EXPECT_EQ(store.list("").size(), 1u);
}

TEST(RgwTls, AnUntrustedCertificateIsRefusedAtOnce) {
  RgwCluster& cluster = RgwCluster::shared();
  S3Options options = cluster.options();
  options.http.ca_bundle = "/etc/ssl/certs/ca-certificates.crt";  // the public CAs: not the gateway's
  S3Store store(cluster.https_url("arche-s3-tls"), cluster.credentials(), options);
  const Error e = error_of([&] { store.stat("config"); });
  EXPECT_EQ(e.category(), ErrorCategory::permission) << e.what();
  EXPECT_NE(std::string(e.what()).find("TLS refused"), std::string::npos) << e.what();
}

// A fake S3 endpoint: answers each request with the next scripted reply (the last one
// again when the script is used up). A reply "stall" accepts and never answers; "drop"
// closes the connection without answering.
class FakeEndpoint {
 public:
  explicit FakeEndpoint(std::vector<std::string> replies) : replies_(std::move(replies)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    socklen_t length = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &length);
    port_ = ntohs(addr.sin_port);
    ::listen(listen_fd_, 16);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeEndpoint() {
    stopping_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    thread_.join();
    for (int fd : stalled_) ::close(fd);
  }
  std::string url() const { return "s3+http://127.0.0.1:" + std::to_string(port_) + "/bucket"; }
  int requests() const { return requests_; }

  static std::string reply(int status, const std::string& body, const std::string& extra = "") {
    return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra +
           "\r\n" + body;
  }

 private:
  void serve() {
    while (!stopping_) {
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      // One request per connection is enough for these tests: "Connection: close".
      std::string head;
      char c;
      while (head.find("\r\n\r\n") == std::string::npos && ::read(fd, &c, 1) == 1) head.push_back(c);
      const std::string& r = replies_[std::min<size_t>(requests_, replies_.size() - 1)];
      ++requests_;
      if (r == "stall") {
        stalled_.push_back(fd);
        continue;
      }
      if (r != "drop") {
        const std::string response = r.substr(0, r.find("\r\n") + 2) + "Connection: close\r\n" + r.substr(r.find("\r\n") + 2);
        [[maybe_unused]] ssize_t n = ::write(fd, response.data(), response.size());
      }
      ::close(fd);
    }
  }

  std::vector<std::string> replies_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<int> requests_{0};
  std::atomic<bool> stopping_{false};
  std::vector<int> stalled_;
  std::thread thread_;
};

s3::Credentials fake_credentials() {
  s3::Credentials c;
  c.access_key_id = "AKIDFAKE";
  c.secret_access_key = SecretBytes(6);
  std::memcpy(c.secret_access_key.data(), "secret", 6);
  c.source = "the test";
  return c;
}

S3Options fake_options() {
  S3Options o;
  o.addressing = S3Options::Addressing::path;
  o.conditional_put = S3Options::ConditionalPut::no;
  o.retry.attempts = 4;
  o.retry.first_delay = std::chrono::milliseconds(20);
  o.retry.max_delay = std::chrono::milliseconds(40);
  o.http.connect_timeout = std::chrono::milliseconds(2000);
  o.http.stall_timeout = std::chrono::seconds(1);
  return o;
}

const std::string kHeadOk = FakeEndpoint::reply(200, "", "Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\n");

TEST(S3Retry, ThrottlingAndServerErrorsAreRetried) {
  FakeEndpoint endpoint({FakeEndpoint::reply(503, "<Error><Code>SlowDown</Code></Error>"),
                         FakeEndpoint::reply(500, "<Error><Code>InternalError</Code></Error>"), "drop",
                         FakeEndpoint::reply(429, ""), kHeadOk});
  S3Options options = fake_options();
  options.retry.attempts = 5;
  S3Store store(endpoint.url(), fake_credentials(), options);
  const std::optional<ObjectInfo> info = store.stat("config");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->mtime, 784111777);
  EXPECT_EQ(endpoint.requests(), 5);
}

TEST(S3Retry, GivesUpWithOneErrorAfterTheLastAttempt) {
  FakeEndpoint endpoint({FakeEndpoint::reply(503, "<Error><Code>SlowDown</Code><Message>Please\nreduce</Message></Error>")});
  S3Store store(endpoint.url(), fake_credentials(), fake_options());
  const Error e = error_of([&] { store.read("snapshots/s"); });
  EXPECT_EQ(e.category(), ErrorCategory::io);
  EXPECT_EQ(endpoint.requests(), 4);
  EXPECT_NE(std::string(e.what()).find("HTTP 503 SlowDown"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find("snapshots/s"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find("gave up after 4 attempts"), std::string::npos) << e.what();
  EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
}

TEST(S3Retry, ClientErrorsAreNotRetried) {
  FakeEndpoint endpoint({FakeEndpoint::reply(403, "<Error><Code>AccessDenied</Code></Error>")});
  S3Store store(endpoint.url(), fake_credentials(), fake_options());
  EXPECT_EQ(error_of([&] { store.read("config"); }).category(), ErrorCategory::permission);
  EXPECT_EQ(endpoint.requests(), 1);
}

TEST(S3Timeout, AStalledServerIsGivenUpOn) {
  FakeEndpoint endpoint({"stall"});
  S3Options options = fake_options();
  options.retry.attempts = 2;
  S3Store store(endpoint.url(), fake_credentials(), options);
  const auto start = std::chrono::steady_clock::now();
  const Error e = error_of([&] { store.stat("config"); });
  EXPECT_EQ(e.category(), ErrorCategory::io);
  EXPECT_NE(std::string(e.what()).find("timed out"), std::string::npos) << e.what();
  EXPECT_EQ(endpoint.requests(), 2);
  // Each attempt waited for the stall timeout (a lower bound only).
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1900));
}

TEST(S3Timeout, NoServerAtAllIsAConnectError) {
  const uint16_t port = test::free_port();  // nobody listens there
  S3Store store("s3+http://127.0.0.1:" + std::to_string(port) + "/bucket", fake_credentials(), fake_options());
  const Error e = error_of([&] { store.stat("config"); });
  EXPECT_EQ(e.category(), ErrorCategory::io);
  EXPECT_NE(std::string(e.what()).find("cannot connect"), std::string::npos) << e.what();
}

TEST(S3Url, FormsAndErrors) {
  EXPECT_EQ(S3Store("s3://host:9000/b/p/q", fake_credentials(), fake_options()).location(), "s3://host:9000/b/p/q");
  EXPECT_EQ(S3Store("s3+http://host/b/", fake_credentials(), fake_options()).location(), "s3+http://host/b");
  EXPECT_EQ(error_of([] { S3Store("s3://host/", fake_credentials(), fake_options()); }).category(), ErrorCategory::usage);
  EXPECT_EQ(error_of([] { S3Store("s3://OTHERKEY@host/b", fake_credentials(), fake_options()); }).category(),
            ErrorCategory::usage);
}

}  // namespace
}  // namespace arche::backup
