// The parsers and small rules of the remote stores that need no server: repository
// URLs, object names, S3 credentials (environment and shared file), S3's XML replies,
// HTTP header lines and dates, retry delays.
#include <gtest/gtest.h>

#include <map>

#include "backup/remote_retry.h"
#include "backup/remote_url.h"
#include "backup/store.h"
#include "backup/s3_credentials.h"
#include "backup/s3_http.h"
#include "backup/s3_xml.h"
#include "core/error.h"
#include "tests/common/test_util.h"

namespace arche::backup {
namespace {

ErrorCategory category_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.category();
  }
  ADD_FAILURE() << "no error thrown";
  return ErrorCategory::internal;
}

TEST(RemoteUrl, Parts) {
  RemoteUrl u = parse_remote_url("sftp://backup@nas.example:2222/srv/repo%20one");
  EXPECT_EQ(u.scheme, "sftp");
  EXPECT_EQ(u.user, "backup");
  EXPECT_EQ(u.host, "nas.example");
  EXPECT_EQ(u.port, 2222);
  EXPECT_EQ(u.path, "/srv/repo one");
  EXPECT_EQ(u.authority(), "nas.example:2222");

  u = parse_remote_url("S3+HTTP://[::1]:7480/bucket/pre/fix");
  EXPECT_EQ(u.scheme, "s3+http");
  EXPECT_EQ(u.host, "::1");
  EXPECT_EQ(u.authority(), "[::1]:7480");
  EXPECT_EQ(u.path, "/bucket/pre/fix");

  u = parse_remote_url("s3://AKIA123@host/b");
  EXPECT_EQ(u.user, "AKIA123");
  EXPECT_EQ(u.port, 0);
}

TEST(RemoteUrl, RefusesPasswordsWithoutRepeatingThem) {
  try {
    parse_remote_url("sftp://me:hunter2@host/repo%zz");
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::usage);
    EXPECT_EQ(std::string(e.what()).find("hunter2"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("password"), std::string::npos) << e.what();
  }
}

TEST(RemoteUrl, RefusesMalformed) {
  for (const char* url : {"sftp:///path", "sftp://host:0/x", "sftp://host:99999/x", "sftp://host:12a/x", "sftp://[::1/x",
                          "s3://host/b?x=1", "sftp://host/%4"}) {
    EXPECT_EQ(category_of([&] { parse_remote_url(url); }), ErrorCategory::usage) << url;
  }
  EXPECT_EQ(url_scheme("/srv/repo"), "");
  EXPECT_EQ(url_scheme("relative/path"), "");
  EXPECT_EQ(url_scheme("Sftp://h/p"), "sftp");
}

TEST(RemoteUrl, ObjectNames) {
  for (const char* good : {"config", "data/ab/abcdef", "keys/1", ".hidden", "a.b/c."}) {
    EXPECT_NO_THROW(check_object_name(good, "store")) << good;
  }
  for (const char* bad : {"", "/abs", "a//b", "a/../b", "..", "a/.", "data/", "x\ny"}) {
    EXPECT_EQ(category_of([&] { check_object_name(bad, "store"); }), ErrorCategory::usage) << bad;
  }
}

struct FakeEnv {
  std::map<std::string, std::string> vars;
  s3::EnvLookup lookup() const {
    return [this](const char* name) -> const char* {
      auto it = vars.find(name);
      return it == vars.end() ? nullptr : it->second.c_str();
    };
  }
};

TEST(S3Credentials, FromEnvironment) {
  FakeEnv env{{{"AWS_ACCESS_KEY_ID", "AKID"}, {"AWS_SECRET_ACCESS_KEY", "sekrit"}, {"AWS_SESSION_TOKEN", "tok"}, {"HOME", "/nonexistent"}}};
  s3::Credentials c = s3::load_credentials("", env.lookup());
  EXPECT_EQ(c.access_key_id, "AKID");
  EXPECT_EQ(c.secret_access_key.view(), "sekrit");
  EXPECT_EQ(c.session_token.view(), "tok");
  EXPECT_EQ(c.source, "environment");
  // The URL names another key: the environment's does not answer for it.
  EXPECT_EQ(category_of([&] { s3::load_credentials("OTHER", env.lookup()); }), ErrorCategory::usage);
}

TEST(S3Credentials, FromSharedFileByProfileOrKey) {
  test::TempDir dir;
  const std::string file = dir.file("credentials");
  const std::string text =
      "# comment\n[default]\naws_access_key_id = DEFAULTKEY\naws_secret_access_key = defaultsecret\n\n"
      "[work]\n aws_access_key_id=WORKKEY \naws_secret_access_key= work secret \r\naws_session_token = wt\n";
  test::write_file(file, std::vector<uint8_t>(text.begin(), text.end()));
  FakeEnv env{{{"AWS_SHARED_CREDENTIALS_FILE", file}}};
  s3::Credentials c = s3::load_credentials("", env.lookup());
  EXPECT_EQ(c.access_key_id, "DEFAULTKEY");
  EXPECT_EQ(c.secret_access_key.view(), "defaultsecret");
  EXPECT_EQ(c.source, file + " [default]");

  c = s3::load_credentials("WORKKEY", env.lookup());
  EXPECT_EQ(c.secret_access_key.view(), "work secret");
  EXPECT_EQ(c.session_token.view(), "wt");

  env.vars["AWS_PROFILE"] = "work";
  EXPECT_EQ(s3::load_credentials("", env.lookup()).access_key_id, "WORKKEY");
  env.vars["AWS_PROFILE"] = "missing";
  EXPECT_EQ(category_of([&] { s3::load_credentials("", env.lookup()); }), ErrorCategory::usage);
  EXPECT_EQ(category_of([&] { s3::load_credentials("NOSUCHKEY", env.lookup()); }), ErrorCategory::usage);
}

TEST(S3Credentials, NoneAnywhere) {
  FakeEnv env{{{"HOME", "/nonexistent"}}};
  try {
    s3::load_credentials("", env.lookup());
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::usage);
    EXPECT_NE(std::string(e.what()).find("AWS_ACCESS_KEY_ID"), std::string::npos) << e.what();
  }
}

TEST(S3Ini, RejectsGarbage) {
  EXPECT_EQ(category_of([] { s3::parse_ini("[open\n", "f"); }), ErrorCategory::format);
  EXPECT_EQ(category_of([] { s3::parse_ini("[a]\njust words\n", "f"); }), ErrorCategory::format);
  EXPECT_EQ(s3::parse_ini("; c\n[a]\nk=v=w\n", "f").at(0).value, "v=w");
}

TEST(S3Xml, ListObjectsV2) {
  const std::string xml = R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>p/</Prefix>
<KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>
<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
<Contents><Key>p/data/ab/x</Key><LastModified>2009-10-12T17:50:30.000Z</LastModified><ETag>"e"</ETag><Size>434234</Size></Contents>
<Contents><Key>p/config</Key><LastModified>2009-10-12T17:50:31Z</LastModified><Size>0</Size></Contents>
</ListBucketResult>)";
  const s3::ListPage page = s3::parse_list_objects(xml);
  ASSERT_EQ(page.objects.size(), 2u);
  EXPECT_EQ(page.objects[0].key, "p/data/ab/x");
  EXPECT_EQ(page.objects[0].size, 434234u);
  EXPECT_EQ(page.objects[0].mtime, 1255369830);
  EXPECT_EQ(page.objects[1].mtime, 1255369831);
  EXPECT_TRUE(page.truncated);
  EXPECT_EQ(page.next_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
}

TEST(S3Xml, MalformedRepliesAreFormatErrors) {
  for (const char* xml : {"", "<ListBucketResult>", "<Other/>",
                          "<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents></ListBucketResult>",
                          "<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>",
                          "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>"}) {
    EXPECT_EQ(category_of([&] { s3::parse_list_objects(xml); }), ErrorCategory::format) << xml;
  }
  EXPECT_EQ(category_of([] { s3::parse_initiate_multipart("<InitiateMultipartUploadResult/>"); }), ErrorCategory::format);
}

TEST(S3Xml, MultipartDocuments) {
  EXPECT_EQ(s3::parse_initiate_multipart("<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key>"
                                         "<UploadId>2~abc</UploadId></InitiateMultipartUploadResult>"),
            "2~abc");
  EXPECT_EQ(s3::complete_multipart_body({{1, "\"a\""}, {2, "\"b&c\""}}),
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"a\"</ETag></Part>"
            "<Part><PartNumber>2</PartNumber><ETag>\"b&amp;c\"</ETag></Part></CompleteMultipartUpload>");
  const s3::UploadsPage page = s3::parse_list_uploads(
      "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated><Upload><Key>p/data/x</Key><UploadId>u1</UploadId>"
      "<Initiated>2010-11-10T20:48:33.000Z</Initiated></Upload></ListMultipartUploadsResult>");
  ASSERT_EQ(page.uploads.size(), 1u);
  EXPECT_EQ(page.uploads[0].upload_id, "u1");
  EXPECT_EQ(page.uploads[0].initiated, 1289422113);
}

TEST(S3Xml, ErrorDocument) {
  auto e = s3::parse_error("<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>Reduce your\nrate</Message></Error>");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, "SlowDown");
  EXPECT_FALSE(s3::parse_error("<CompleteMultipartUploadResult/>"));
  EXPECT_FALSE(s3::parse_error("not xml"));
}

TEST(S3Http, HeaderLines) {
  s3::HeaderLine l = s3::parse_header_line("HTTP/1.1 206 Partial Content\r\n");
  EXPECT_EQ(l.kind, s3::HeaderLine::status);
  EXPECT_EQ(l.status_code, 206);
  EXPECT_EQ(s3::parse_header_line("HTTP/2 200\r\n").status_code, 200);
  l = s3::parse_header_line("ETag:  \"abc\"  \r\n");
  EXPECT_EQ(l.kind, s3::HeaderLine::field);
  EXPECT_EQ(l.name, "etag");
  EXPECT_EQ(l.value, "\"abc\"");
  EXPECT_EQ(s3::parse_header_line("\r\n").kind, s3::HeaderLine::end);
  for (const char* junk : {"HTTP/1.1 20 OK", "HTTP/1.1 2000", "HTTP/1.1 999 x", ": v", "no colon", " folded: x", "bad name: v"}) {
    EXPECT_EQ(s3::parse_header_line(junk).kind, s3::HeaderLine::junk) << junk;
  }
}

TEST(S3Http, Dates) {
  EXPECT_EQ(s3::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
  EXPECT_FALSE(s3::parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"));
  EXPECT_FALSE(s3::parse_http_date("Sun, 06 Foo 1994 08:49:37 GMT"));
  EXPECT_EQ(s3::parse_iso8601("2026-12-01T21:03:59.123Z"), 1796159039);
  EXPECT_FALSE(s3::parse_iso8601("2026-13-01T21:03:59Z"));
}

TEST(RetryPolicy, DelaysGrowWithJitterAndStayBounded) {
  RetryPolicy p;
  p.first_delay = std::chrono::milliseconds(100);
  p.max_delay = std::chrono::milliseconds(800);
  for (int round = 0; round < 50; ++round) {
    for (unsigned retry = 1; retry < 10; ++retry) {
      const int64_t full = std::min<int64_t>(100 << (retry - 1), 800);
      const int64_t d = p.delay(retry).count();
      EXPECT_GE(d, full / 2);
      EXPECT_LE(d, full);
    }
  }
}

}  // namespace
}  // namespace arche::backup
