// AWS Signature V4 against AWS's published examples: the SigV4 test suite
// (credentials AKIDEXAMPLE, 2015-08-30T12:36:00Z, service "service") and the S3 API
// reference's "Signature Calculations for the Authorization Header" (AKIAIOSFODNN7EXAMPLE,
// 2013-05-24, bucket examplebucket). Each expected value is AWS's, not ours.
#include <gtest/gtest.h>

#include "backup/s3_sigv4.h"

namespace arche::backup::s3 {
namespace {

constexpr std::string_view kSuiteSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
constexpr std::string_view kS3Secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
constexpr std::string_view kSuiteDate = "20150830T123600Z";
constexpr std::string_view kS3Date = "20130524T000000Z";

SigningKeyId suite_key() { return {"AKIDEXAMPLE", kSuiteSecret, "us-east-1", "service"}; }
SigningKeyId s3_key() { return {"AKIAIOSFODNN7EXAMPLE", kS3Secret, "us-east-1", "s3"}; }

SigningInput suite_request(std::string method, HeaderList query = {}) {
  return {std::move(method), "/", std::move(query),
          {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", std::string(kSuiteDate)}}, std::string(kEmptySha256)};
}

std::string suite_authorization(std::string_view signature) {
  return "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
         "SignedHeaders=host;x-amz-date, Signature=" +
         std::string(signature);
}

TEST(SigV4, SuiteGetVanilla) {
  const SigningInput input = suite_request("GET");
  EXPECT_EQ(canonical_request(input),
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" +
                std::string(kEmptySha256));
  EXPECT_EQ(string_to_sign(input, suite_key(), kSuiteDate),
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
  EXPECT_EQ(authorization(input, suite_key(), kSuiteDate),
            suite_authorization("5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"));
}

TEST(SigV4, SuitePostVanilla) {
  EXPECT_EQ(authorization(suite_request("POST"), suite_key(), kSuiteDate),
            suite_authorization("5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"));
}

TEST(SigV4, SuiteQueryOrderKeyCase) {
  const SigningInput input = suite_request("GET", {{"Param2", "value2"}, {"Param1", "value1"}});
  EXPECT_EQ(canonical_query(input.query), "Param1=value1&Param2=value2");
  EXPECT_EQ(authorization(input, suite_key(), kSuiteDate),
            suite_authorization("b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"));
}

TEST(SigV4, S3GetObjectWithRange) {
  const SigningInput input{"GET",
                           "/test.txt",
                           {},
                           {{"Host", "examplebucket.s3.amazonaws.com"},
                            {"Range", "bytes=0-9"},
                            {"x-amz-content-sha256", std::string(kEmptySha256)},
                            {"x-amz-date", std::string(kS3Date)}},
                           std::string(kEmptySha256)};
  EXPECT_EQ(string_to_sign(input, s3_key(), kS3Date),
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  EXPECT_EQ(authorization(input, s3_key(), kS3Date),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(SigV4, S3PutObjectWithDollarInKey) {
  const std::string payload_hash = sha256_hex(std::string_view("Welcome to Amazon S3."));
  EXPECT_EQ(payload_hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  const SigningInput input{"PUT",
                           "/" + uri_encode("test$file.text", false),
                           {},
                           {{"Host", "examplebucket.s3.amazonaws.com"},
                            {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                            {"x-amz-date", std::string(kS3Date)},
                            {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
                            {"x-amz-content-sha256", payload_hash}},
                           payload_hash};
  EXPECT_EQ(input.encoded_path, "/test%24file.text");
  EXPECT_EQ(authorization(input, s3_key(), kS3Date),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, "
            "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

SigningInput s3_bucket_get(HeaderList query) {
  return {"GET",
          "/",
          std::move(query),
          {{"Host", "examplebucket.s3.amazonaws.com"},
           {"x-amz-content-sha256", std::string(kEmptySha256)},
           {"x-amz-date", std::string(kS3Date)}},
          std::string(kEmptySha256)};
}

TEST(SigV4, S3GetBucketLifecycle) {
  const SigningInput input = s3_bucket_get({{"lifecycle", ""}});
  EXPECT_EQ(canonical_query(input.query), "lifecycle=");
  EXPECT_EQ(authorization(input, s3_key(), kS3Date),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
            "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

TEST(SigV4, S3ListObjects) {
  EXPECT_EQ(authorization(s3_bucket_get({{"max-keys", "2"}, {"prefix", "J"}}), s3_key(), kS3Date),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
            "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

TEST(SigV4, HeaderValuesAreTrimmedAndJoined) {
  SigningInput input = suite_request("GET");
  input.headers.emplace_back("My-Header1", "  a   b   c  ");
  input.headers.emplace_back("my-header1", "d");
  EXPECT_NE(canonical_request(input).find("\nmy-header1:a b c,d\n"), std::string::npos) << canonical_request(input);
  EXPECT_EQ(signed_header_names(input.headers), "host;my-header1;x-amz-date");
}

TEST(SigV4, UriEncoding) {
  EXPECT_EQ(uri_encode("a b/c~d+e$\xc3\xa9", false), "a%20b/c~d%2Be%24%C3%A9");
  EXPECT_EQ(uri_encode("a/b=c", true), "a%2Fb%3Dc");
  EXPECT_EQ(uri_encode("AZaz09-_.~", true), "AZaz09-_.~");
}

TEST(SigV4, AmzDate) {
  EXPECT_EQ(amz_date(1440938160), "20150830T123600Z");
  EXPECT_EQ(amz_date(0), "19700101T000000Z");
}

}  // namespace
}  // namespace arche::backup::s3
