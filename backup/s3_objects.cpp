#include "backup/s3_objects.h"

#include <algorithm>
#include <deque>
#include <future>
#include <memory>

#include "backup/s3_xml.h"
#include "backup/store_s3.h"
#include "core/error.h"

namespace arche::backup::s3 {

std::string one_line(std::string_view text, size_t limit) {
  std::string out;
  for (char c : text.substr(0, limit)) out.push_back(static_cast<unsigned char>(c) < 0x20 ? ' ' : c);
  return out;
}

std::string error_code(const HttpResponse& response) {
  if (auto reply = s3::parse_error(response.text())) return reply->code;
  return "";
}

namespace {

class S3Reader : public ObjectReader {
 public:
  S3Reader(S3Store& store, std::string name, uint64_t size) : store_(store), name_(std::move(name)), size_(size) {}
  uint64_t size() const override { return size_; }
  void read(uint64_t offset, std::span<uint8_t> out) override {
    if (offset > size_ || out.size() > size_ - offset) {
      fail(ErrorCategory::format, "{}: {}: truncated (reading {} bytes at {} of a {}-byte object)", store_.location(), name_,
           out.size(), offset, size_);
    }
    if (out.empty()) return;
    S3Store::Call c;
    c.key = store_.key_of(name_);
    c.headers = {{"range", "bytes=" + std::to_string(offset) + "-" + std::to_string(offset + out.size() - 1)}};
    c.into = out;
    const S3Store::Reply reply = store_.call(c, name_);
    if (!success(reply.response.status)) store_.fail_reply(reply.response, name_);
    if (reply.response.into_bytes != out.size()) {
      fail(ErrorCategory::format, "{}: {}: truncated ({} of {} bytes at offset {})", store_.location(), name_,
           reply.response.into_bytes, out.size(), offset);
    }
  }

 private:
  S3Store& store_;
  std::string name_;
  uint64_t size_;
};

// Parts of one upload travelling at once: the next part fills while these are sent,
// so the producer (a backup's pack, appended to under the chunk store's lock) waits
// for the network only when it is this far ahead. Memory: this many parts plus the
// one filling.
constexpr size_t kPartsInFlight = 2;

// Buffers up to one part; a small object becomes one PUT at commit(), a larger one a
// multipart upload whose parts leave as they fill, each sent by its own thread.
class S3Writer : public ObjectWriter {
 public:
  S3Writer(S3Store& store, std::string name, WriteMode mode)
      : store_(store), name_(std::move(name)), key_(store.key_of(name_)), mode_(mode) {}

  ~S3Writer() override {
    settle_all_quietly();  // the parts' threads refer to this writer
    if (committed_ || upload_id_.empty()) return;
    // Best effort and once: the endpoint may be the reason we are here.
    try {
      S3Store::Call c;
      c.method = "DELETE";
      c.key = key_;
      c.query = {{"uploadId", upload_id_}};
      store_.call_once(c, name_);
    } catch (...) {
    }
  }

  void append(std::span<const uint8_t> data) override {
    if (committed_) fail(ErrorCategory::internal, "{}: {}: append after commit", store_.location(), name_);
    while (!data.empty()) {
      if (buffer_.capacity() < store_.part_size()) buffer_.reserve(store_.part_size());
      const size_t take = std::min(data.size(), store_.part_size() - buffer_.size());
      buffer_.insert(buffer_.end(), data.begin(), data.begin() + static_cast<ptrdiff_t>(take));
      data = data.subspan(take);
      written_ += take;
      if (buffer_.size() == store_.part_size()) send_part();
    }
  }

  uint64_t bytes_written() const override { return written_; }

  void commit() override {
    if (committed_) return;
    if (upload_id_.empty()) {
      store_.write(name_, buffer_, mode_);
    } else {
      if (!buffer_.empty()) send_part();
      while (!in_flight_.empty()) settle_front();
      complete();
    }
    committed_ = true;
    buffer_ = {};
  }

 private:
  struct Part {
    unsigned number;
    std::future<std::string> etag;
  };

  void start() {
    if (mode_ == WriteMode::create && store_.stat(name_)) {
      fail(ErrorCategory::exists, "{}: {} exists already", store_.location(), name_);
    }
    S3Store::Call c;
    c.method = "POST";
    c.key = key_;
    c.query = {{"uploads", ""}};
    const S3Store::Reply reply = store_.call(c, name_);
    if (!success(reply.response.status)) store_.fail_reply(reply.response, name_);
    upload_id_ = s3::parse_initiate_multipart(reply.response.text());
  }

  // Hands the full buffer to a thread of its own. The upload is started here, in the
  // caller's thread, so it exists (and is aborted by the destructor) from the first part on.
  void send_part() {
    if (upload_id_.empty()) start();
    while (in_flight_.size() >= kPartsInFlight) settle_front();
    const unsigned number = ++parts_sent_;
    auto body = std::make_shared<std::vector<uint8_t>>(std::move(buffer_));
    buffer_ = {};
    in_flight_.push_back({number, std::async(std::launch::async, [this, number, body] { return upload_part(number, *body); })});
  }

  std::string upload_part(unsigned number, std::span<const uint8_t> body) {
    S3Store::Call c;
    c.method = "PUT";
    c.key = key_;
    c.query = {{"partNumber", std::to_string(number)}, {"uploadId", upload_id_}};
    c.body = body;
    const S3Store::Reply reply = store_.call(c, name_);
    if (!success(reply.response.status)) store_.fail_reply(reply.response, name_);
    const std::optional<std::string> etag = reply.response.header("etag");
    if (!etag || etag->empty()) fail(ErrorCategory::format, "{}: {}: part {} stored without an ETag", store_.location(), name_, number);
    return *etag;
  }

  // Waits for the oldest part in flight; its failure is this writer's.
  void settle_front() {
    Part part = std::move(in_flight_.front());
    in_flight_.pop_front();
    parts_.push_back({part.number, part.etag.get()});
  }

  void settle_all_quietly() noexcept {
    for (Part& part : in_flight_) part.etag.wait();
    in_flight_.clear();
  }

  void complete() {
    if (mode_ == WriteMode::create && store_.stat(name_)) {
      fail(ErrorCategory::exists, "{}: {} exists already", store_.location(), name_);
    }
    const std::string body = s3::complete_multipart_body(parts_);
    S3Store::Call c;
    c.method = "POST";
    c.key = key_;
    c.query = {{"uploadId", upload_id_}};
    c.headers = {{"content-type", "application/xml"}};
    if (mode_ == WriteMode::create && store_.conditional_put()) c.headers.emplace_back("if-none-match", "*");
    c.body = std::span(reinterpret_cast<const uint8_t*>(body.data()), body.size());
    const S3Store::Reply reply = store_.call(c, name_);
    if (reply.response.status == 404 && reply.attempts > 1 && error_code(reply.response) == "NoSuchUpload") {
      // An earlier attempt completed it and its reply was lost: the object says so.
      if (auto info = store_.stat(name_); info && info->size == written_) return;
    }
    if (!success(reply.response.status)) store_.fail_reply(reply.response, name_);
    // CompleteMultipartUpload may fail after its 200 status line: the body tells.
    if (auto error = s3::parse_error(reply.response.text())) {
      fail(ErrorCategory::io, "{}: {}: completing the upload failed: {} {}", store_.location(), name_, one_line(error->code, 64),
           one_line(error->message));
    }
  }

  S3Store& store_;
  std::string name_;
  std::string key_;
  WriteMode mode_;
  std::vector<uint8_t> buffer_;
  uint64_t written_ = 0;
  std::string upload_id_;
  unsigned parts_sent_ = 0;
  std::deque<Part> in_flight_;             // oldest first
  std::vector<s3::UploadPart> parts_;      // acknowledged, in order
  bool committed_ = false;
};

}  // namespace

std::unique_ptr<ObjectReader> open_reader(S3Store& store, std::string name, uint64_t size) {
  return std::make_unique<S3Reader>(store, std::move(name), size);
}

std::unique_ptr<ObjectWriter> open_writer(S3Store& store, std::string name, WriteMode mode) {
  return std::make_unique<S3Writer>(store, std::move(name), mode);
}

}  // namespace arche::backup::s3
