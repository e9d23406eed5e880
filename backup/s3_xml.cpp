#include "backup/s3_xml.h"

#include <pugixml.hpp>

#include <charconv>
#include <ctime>

#include "core/error.h"

namespace arche::backup::s3 {
namespace {

pugi::xml_document load(std::string_view xml, const char* what) {
  pugi::xml_document doc;
  const pugi::xml_parse_result result = doc.load_buffer(xml.data(), xml.size(), pugi::parse_default, pugi::encoding_utf8);
  if (!result) fail(ErrorCategory::format, "S3 {} reply is not XML ({} at byte {})", what, result.description(), result.offset);
  return doc;
}

pugi::xml_node root(const pugi::xml_document& doc, const char* name, const char* what) {
  pugi::xml_node node = doc.document_element();
  if (std::string_view(node.name()) != name) {
    fail(ErrorCategory::format, "S3 {} reply: <{}> where <{}> was expected", what, node.name(), name);
  }
  return node;
}

uint64_t number(pugi::xml_node node, const char* what) {
  const std::string_view text = node.text().get();
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    fail(ErrorCategory::format, "S3 {} reply: <{}> is not a number: '{}'", what, node.name(), text.substr(0, 40));
  }
  return value;
}

bool flag(pugi::xml_node node) { return std::string_view(node.text().get()) == "true"; }

}  // namespace

std::optional<int64_t> parse_iso8601(std::string_view text) {
  // YYYY-MM-DDTHH:MM:SS, then optional .fraction, then optional Z.
  if (text.size() < 19 || text[4] != '-' || text[7] != '-' || (text[10] != 'T' && text[10] != 't') || text[13] != ':' ||
      text[16] != ':') {
    return std::nullopt;
  }
  auto field = [&](size_t at, size_t length, int& out) {
    auto [end, ec] = std::from_chars(text.data() + at, text.data() + at + length, out);
    return ec == std::errc() && end == text.data() + at + length;
  };
  std::tm tm{};
  int year = 0, month = 0;
  if (!field(0, 4, year) || !field(5, 2, month) || !field(8, 2, tm.tm_mday) || !field(11, 2, tm.tm_hour) ||
      !field(14, 2, tm.tm_min) || !field(17, 2, tm.tm_sec)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60) {
    return std::nullopt;
  }
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  return static_cast<int64_t>(timegm(&tm));
}

ListPage parse_list_objects(std::string_view xml) {
  const pugi::xml_document doc = load(xml, "ListObjectsV2");
  const pugi::xml_node result = root(doc, "ListBucketResult", "ListObjectsV2");
  ListPage page;
  for (pugi::xml_node item : result.children("Contents")) {
    ListedObject object;
    object.key = item.child_value("Key");
    if (object.key.empty()) fail(ErrorCategory::format, "S3 ListObjectsV2 reply: <Contents> without <Key>");
    object.size = number(item.child("Size"), "ListObjectsV2");
    object.mtime = parse_iso8601(item.child_value("LastModified")).value_or(0);
    page.objects.push_back(std::move(object));
  }
  page.truncated = flag(result.child("IsTruncated"));
  page.next_token = result.child_value("NextContinuationToken");
  if (page.truncated && page.next_token.empty()) {
    fail(ErrorCategory::format, "S3 ListObjectsV2 reply: truncated without a NextContinuationToken");
  }
  return page;
}

std::string parse_initiate_multipart(std::string_view xml) {
  const pugi::xml_document doc = load(xml, "CreateMultipartUpload");
  std::string id = root(doc, "InitiateMultipartUploadResult", "CreateMultipartUpload").child_value("UploadId");
  if (id.empty()) fail(ErrorCategory::format, "S3 CreateMultipartUpload reply without an UploadId");
  return id;
}

std::string complete_multipart_body(const std::vector<UploadPart>& parts) {
  pugi::xml_document doc;
  pugi::xml_node root = doc.append_child("CompleteMultipartUpload");
  for (const UploadPart& part : parts) {
    pugi::xml_node node = root.append_child("Part");
    node.append_child("PartNumber").text().set(part.number);
    node.append_child("ETag").text().set(part.etag.c_str());
  }
  struct Writer : pugi::xml_writer {
    std::string out;
    void write(const void* data, size_t size) override { out.append(static_cast<const char*>(data), size); }
  } writer;
  doc.save(writer, "", pugi::format_raw | pugi::format_no_declaration);
  return writer.out;
}

UploadsPage parse_list_uploads(std::string_view xml) {
  const pugi::xml_document doc = load(xml, "ListMultipartUploads");
  const pugi::xml_node result = root(doc, "ListMultipartUploadsResult", "ListMultipartUploads");
  UploadsPage page;
  for (pugi::xml_node item : result.children("Upload")) {
    PendingUpload upload;
    upload.key = item.child_value("Key");
    upload.upload_id = item.child_value("UploadId");
    if (upload.key.empty() || upload.upload_id.empty()) {
      fail(ErrorCategory::format, "S3 ListMultipartUploads reply: <Upload> without <Key> or <UploadId>");
    }
    upload.initiated = parse_iso8601(item.child_value("Initiated")).value_or(0);
    page.uploads.push_back(std::move(upload));
  }
  page.truncated = flag(result.child("IsTruncated"));
  page.next_key_marker = result.child_value("NextKeyMarker");
  page.next_upload_id_marker = result.child_value("NextUploadIdMarker");
  if (page.truncated && page.next_key_marker.empty()) {
    fail(ErrorCategory::format, "S3 ListMultipartUploads reply: truncated without a NextKeyMarker");
  }
  return page;
}

std::optional<ErrorReply> parse_error(std::string_view xml) {
  pugi::xml_document doc;
  if (!doc.load_buffer(xml.data(), xml.size(), pugi::parse_default, pugi::encoding_utf8)) return std::nullopt;
  const pugi::xml_node node = doc.document_element();
  if (std::string_view(node.name()) != "Error") return std::nullopt;
  // Bounded: these go into one-line messages.
  return ErrorReply{std::string(node.child_value("Code")).substr(0, 64),
                    std::string(node.child_value("Message")).substr(0, 200)};
}

}  // namespace arche::backup::s3
