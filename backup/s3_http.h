// HTTP/1.1 requests for S3Store through libcurl: a pool of easy handles (each keeps
// its connection alive between requests), the body sent from memory, the reply read
// into memory or straight into the caller's buffer (range reads), header lines parsed
// here (fuzzed: tests/fuzz/s3_fuzz.cpp). No retries here: S3Store decides what to
// retry, because only it knows which requests may be repeated.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "backup/s3_sigv4.h"

namespace arche::backup::s3 {

// One line of a reply's head as libcurl hands it over: the status line
// ("HTTP/1.1 200 OK"), a field ("ETag: \"abc\""), or the blank line that ends it.
struct HeaderLine {
  enum Kind { status, field, end, junk } kind = junk;
  long status_code = 0;
  std::string name;  // lower case
  std::string value;
};
HeaderLine parse_header_line(std::string_view line);

// `text` without the blanks and line ends around it (header values, lines of the
// credentials file).
std::string_view trim_blanks(std::string_view text);

// "Tue, 01 Dec 2026 21:03:59 GMT" (RFC 7231 IMF-fixdate) -> unix seconds.
std::optional<int64_t> parse_http_date(std::string_view text);

struct HttpRequest {
  std::string method = "GET";  // GET, HEAD, PUT, POST, DELETE
  std::string url;             // scheme://authority/encoded-path?encoded-query
  HeaderList headers;          // sent as they are (Host included)
  std::span<const uint8_t> body;
  // When not empty, a 2xx reply's body goes here and must fill it exactly.
  std::span<uint8_t> into;
  size_t max_reply = 0;  // bound of a reply read into memory; 0: HttpOptions::max_reply_bytes
};

struct HttpResponse {
  long status = 0;
  HeaderList headers;  // lower-case names
  std::vector<uint8_t> body;
  size_t into_bytes = 0;  // bytes written into HttpRequest::into

  std::optional<std::string> header(std::string_view name) const;
  std::string_view text() const { return {reinterpret_cast<const char*>(body.data()), body.size()}; }
};

struct HttpResult {
  // Transport outcome: ok, or a failure before a complete reply arrived.
  enum class Transport { ok, connect_failed, timed_out, dropped, tls_refused, too_large, other } transport = Transport::ok;
  std::string error;  // libcurl's text when transport != ok
  HttpResponse response;
};

struct HttpOptions {
  std::chrono::milliseconds connect_timeout{10000};
  // A transfer slower than 1 byte/s for this long is dropped (large objects have no
  // total time limit, a stalled connection does).
  std::chrono::seconds stall_timeout{60};
  std::string ca_bundle;  // AWS_CA_BUNDLE; "" for the system's
  size_t max_reply_bytes = 64u << 20;  // replies read into memory (listings, errors)
};

class HttpClient {
 public:
  explicit HttpClient(HttpOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Thread-safe: each call takes a handle of the pool for its duration.
  HttpResult perform(const HttpRequest& request);

 private:
  void* take_handle();
  void give_back(void* handle);

  HttpOptions options_;
  std::mutex mutex_;
  std::vector<void*> idle_;  // PooledHandle* (s3_http.cpp)
};

}  // namespace arche::backup::s3
