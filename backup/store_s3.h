// A repository in an S3 bucket (AWS S3, Ceph RADOS Gateway, MinIO, ...), through
// libcurl and AWS Signature V4 (s3_sigv4.h). docs/storage.md "S3" says what it
// guarantees; in short:
//
//   URL         s3://[ACCESS@]host[:port]/bucket[/prefix]      https
//               s3+http://[ACCESS@]host[:port]/bucket[/prefix] plain http (a gateway on
//               the same machine or LAN; data is encrypted by the repository anyway)
//   objects     key = prefix + "/" + name; names are the repository's own
//   atomicity   S3 makes an object visible only once its PUT (or the completion of a
//               multipart upload) succeeded: a reader never sees a part of it
//   writes      one PUT up to the part size (ARCHE_S3_PART_SIZE, 8 MiB), else a
//               multipart upload streamed part by part; an ObjectWriter destroyed
//               before commit() aborts its upload, and abort_incomplete_uploads()
//               removes what a killed process left
//   create      WriteMode::create is atomic when the endpoint honours
//               `If-None-Match: *` on PUT (RGW and AWS do; probed once per store,
//               ARCHE_S3_CONDITIONAL_PUT=yes|no overrides); otherwise it is checked by a
//               HEAD just before the PUT, which two writers can race
//   rename      none: capabilities().atomic_rename is false
//   retries     5xx, 429/SlowDown, RequestTimeout, timeouts and dropped connections,
//               with backoff and jitter (remote_retry.h); connect and stall timeouts
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "backup/remote_retry.h"
#include "backup/s3_credentials.h"
#include "backup/s3_http.h"
#include "backup/s3_xml.h"
#include "backup/store.h"

namespace arche::backup {

struct S3Options {
  enum class Addressing { automatic, path, virtual_host };
  enum class ConditionalPut { automatic, yes, no };

  RetryPolicy retry;
  s3::HttpOptions http;
  // Path style (https://host/bucket/key) unless the host is AWS's, where virtual-host
  // style (https://bucket.host/key) is the rule. ARCHE_S3_ADDRESSING=path|virtual-host.
  Addressing addressing = Addressing::automatic;
  // AWS_REGION, AWS_DEFAULT_REGION, the region in an AWS host name, else us-east-1
  // (what RGW and MinIO accept by default).
  std::string region;
  size_t part_size = 8u << 20;  // ARCHE_S3_PART_SIZE in bytes, at least 5 MiB (S3's minimum)
  ConditionalPut conditional_put = ConditionalPut::automatic;
  unsigned parallelism = 8;  // capabilities().parallelism

  // The defaults with the environment variables above, AWS_CA_BUNDLE and
  // ARCHE_STORE_RETRIES / ARCHE_STORE_RETRY_DELAY_MS applied.
  static S3Options from_environment();
};

class S3Store : public Store {
 public:
  S3Store(const std::string& url, s3::Credentials credentials, S3Options options);
  // Credentials and options from the environment (s3_credentials.h).
  static std::unique_ptr<S3Store> from_url(const std::string& url);
  ~S3Store() override;

  std::string location() const override { return location_; }
  StoreCapabilities capabilities() const override;

  std::vector<ObjectInfo> list(std::string_view prefix) override;
  std::optional<ObjectInfo> stat(std::string_view name) override;
  std::vector<uint8_t> read(std::string_view name) override;
  std::vector<uint8_t> read_range(std::string_view name, uint64_t offset, uint64_t length) override;
  std::unique_ptr<ObjectReader> open(std::string_view name) override;
  void write(std::string_view name, std::span<const uint8_t> data, WriteMode mode) override;
  std::unique_ptr<ObjectWriter> create(std::string_view name, WriteMode mode) override;
  void remove(std::string_view name) override;

  // Creates the bucket when it does not exist (for `backup init`).
  void ensure_bucket();
  // Multipart uploads below the prefix that were started and never completed nor
  // aborted (a writer killed with its process, or cut off from the endpoint).
  std::vector<s3::PendingUpload> incomplete_uploads();
  // Aborts those started more than `older_than` ago (a grace period, so that uploads
  // of backups still running are left alone); returns how many.
  size_t abort_incomplete_uploads(std::chrono::seconds older_than);

  // One request, signed and retried; used by the writer and reader classes.
  struct Call {
    std::string method = "GET";
    std::string key;  // the object's full key; "" for the bucket
    s3::HeaderList query;
    s3::HeaderList headers;  // lower-case names: range, if-none-match, content-type
    std::span<const uint8_t> body;
    std::span<uint8_t> into;
    size_t max_reply = 0;  // 0: HttpOptions::max_reply_bytes
  };
  struct Reply {
    s3::HttpResponse response;
    unsigned attempts = 0;
  };
  // Returns the reply once it is not worth retrying (any status); throws an io error
  // naming `what` when every attempt failed.
  Reply call(const Call& c, std::string_view what);
  // One attempt only (aborting an upload from a destructor).
  Reply call_once(const Call& c, std::string_view what);
  // Throws the error a non-2xx reply means (404 not_found, 403 permission, ...).
  [[noreturn]] void fail_reply(const s3::HttpResponse& response, std::string_view what) const;

  std::string key_of(std::string_view name) const;
  size_t part_size() const { return options_.part_size; }
  bool conditional_put() const;

 private:
  Reply call_with(const Call& c, std::string_view what, const RetryPolicy& policy);
  void put(std::string_view name, std::span<const uint8_t> data, WriteMode mode);

  std::string location_;
  bool https_ = true;
  std::string host_;  // endpoint authority ("host:port")
  std::string bucket_;
  std::string prefix_;  // "" or "backups/a" (no trailing '/')
  bool virtual_host_ = false;
  s3::Credentials credentials_;
  S3Options options_;
  std::unique_ptr<s3::HttpClient> http_;
  mutable std::mutex probe_mutex_;
  mutable std::optional<bool> conditional_put_;
};

}  // namespace arche::backup
