// AWS Signature Version 4 for S3 requests (the "Authorization" header form), written
// once here and checked against AWS's published examples (tests/backup/s3_sigv4_test.cpp):
//
//   canonical request = METHOD \n URI \n QUERY \n HEADERS \n SIGNED-HEADERS \n PAYLOAD-HASH
//   string to sign    = "AWS4-HMAC-SHA256" \n DATE-TIME \n SCOPE \n hex(sha256(canonical request))
//   signing key       = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, DATE), REGION), SERVICE), "aws4_request")
//   signature         = hex(HMAC(signing key, string to sign))
//
// S3 itself differs from the other services in two ways that matter here: the path is
// encoded once (not twice), and the payload hash is sent as x-amz-content-sha256.
#pragma once

#include <cstdint>
#include <ctime>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace arche::backup::s3 {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct SigningInput {
  std::string method;        // "GET", "PUT", ...
  std::string encoded_path;  // URI-encoded, '/' kept: "/bucket/data/ab/abcd"
  HeaderList query;          // decoded names and values ("list-type", "2"); a bare name has ""
  HeaderList headers;        // every header to sign, including host and x-amz-date
  std::string payload_hash;  // hex SHA-256 of the body, or "UNSIGNED-PAYLOAD"
};

struct SigningKeyId {
  std::string access_key_id;
  std::string_view secret_access_key;  // held by the caller in locked memory
  std::string region;                  // "us-east-1"
  std::string service = "s3";
};

// RFC 3986 unreserved characters stay, everything else becomes %XX (upper case), as
// SigV4 requires; '/' stays unless encode_slash.
std::string uri_encode(std::string_view text, bool encode_slash);

// "20150830T123600Z" for a UNIX time.
std::string amz_date(std::time_t when);

std::string sha256_hex(std::span<const uint8_t> data);
inline std::string sha256_hex(std::string_view text) {
  return sha256_hex(std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}
// The SHA-256 of the empty string, the payload hash of every request without a body.
inline constexpr std::string_view kEmptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// The parts, exposed for the tests of each step.
std::string canonical_query(const HeaderList& query);
std::string signed_header_names(const HeaderList& headers);
std::string canonical_request(const SigningInput& input);
std::string string_to_sign(const SigningInput& input, const SigningKeyId& key, std::string_view date_time);

// The value of the Authorization header. `date_time` must be the request's x-amz-date.
std::string authorization(const SigningInput& input, const SigningKeyId& key, std::string_view date_time);

}  // namespace arche::backup::s3
