#include "backup/s3_http.h"

#include <curl/curl.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstring>
#include <ctime>
#include <memory>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/error.h"

namespace arche::backup::s3 {

std::string_view trim_blanks(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r' || text.back() == '\n')) {
    text.remove_suffix(1);
  }
  return text;
}

namespace {

bool is_token_char(unsigned char c) {
  return std::isalnum(c) || std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

// What one transfer collects, reached from libcurl's callbacks.
struct Transfer {
  const HttpRequest* request = nullptr;
  const HttpOptions* options = nullptr;
  HttpResponse response;
  size_t sent = 0;
  bool overflow = false;  // more body than fits where it goes
  const curl_socket_t* socket = nullptr;  // of the handle's connection
};

// An endpoint that writes a reply's head and its body separately with Nagle's
// algorithm on (radosgw's beast does) holds the body back until the head is
// acknowledged, and on a kept-alive connection Linux delays that ACK by 40 ms: every
// small GET, listing and POST would take 40 ms. Setting TCP_QUICKACK once the head
// is in sends the pending ACK at once.
void acknowledge_now(curl_socket_t socket) {
  if (socket == CURL_SOCKET_BAD) return;
  const int on = 1;
  ::setsockopt(socket, IPPROTO_TCP, TCP_QUICKACK, &on, sizeof on);  // a hint: failing changes nothing
}

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  const HeaderLine line = parse_header_line(std::string_view(data, n));
  if (line.kind == HeaderLine::status) {
    // A new status line (after "100 Continue" or a redirect) starts a new head.
    t->response.status = line.status_code;
    t->response.headers.clear();
  } else if (line.kind == HeaderLine::field && t->response.headers.size() < 200) {
    t->response.headers.emplace_back(line.name, line.value);
  } else if (line.kind == HeaderLine::end && t->request->method != "HEAD") {
    acknowledge_now(*t->socket);
  }
  return n;
}

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  const bool success = t->response.status >= 200 && t->response.status < 300;
  if (success && !t->request->into.empty()) {
    if (t->response.into_bytes + n > t->request->into.size()) {
      t->overflow = true;
      return 0;  // aborts the transfer (CURLE_WRITE_ERROR)
    }
    std::memcpy(t->request->into.data() + t->response.into_bytes, data, n);
    t->response.into_bytes += n;
    return n;
  }
  const size_t limit = t->request->max_reply ? t->request->max_reply : t->options->max_reply_bytes;
  if (t->response.body.empty()) {
    // One allocation for a whole object when its length is known.
    const std::string length = t->response.header("content-length").value_or("");
    size_t expected = 0;
    if (std::from_chars(length.data(), length.data() + length.size(), expected).ec == std::errc() && expected <= limit) {
      t->response.body.reserve(expected);
    }
  }
  if (t->response.body.size() + n > limit) {
    t->overflow = true;
    return 0;
  }
  t->response.body.insert(t->response.body.end(), data, data + n);
  return n;
}

size_t on_read(char* buffer, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::span<const uint8_t> body = t->request->body;
  const size_t n = std::min(size * count, body.size() - t->sent);
  std::memcpy(buffer, body.data() + t->sent, n);
  t->sent += n;
  return n;
}

int on_seek(void* user, curl_off_t offset, int origin) {
  auto* t = static_cast<Transfer*>(user);
  if (origin != SEEK_SET || offset < 0 || static_cast<size_t>(offset) > t->request->body.size()) return CURL_SEEKFUNC_FAIL;
  t->sent = static_cast<size_t>(offset);
  return CURL_SEEKFUNC_OK;
}

HttpResult::Transport classify(CURLcode code) {
  switch (code) {
    case CURLE_OK: return HttpResult::Transport::ok;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return HttpResult::Transport::connect_failed;
    case CURLE_OPERATION_TIMEDOUT: return HttpResult::Transport::timed_out;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM: return HttpResult::Transport::dropped;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM: return HttpResult::Transport::tls_refused;
    default: return HttpResult::Transport::other;
  }
}

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) fail(ErrorCategory::internal, "libcurl initialisation failed");
  });
}

}  // namespace

HeaderLine parse_header_line(std::string_view line) {
  HeaderLine out;
  const std::string_view text = trim_blanks(line);
  if (text.empty()) {
    out.kind = HeaderLine::end;
    return out;
  }
  if (text.starts_with("HTTP/")) {
    const size_t space = text.find(' ');
    if (space == std::string_view::npos || text.size() < space + 4) return out;
    long code = 0;
    const char* begin = text.data() + space + 1;
    auto [end, ec] = std::from_chars(begin, begin + 3, code);
    if (ec != std::errc() || end != begin + 3 || code < 100 || code > 599) return out;
    if (text.size() > space + 4 && text[space + 4] != ' ') return out;
    out.kind = HeaderLine::status;
    out.status_code = code;
    return out;
  }
  if (line.front() == ' ' || line.front() == '\t') return out;  // obsolete line folding: ignored
  const size_t colon = text.find(':');
  if (colon == 0 || colon == std::string_view::npos) return out;
  const std::string_view name = text.substr(0, colon);
  if (!std::all_of(name.begin(), name.end(), [](unsigned char c) { return is_token_char(c); })) return out;
  out.kind = HeaderLine::field;
  out.name.resize(name.size());
  std::transform(name.begin(), name.end(), out.name.begin(), [](unsigned char c) { return std::tolower(c); });
  out.value = trim_blanks(text.substr(colon + 1));
  return out;
}

std::optional<int64_t> parse_http_date(std::string_view text) {
  // "Sun, 06 Nov 1994 08:49:37 GMT"
  static constexpr std::array<std::string_view, 12> months = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  text = trim_blanks(text);
  if (text.size() != 29 || text.substr(3, 2) != ", " || text.substr(25) != " GMT" || text[7] != ' ' || text[11] != ' ' ||
      text[16] != ' ' || text[19] != ':' || text[22] != ':') {
    return std::nullopt;
  }
  auto field = [&](size_t at, size_t length, int& out) {
    auto [end, ec] = std::from_chars(text.data() + at, text.data() + at + length, out);
    return ec == std::errc() && end == text.data() + at + length;
  };
  std::tm tm{};
  int year = 0;
  if (!field(5, 2, tm.tm_mday) || !field(12, 4, year) || !field(17, 2, tm.tm_hour) || !field(20, 2, tm.tm_min) ||
      !field(23, 2, tm.tm_sec)) {
    return std::nullopt;
  }
  const auto month = std::find(months.begin(), months.end(), text.substr(8, 3));
  if (month == months.end() || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60) {
    return std::nullopt;
  }
  tm.tm_mon = static_cast<int>(month - months.begin());
  tm.tm_year = year - 1900;
  return static_cast<int64_t>(timegm(&tm));
}

std::optional<std::string> HttpResponse::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return std::nullopt;
}

HttpClient::HttpClient(HttpOptions options) : options_(std::move(options)) { global_init(); }

// A handle of the pool and the socket of the connection it keeps alive (libcurl
// tells it only when it opens or closes one: see acknowledge_now).
struct PooledHandle {
  CURL* curl = nullptr;
  curl_socket_t socket = CURL_SOCKET_BAD;
};

namespace {

int on_socket_open(void* user, curl_socket_t socket, curlsocktype) {
  static_cast<PooledHandle*>(user)->socket = socket;
  return CURL_SOCKOPT_OK;
}

int on_socket_close(void* user, curl_socket_t socket) {
  auto* pooled = static_cast<PooledHandle*>(user);
  if (pooled->socket == socket) pooled->socket = CURL_SOCKET_BAD;
  return ::close(socket);
}

}  // namespace

HttpClient::~HttpClient() {
  for (void* handle : idle_) {
    auto* pooled = static_cast<PooledHandle*>(handle);
    curl_easy_cleanup(pooled->curl);
    delete pooled;
  }
}

void* HttpClient::take_handle() {
  {
    std::lock_guard lock(mutex_);
    if (!idle_.empty()) {
      void* handle = idle_.back();
      idle_.pop_back();
      return handle;
    }
  }
  auto pooled = std::make_unique<PooledHandle>();
  pooled->curl = curl_easy_init();
  if (!pooled->curl) fail(ErrorCategory::no_space, "libcurl: cannot create a transfer handle");
  return pooled.release();
}

void HttpClient::give_back(void* handle) {
  std::lock_guard lock(mutex_);
  idle_.push_back(handle);
}

HttpResult HttpClient::perform(const HttpRequest& request) {
  auto* pooled = static_cast<PooledHandle*>(take_handle());
  CURL* curl = pooled->curl;
  // The handle returns to the pool whatever happens (its live connection with it).
  struct Return {
    HttpClient* self;
    PooledHandle* pooled;
    ~Return() { self->give_back(pooled); }
  } give_back_on_exit{this, pooled};
  curl_easy_reset(curl);

  Transfer t;
  t.request = &request;
  t.options = &options_;
  t.socket = &pooled->socket;
  curl_slist* headers = nullptr;
  struct FreeHeaders {
    curl_slist*& list;
    ~FreeHeaders() { curl_slist_free_all(list); }
  } free_headers{headers};
  for (const auto& [name, value] : request.headers) {
    headers = curl_slist_append(headers, (name + ": " + value).c_str());
  }
  // No "Expect: 100-continue" round trip, and no default Content-Type on POST.
  headers = curl_slist_append(headers, "Expect:");
  if (request.method == "POST" && !std::any_of(request.headers.begin(), request.headers.end(),
                                               [](const auto& h) { return h.first == "content-type"; })) {
    headers = curl_slist_append(headers, "Content-Type:");
  }

  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, static_cast<long>(options_.stall_timeout.count()));
  if (!options_.ca_bundle.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, options_.ca_bundle.c_str());
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(curl, CURLOPT_SOCKOPTFUNCTION, on_socket_open);
  curl_easy_setopt(curl, CURLOPT_SOCKOPTDATA, pooled);
  curl_easy_setopt(curl, CURLOPT_CLOSESOCKETFUNCTION, on_socket_close);
  curl_easy_setopt(curl, CURLOPT_CLOSESOCKETDATA, pooled);

  if (request.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (request.method == "PUT") {
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(curl, CURLOPT_READDATA, &t);
    curl_easy_setopt(curl, CURLOPT_SEEKFUNCTION, on_seek);
    curl_easy_setopt(curl, CURLOPT_SEEKDATA, &t);
  } else if (request.method == "POST") {
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
  } else if (request.method != "GET") {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }

  char error[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
  const CURLcode code = curl_easy_perform(curl);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, nullptr);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);

  HttpResult result;
  result.transport = t.overflow ? HttpResult::Transport::too_large : classify(code);
  if (result.transport != HttpResult::Transport::ok) {
    result.error = t.overflow ? "reply larger than expected" : (*error ? error : curl_easy_strerror(code));
  }
  result.response = std::move(t.response);
  return result;
}

}  // namespace arche::backup::s3
