// libFuzzer target for what S3Store parses from the network and the disk: the XML
// replies (ListObjectsV2, CreateMultipartUpload, ListMultipartUploads, Error), HTTP
// header lines and dates, ISO 8601 times, and the shared credentials file (INI). The
// first byte picks the parser; the rest is its input. Any input must end in success
// or an arche::Error. Seeds (valid documents) are written into an empty corpus.
#include <boost/filesystem.hpp>
#include <cstdint>
#include <fstream>
#include <string>
#include <string_view>

#include "backup/s3_credentials.h"
#include "backup/s3_http.h"
#include "backup/s3_xml.h"
#include "core/error.h"
#include "tests/fuzz/self_seeding.h"

using namespace arche;
using namespace arche::backup::s3;

namespace {

using arche::fuzz::write_seed;

enum Target : uint8_t { kList, kInitiate, kUploads, kError, kHeaders, kDates, kIni, kTargetCount };

void write_seeds(const std::string& dir) {
  write_seed(
      dir, "list", kList,
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
      "<Name>b</Name><Prefix>p/</Prefix><KeyCount>2</KeyCount><IsTruncated>true</IsTruncated>"
      "<NextContinuationToken>tok==</NextContinuationToken><Contents><Key>p/data/ab/x</Key>"
      "<LastModified>2009-10-12T17:50:30.000Z</LastModified><ETag>\"e\"</ETag><Size>434234</Size></Contents>"
      "<Contents><Key>p/config</Key><Size>0</Size></Contents></ListBucketResult>");
  write_seed(dir, "initiate", kInitiate,
             "<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>2~abc</UploadId></"
             "InitiateMultipartUploadResult>");
  write_seed(dir, "uploads", kUploads,
             "<ListMultipartUploadsResult><IsTruncated>true</IsTruncated><NextKeyMarker>k</NextKeyMarker>"
             "<NextUploadIdMarker>u</NextUploadIdMarker><Upload><Key>p/data/x</Key><UploadId>u1</UploadId>"
             "<Initiated>2010-11-10T20:48:33.000Z</Initiated></Upload></ListMultipartUploadsResult>");
  write_seed(dir, "error", kError,
             "<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>Reduce</Message></Error>");
  write_seed(dir, "headers", kHeaders,
             "HTTP/1.1 206 Partial Content\r\nContent-Length: 10\r\nETag: \"abc\"\r\nLast-Modified: Sun, 06 Nov 1994 "
             "08:49:37 GMT\r\n\r\n");
  write_seed(dir, "dates", kDates, "Sun, 06 Nov 1994 08:49:37 GMT\n2026-12-01T21:03:59.123Z\n");
  write_seed(dir, "ini", kIni,
             "# c\n[default]\naws_access_key_id = K\naws_secret_access_key = S\n[p]\naws_session_token=T\r\n");
}

std::vector<std::string_view> lines(std::string_view text) {
  std::vector<std::string_view> out;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    out.push_back(text.substr(0, end == std::string_view::npos ? text.size() : end + 1));
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  arche::fuzz::seed_empty_corpus(*argc, *argv, write_seeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0 || size > (64u << 10)) return 0;  // targets.sh: -max_len
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    switch (data[0] % kTargetCount) {
      case kList: parse_list_objects(text); break;
      case kInitiate: parse_initiate_multipart(text); break;
      case kUploads: parse_list_uploads(text); break;
      case kError: parse_error(text); break;
      case kHeaders:
        for (std::string_view line : lines(text)) parse_header_line(line);
        break;
      case kDates:
        for (std::string_view line : lines(text)) {
          parse_http_date(line);
          parse_iso8601(line);
        }
        break;
      case kIni: parse_ini(text, "fuzz"); break;
    }
  } catch (const Error&) {
  }
  return 0;
}
