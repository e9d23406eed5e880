// The XML documents of the S3 API that S3Store reads and writes (pugixml). Replies
// come from the network: every parser bounds what it accepts and turns anything
// malformed into one format error, never a crash (fuzzed by tests/fuzz/s3_fuzz.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace arche::backup::s3 {

struct ListedObject {
  std::string key;
  uint64_t size = 0;
  int64_t mtime = 0;  // unix seconds (0 when the reply has no LastModified)
};

// ListObjectsV2's <ListBucketResult>.
struct ListPage {
  std::vector<ListedObject> objects;
  bool truncated = false;
  std::string next_token;  // NextContinuationToken, required when truncated
};
ListPage parse_list_objects(std::string_view xml);

// <InitiateMultipartUploadResult>: the UploadId.
std::string parse_initiate_multipart(std::string_view xml);

struct UploadPart {
  unsigned number = 0;
  std::string etag;  // as the server sent it, quotes included
};
std::string complete_multipart_body(const std::vector<UploadPart>& parts);

// ListMultipartUploads' <ListMultipartUploadsResult>.
struct PendingUpload {
  std::string key;
  std::string upload_id;
  int64_t initiated = 0;  // unix seconds
};
struct UploadsPage {
  std::vector<PendingUpload> uploads;
  bool truncated = false;
  std::string next_key_marker;
  std::string next_upload_id_marker;
};
UploadsPage parse_list_uploads(std::string_view xml);

// An <Error> document (also sent with status 200 by CompleteMultipartUpload when it
// fails late); nullopt when the body is not one.
struct ErrorReply {
  std::string code;     // "NoSuchKey", "SlowDown", ...
  std::string message;  // may be empty
};
std::optional<ErrorReply> parse_error(std::string_view xml);

// "2009-10-12T17:50:30.000Z" (fraction and zone optional; Z assumed) -> unix seconds.
std::optional<int64_t> parse_iso8601(std::string_view text);

}  // namespace arche::backup::s3
