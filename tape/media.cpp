#include "tape/media.h"

#include <fmt/format.h>

#include "core/error.h"
#include "core/hex.h"
#include "tape/reader.h"
#include "tape/writer.h"

namespace arche::tape {

Json label_to_json(const MediaLabel& l) {
  return {{"tape", uuid_text(l.tape)},
          {"label", l.label},
          {"pool", l.pool},
          {"media-set", is_nil(l.media_set) ? Json(nullptr) : Json(uuid_text(l.media_set))},
          {"sequence", l.sequence},
          {"key-fingerprint", or_null(l.key_fingerprint)},
          {"repository", or_null(l.repository)},
          {"labeled", l.labeled},
          {"set-joined", l.set_joined},
          {"record-size", l.record_size}};
}

MediaLabel label_from_json(const Json& j, const std::string& what) {
  try {
    MediaLabel l;
    l.tape = parse_uuid(j.at("tape").get<std::string>(), what);
    l.label = j.at("label").get<std::string>();
    l.pool = j.at("pool").get<std::string>();
    if (!j.at("media-set").is_null()) l.media_set = parse_uuid(j.at("media-set").get<std::string>(), what);
    l.sequence = j.at("sequence").get<uint32_t>();
    if (!j.at("key-fingerprint").is_null()) l.key_fingerprint = j.at("key-fingerprint").get<std::string>();
    if (!j.at("repository").is_null()) l.repository = j.at("repository").get<std::string>();
    l.labeled = j.at("labeled").get<int64_t>();
    l.set_joined = j.at("set-joined").get<int64_t>();
    l.record_size = j.at("record-size").get<uint32_t>();
    return l;
  } catch (const Error&) {
    throw;
  } catch (const std::exception&) {
    fail(ErrorCategory::corrupt, "{}: the media label is incomplete", what);
  }
}

void write_label(TapeDrive& drive, const MediaLabel& label) {
  drive.rewind();
  RecordPump pump(drive, 2);
  FileHeader h;
  h.type = ContentType::media_label;
  h.archive = label.tape;
  h.metadata = label_to_json(label);
  RecordContext ctx{label.media_set, label.sequence, 1, label.record_size};
  ArchiveWriter w(pump, ctx, h);
  w.finish();
  pump.drain();
}

std::optional<MediaLabel> read_label(TapeDrive& drive) {
  drive.rewind();
  std::vector<uint8_t> buffer(kMaxRecordSize);
  const std::string what = drive.path() + ": media label";
  ReadResult r = drive.read_record(buffer);
  if (r.kind == ReadKind::end_of_data) return std::nullopt;
  if (r.kind == ReadKind::filemark)
    fail(ErrorCategory::corrupt, "{}: the tape starts with a filemark (not an arche tape)", what);
  RecordHeader rh;
  if (auto bad = check_record(std::span<const uint8_t>(buffer.data(), r.length), rh))
    fail(ErrorCategory::corrupt, "{}: {} (not an arche tape, or a damaged label)", what, *bad);
  size_t length = 0;
  FileHeader fh =
      decode_file_header(std::span<const uint8_t>(buffer.data() + kRecordHeaderSize, rh.payload_length), length, what);
  if (fh.type != ContentType::media_label || rh.file_number != 1)
    fail(ErrorCategory::corrupt, "{}: file 1 is a {}, not a media label", what, to_string(fh.type));
  MediaLabel l = label_from_json(fh.metadata, what);
  if (l.media_set != rh.media_set)
    fail(ErrorCategory::corrupt, "{}: the label and its record name different media sets", what);
  // Past the label's filemark: at the start of file 2.
  for (;;) {
    ReadResult n = drive.read_record(buffer);
    if (n.kind != ReadKind::record) break;
  }
  return l;
}

std::string key_fingerprint(const backup::RepoKeys& keys) {
  static constexpr char kContext[] = "arche tape key fingerprint v1";
  const backup::Id id =
      keys.chunk_id(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(kContext), sizeof kContext - 1));
  return id.hex().substr(0, 32);
}

}  // namespace arche::tape
