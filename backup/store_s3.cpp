#include "backup/store_s3.h"

#include <openssl/evp.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "backup/remote_url.h"
#include "backup/s3_objects.h"
#include "core/error.h"
#include "core/hex.h"
#include "core/log.h"
#include "core/version.h"

namespace arche::backup {
namespace {

using s3::HeaderList;
using s3::HttpResponse;
using s3::error_code;
using s3::one_line;
using s3::success;

// Why an attempt failed, when it is worth another one; "" when it is not.
std::string retry_reason(const s3::HttpResult& result) {
  using T = s3::HttpResult::Transport;
  switch (result.transport) {
    case T::ok: break;
    case T::connect_failed: return "cannot connect: " + one_line(result.error);
    case T::timed_out: return "timed out: " + one_line(result.error);
    case T::dropped: return "connection dropped: " + one_line(result.error);
    case T::tls_refused:
    case T::too_large:
    case T::other: return "";
  }
  const long status = result.response.status;
  if (status == 500 || status == 502 || status == 503 || status == 504 || status == 429) {
    const std::string code = error_code(result.response);
    return "HTTP " + std::to_string(status) + (code.empty() ? "" : " " + one_line(code, 64));
  }
  if (status == 400 && error_code(result.response) == "RequestTimeout") return "HTTP 400 RequestTimeout";
  return "";
}

std::string md5_hex(std::span<const uint8_t> data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned length = 0;
  if (!EVP_Digest(data.data(), data.size(), digest, &length, EVP_md5(), nullptr)) {
    fail(ErrorCategory::internal, "MD5 failed");
  }
  return to_hex(std::span<const uint8_t>(digest, length));
}

std::string unquote(std::string text) {
  if (text.size() >= 2 && text.front() == '"' && text.back() == '"') return text.substr(1, text.size() - 2);
  return text;
}

uint64_t content_length(const HttpResponse& response, std::string_view what) {
  const std::string text = response.header("content-length").value_or("");
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    fail(ErrorCategory::format, "{}: reply without a valid Content-Length", what);
  }
  return value;
}

std::string region_of_aws_host(const std::string& host) {
  // s3.eu-west-1.amazonaws.com, s3.dualstack.eu-west-1.amazonaws.com, s3-eu-west-1.amazonaws.com
  if (!host.ends_with(".amazonaws.com")) return "";
  std::vector<std::string> labels;
  for (size_t start = 0; start <= host.size();) {
    const size_t dot = std::min(host.find('.', start), host.size());
    labels.push_back(host.substr(start, dot - start));
    start = dot + 1;
  }
  for (size_t i = 0; i + 2 < labels.size(); ++i) {  // the last two are amazonaws.com
    if (labels[i] == "s3" || labels[i] == "dualstack") {
      const std::string& next = labels[i + 1];
      if (next != "amazonaws" && next != "dualstack") return next;
    } else if (labels[i].starts_with("s3-")) {
      return labels[i].substr(3);
    }
  }
  return "";
}

bool dns_compatible(const std::string& bucket) {
  return !bucket.empty() && std::all_of(bucket.begin(), bucket.end(), [](unsigned char c) {
    return std::islower(c) || std::isdigit(c) || c == '-';
  });
}

const char* env(const char* name) {
  const char* value = std::getenv(name);
  return value && *value ? value : nullptr;
}

}  // namespace

S3Options S3Options::from_environment() {
  S3Options o;
  o.retry = RetryPolicy::from_environment();
  if (const char* v = env("ARCHE_S3_ADDRESSING")) {
    const std::string_view mode(v);
    if (mode == "path") {
      o.addressing = Addressing::path;
    } else if (mode == "virtual-host") {
      o.addressing = Addressing::virtual_host;
    } else if (mode != "auto") {
      fail(ErrorCategory::usage, "ARCHE_S3_ADDRESSING={}: expected path, virtual-host or auto", mode);
    }
  }
  if (const char* v = env("AWS_REGION")) {
    o.region = v;
  } else if (const char* d = env("AWS_DEFAULT_REGION")) {
    o.region = d;
  }
  if (const char* v = env("ARCHE_S3_PART_SIZE")) {
    const std::string_view text(v);
    size_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value < (5u << 20) || value > (1u << 30)) {
      fail(ErrorCategory::usage, "ARCHE_S3_PART_SIZE={}: expected bytes from 5 MiB (5242880) to 1 GiB", text);
    }
    o.part_size = value;
  }
  if (const char* v = env("ARCHE_S3_CONDITIONAL_PUT")) {
    const std::string_view mode(v);
    if (mode == "yes") {
      o.conditional_put = ConditionalPut::yes;
    } else if (mode == "no") {
      o.conditional_put = ConditionalPut::no;
    } else if (mode != "auto") {
      fail(ErrorCategory::usage, "ARCHE_S3_CONDITIONAL_PUT={}: expected yes, no or auto", mode);
    }
  }
  if (const char* v = env("AWS_CA_BUNDLE")) o.http.ca_bundle = v;
  return o;
}

S3Store::S3Store(const std::string& url, s3::Credentials credentials, S3Options options)
    : credentials_(std::move(credentials)), options_(std::move(options)) {
  const RemoteUrl u = parse_remote_url(url);
  if (u.scheme != "s3" && u.scheme != "s3+http") fail(ErrorCategory::usage, "{}: not an s3:// or s3+http:// URL", url);
  https_ = u.scheme == "s3";
  host_ = u.authority();
  std::string_view path = u.path;
  while (path.starts_with("/")) path.remove_prefix(1);
  while (path.ends_with("/")) path.remove_suffix(1);
  const size_t slash = path.find('/');
  bucket_ = std::string(path.substr(0, slash));
  if (slash != std::string_view::npos) prefix_ = std::string(path.substr(slash + 1));
  if (bucket_.empty()) fail(ErrorCategory::usage, "{}: no bucket in the URL (s3://host/bucket[/prefix])", url);
  location_ = u.scheme + "://" + host_ + "/" + bucket_ + (prefix_.empty() ? "" : "/" + prefix_);
  if (!prefix_.empty()) check_object_name(prefix_, location_);

  if (options_.part_size < (5u << 20)) fail(ErrorCategory::usage, "{}: part size below S3's 5 MiB minimum", location_);
  if (options_.region.empty()) options_.region = region_of_aws_host(u.host);
  if (options_.region.empty()) options_.region = "us-east-1";
  switch (options_.addressing) {
    case S3Options::Addressing::path: virtual_host_ = false; break;
    case S3Options::Addressing::virtual_host: virtual_host_ = true; break;
    case S3Options::Addressing::automatic: virtual_host_ = u.host.ends_with(".amazonaws.com") && dns_compatible(bucket_); break;
  }
  if (virtual_host_) host_ = bucket_ + "." + host_;
  http_ = std::make_unique<s3::HttpClient>(options_.http);
  if (!u.user.empty() && u.user != credentials_.access_key_id) {
    fail(ErrorCategory::usage, "{}: the URL names access key {}, the credentials are for {}", location_, u.user,
         credentials_.access_key_id);
  }
}

std::unique_ptr<S3Store> S3Store::from_url(const std::string& url) {
  const RemoteUrl u = parse_remote_url(url);
  return std::make_unique<S3Store>(url, s3::load_credentials(u.user), S3Options::from_environment());
}

S3Store::~S3Store() = default;

std::string S3Store::key_of(std::string_view name) const {
  check_object_name(name, location_);
  return prefix_.empty() ? std::string(name) : prefix_ + "/" + std::string(name);
}

S3Store::Reply S3Store::call(const Call& c, std::string_view what) { return call_with(c, what, options_.retry); }

S3Store::Reply S3Store::call_once(const Call& c, std::string_view what) {
  RetryPolicy once = options_.retry;
  once.attempts = 1;
  return call_with(c, what, once);
}

S3Store::Reply S3Store::call_with(const Call& c, std::string_view what, const RetryPolicy& policy) {
  std::string path = "/";
  if (!virtual_host_) path += s3::uri_encode(bucket_, true) + (c.key.empty() ? "" : "/");
  path += s3::uri_encode(c.key, false);
  std::string query;
  for (const auto& [name, value] : c.query) {
    query += (query.empty() ? "?" : "&") + s3::uri_encode(name, true) + "=" + s3::uri_encode(value, true);
  }
  const std::string payload_hash = c.body.empty() ? std::string(s3::kEmptySha256) : s3::sha256_hex(c.body);
  const s3::SigningKeyId key{credentials_.access_key_id, credentials_.secret_access_key.view(), options_.region, "s3"};

  std::string reason;
  for (unsigned attempt = 1;; ++attempt) {
    // Signed anew each time: the signature covers the time.
    const std::string date = s3::amz_date(std::time(nullptr));
    s3::SigningInput input{c.method, path, c.query, {{"host", host_}, {"x-amz-date", date}, {"x-amz-content-sha256", payload_hash}},
                           payload_hash};
    if (credentials_.session_token.size()) {
      input.headers.emplace_back("x-amz-security-token", std::string(credentials_.session_token.view()));
    }
    input.headers.insert(input.headers.end(), c.headers.begin(), c.headers.end());
    s3::HttpRequest request;
    request.method = c.method;
    request.url = (https_ ? "https://" : "http://") + host_ + path + query;
    request.headers = input.headers;
    request.headers.emplace_back("authorization", s3::authorization(input, key, date));
    request.headers.emplace_back("user-agent", std::string("arche/") + kVersion);
    request.body = c.body;
    request.into = c.into;
    request.max_reply = c.max_reply;

    s3::HttpResult result = http_->perform(request);
    if (result.transport == s3::HttpResult::Transport::tls_refused) {
      fail(ErrorCategory::permission, "{}: {}: TLS refused: {}", location_, what, one_line(result.error));
    }
    if (result.transport == s3::HttpResult::Transport::too_large) {
      fail(ErrorCategory::format, "{}: {}: reply larger than expected", location_, what);
    }
    if (result.transport == s3::HttpResult::Transport::other) {
      fail(ErrorCategory::io, "{}: {}: {}", location_, what, one_line(result.error));
    }
    reason = retry_reason(result);
    if (reason.empty()) return Reply{std::move(result.response), attempt};
    if (attempt >= policy.attempts) break;
    const auto delay = policy.delay(attempt);
    note("{}: {}: {}; retrying in {} ms ({} of {})", location_, what, reason, delay.count(), attempt + 1, policy.attempts);
    backoff_sleep(delay);
  }
  fail(ErrorCategory::io, "{}: {}: {} (gave up after {} attempt{})", location_, what, reason, policy.attempts,
       policy.attempts == 1 ? "" : "s");
}

void S3Store::fail_reply(const HttpResponse& response, std::string_view what) const {
  const std::optional<s3::ErrorReply> error = s3::parse_error(response.text());
  const std::string code = error ? one_line(error->code, 64) : "";
  const std::string detail = code + (error && !error->message.empty() ? ": " + one_line(error->message) : "");
  const std::string http = "HTTP " + std::to_string(response.status) + (detail.empty() ? "" : " " + detail);
  switch (response.status) {
    case 404:
      if (code == "NoSuchBucket") {
        fail(ErrorCategory::not_found, "{}: bucket {} does not exist", location_, bucket_);
      }
      fail(ErrorCategory::not_found, "{}: {}: no such object", location_, what);
    case 403:
      if (code == "QuotaExceeded") fail(ErrorCategory::no_space, "{}: {}: quota exceeded ({})", location_, what, http);
      if (code == "SignatureDoesNotMatch" || code == "InvalidAccessKeyId") {
        fail(ErrorCategory::permission, "{}: {}: the endpoint refuses the credentials of {} ({})", location_, what,
             credentials_.source, http);
      }
      // A HEAD has no body to say why: the credentials are the usual suspect.
      fail(ErrorCategory::permission, "{}: {}: access denied ({}; credentials from {})", location_, what, http,
           credentials_.source);
    case 412: fail(ErrorCategory::exists, "{}: {} exists already", location_, what);
    case 416: fail(ErrorCategory::format, "{}: {}: truncated (range beyond the end)", location_, what);
    default: fail(ErrorCategory::io, "{}: {}: {}", location_, what, http);
  }
}

bool S3Store::conditional_put() const {
  std::lock_guard lock(probe_mutex_);
  if (conditional_put_) return *conditional_put_;
  if (options_.conditional_put != S3Options::ConditionalPut::automatic) {
    conditional_put_ = options_.conditional_put == S3Options::ConditionalPut::yes;
    return *conditional_put_;
  }
  // Two PUTs of one fresh object with If-None-Match: *: an endpoint that honours the
  // header refuses the second (412); one that ignores it accepts both.
  auto* self = const_cast<S3Store*>(this);
  uint8_t random[12];
  random_fill(random);
  std::string name = ".arche-probe-";
  for (uint8_t b : random) name += fmt::format("{:02x}", b);
  Call c;
  c.method = "PUT";
  c.key = key_of(name);
  c.headers = {{"if-none-match", "*"}};
  const Reply first = self->call(c, name);
  if (!success(first.response.status)) {
    if (first.response.status == 412 || first.response.status == 501) {
      conditional_put_ = false;
      return false;
    }
    fail_reply(first.response, name);
  }
  const Reply second = self->call(c, name);
  Call remove_probe;
  remove_probe.method = "DELETE";
  remove_probe.key = c.key;
  self->call(remove_probe, name);
  conditional_put_ = second.response.status == 412;
  note("{}: conditional PUT (If-None-Match) {}", location_, *conditional_put_ ? "honoured" : "ignored");
  return *conditional_put_;
}

StoreCapabilities S3Store::capabilities() const {
  StoreCapabilities caps;
  caps.atomic_rename = false;
  caps.exclusive_create = conditional_put();
  caps.consistent_listing = true;  // AWS S3 since 2020-12, RGW always (docs/storage.md)
  caps.local = false;
  caps.parallelism = options_.parallelism;
  return caps;
}

std::vector<ObjectInfo> S3Store::list(std::string_view prefix) {
  std::string_view dir = prefix;
  while (dir.ends_with("/")) dir.remove_suffix(1);
  if (!dir.empty()) check_object_name(dir, location_);
  const std::string root = prefix_.empty() ? "" : prefix_ + "/";
  std::vector<ObjectInfo> out;
  std::string token;
  do {
    Call c;
    c.query = {{"list-type", "2"}, {"prefix", root + std::string(prefix)}};
    if (!token.empty()) c.query.emplace_back("continuation-token", token);
    const std::string what = "listing " + (prefix.empty() ? std::string("everything") : std::string(prefix));
    const Reply reply = call(c, what);
    if (!success(reply.response.status)) fail_reply(reply.response, what);
    s3::ListPage page = s3::parse_list_objects(reply.response.text());
    for (s3::ListedObject& object : page.objects) {
      if (!object.key.starts_with(root)) continue;
      std::string name = object.key.substr(root.size());
      if (name.starts_with(".arche-probe-")) continue;
      out.push_back({std::move(name), object.size, object.mtime});
    }
    token = page.truncated ? page.next_token : "";
  } while (!token.empty());
  return out;
}

std::optional<ObjectInfo> S3Store::stat(std::string_view name) {
  Call c;
  c.method = "HEAD";
  c.key = key_of(name);
  const Reply reply = call(c, name);
  if (reply.response.status == 404) return std::nullopt;
  if (!success(reply.response.status)) fail_reply(reply.response, name);
  ObjectInfo info{std::string(name), content_length(reply.response, name), 0};
  info.mtime = s3::parse_http_date(reply.response.header("last-modified").value_or("")).value_or(0);
  return info;
}

std::vector<uint8_t> S3Store::read(std::string_view name) {
  Call c;
  c.key = key_of(name);
  c.max_reply = SIZE_MAX;
  Reply reply = call(c, name);
  if (!success(reply.response.status)) fail_reply(reply.response, name);
  if (reply.response.body.size() != content_length(reply.response, name)) {
    fail(ErrorCategory::io, "{}: {}: reply shorter than its Content-Length", location_, name);
  }
  return std::move(reply.response.body);
}

std::vector<uint8_t> S3Store::read_range(std::string_view name, uint64_t offset, uint64_t length) {
  if (length == 0) {
    const std::optional<ObjectInfo> info = stat(name);
    if (!info) fail(ErrorCategory::not_found, "{}: {}: no such object", location_, name);
    if (offset > info->size) fail(ErrorCategory::format, "{}: {}: truncated (offset {} beyond the end)", location_, name, offset);
    return {};
  }
  std::vector<uint8_t> out(length);
  s3::open_reader(*this, std::string(name), UINT64_MAX)->read(offset, out);
  return out;
}

std::unique_ptr<ObjectReader> S3Store::open(std::string_view name) {
  const std::optional<ObjectInfo> info = stat(name);
  if (!info) fail(ErrorCategory::not_found, "{}: {}: no such object", location_, name);
  return s3::open_reader(*this, std::string(name), info->size);
}

void S3Store::write(std::string_view name, std::span<const uint8_t> data, WriteMode mode) {
  if (data.size() <= options_.part_size) return put(name, data, mode);
  const std::unique_ptr<ObjectWriter> writer = s3::open_writer(*this, std::string(name), mode);
  writer->append(data);
  writer->commit();
}

void S3Store::put(std::string_view name, std::span<const uint8_t> data, WriteMode mode) {
  const bool exclusive = mode == WriteMode::create && conditional_put();
  if (mode == WriteMode::create && !exclusive && stat(name)) {
    fail(ErrorCategory::exists, "{}: {} exists already", location_, name);
  }
  Call c;
  c.method = "PUT";
  c.key = key_of(name);
  c.body = data;
  if (exclusive) c.headers = {{"if-none-match", "*"}};
  const Reply reply = call(c, name);
  if (reply.response.status == 412 && reply.attempts > 1) {
    // Refused on a retry: maybe because our own earlier attempt stored it and its
    // reply was lost. The object's ETag (its MD5 for a single PUT) says whether.
    Call head;
    head.method = "HEAD";
    head.key = c.key;
    const Reply info = call(head, name);
    if (success(info.response.status) && unquote(info.response.header("etag").value_or("")) == md5_hex(data)) return;
  }
  if (!success(reply.response.status)) fail_reply(reply.response, name);
}

std::unique_ptr<ObjectWriter> S3Store::create(std::string_view name, WriteMode mode) {
  key_of(name);  // checks the name now rather than at commit
  return s3::open_writer(*this, std::string(name), mode);
}

void S3Store::remove(std::string_view name) {
  Call c;
  c.method = "DELETE";
  c.key = key_of(name);
  const Reply reply = call(c, name);
  if (!success(reply.response.status) && reply.response.status != 404) fail_reply(reply.response, name);
}

void S3Store::ensure_bucket() {
  Call head;
  head.method = "HEAD";
  const Reply exists = call(head, "bucket " + bucket_);
  if (success(exists.response.status)) return;
  if (exists.response.status != 404) fail_reply(exists.response, "bucket " + bucket_);
  Call c;
  c.method = "PUT";
  std::string body;
  if (options_.region != "us-east-1") {
    body = "<CreateBucketConfiguration><LocationConstraint>" + options_.region + "</LocationConstraint></CreateBucketConfiguration>";
    c.body = std::span(reinterpret_cast<const uint8_t*>(body.data()), body.size());
  }
  const Reply reply = call(c, "creating bucket " + bucket_);
  // Someone else's creation in between is as good as ours.
  if (!success(reply.response.status) && error_code(reply.response) != "BucketAlreadyOwnedByYou") {
    fail_reply(reply.response, "creating bucket " + bucket_);
  }
}

std::vector<s3::PendingUpload> S3Store::incomplete_uploads() {
  const std::string root = prefix_.empty() ? "" : prefix_ + "/";
  std::vector<s3::PendingUpload> out;
  std::string key_marker, id_marker;
  for (;;) {
    Call c;
    c.query = {{"uploads", ""}, {"prefix", root}};
    if (!key_marker.empty()) c.query.emplace_back("key-marker", key_marker);
    if (!id_marker.empty()) c.query.emplace_back("upload-id-marker", id_marker);
    const Reply reply = call(c, "listing incomplete uploads");
    if (!success(reply.response.status)) fail_reply(reply.response, "listing incomplete uploads");
    s3::UploadsPage page = s3::parse_list_uploads(reply.response.text());
    for (s3::PendingUpload& upload : page.uploads) {
      if (upload.key.starts_with(root)) out.push_back(std::move(upload));
    }
    if (!page.truncated) break;
    key_marker = page.next_key_marker;
    id_marker = page.next_upload_id_marker;
  }
  for (s3::PendingUpload& upload : out) upload.key = upload.key.substr(root.size());
  return out;
}

size_t S3Store::abort_incomplete_uploads(std::chrono::seconds older_than) {
  const int64_t now = std::time(nullptr);
  size_t aborted = 0;
  for (const s3::PendingUpload& upload : incomplete_uploads()) {
    if (upload.initiated && now - upload.initiated < older_than.count()) continue;
    Call c;
    c.method = "DELETE";
    c.key = (prefix_.empty() ? "" : prefix_ + "/") + upload.key;  // as listed, even if not one of ours
    c.query = {{"uploadId", upload.upload_id}};
    const Reply reply = call(c, upload.key);
    if (!success(reply.response.status) && reply.response.status != 404) fail_reply(reply.response, upload.key);
    ++aborted;
  }
  return aborted;
}

}  // namespace arche::backup
