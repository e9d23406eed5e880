#include "backup/chunk_list.h"

#include "core/bytes.h"
#include "core/error.h"

namespace arche::backup {

namespace {
constexpr std::string_view kImageListMagic = "ARCHLIST";
constexpr std::string_view kFileListMagic = "ARCHFLST";
constexpr RecordVersion kListVersion{1, 0};
constexpr size_t kFileEntrySize = kIdSize + 4;
}  // namespace

std::vector<uint8_t> encode_image_list(std::span<const Id> ids) {
  if (ids.size() > kImageListEntries) fail(ErrorCategory::internal, "image list of {} entries", ids.size());
  ByteWriter w;
  for (const Id& id : ids) w.bytes(id.bytes);
  return seal_record(kImageListMagic, kListVersion, w.buffer());
}

std::vector<Id> decode_image_list(std::span<const uint8_t> data, const std::string& what) {
  OpenedRecord rec = open_record(data, kImageListMagic, kListVersion.major, what);
  if (rec.payload.size() % kIdSize || rec.payload.size() / kIdSize > kImageListEntries)
    fail(ErrorCategory::corrupt, "{}: chunk list of {} bytes", what, rec.payload.size());
  std::vector<Id> ids(rec.payload.size() / kIdSize);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = Id::from(rec.payload.subspan(i * kIdSize, kIdSize));
  return ids;
}

std::vector<uint8_t> encode_file_list(std::span<const ChunkRef> chunks) {
  if (chunks.size() > kFileListEntries) fail(ErrorCategory::internal, "file list of {} entries", chunks.size());
  ByteWriter w;
  for (const ChunkRef& c : chunks) {
    w.bytes(c.id.bytes);
    w.le32(c.length);
  }
  return seal_record(kFileListMagic, kListVersion, w.buffer());
}

std::vector<ChunkRef> decode_file_list(std::span<const uint8_t> data, const std::string& what) {
  OpenedRecord rec = open_record(data, kFileListMagic, kListVersion.major, what);
  if (rec.payload.size() % kFileEntrySize || rec.payload.size() / kFileEntrySize > kFileListEntries)
    fail(ErrorCategory::corrupt, "{}: file chunk list of {} bytes", what, rec.payload.size());
  ByteReader r(rec.payload, what);
  std::vector<ChunkRef> chunks(rec.payload.size() / kFileEntrySize);
  for (ChunkRef& c : chunks) {
    c.id = Id::from(r.bytes(kIdSize));
    c.length = r.le32();
    if (c.length == 0 || c.length > (c.is_hole() ? kMaxHoleLength : 4u << 20))
      fail(ErrorCategory::corrupt, "{}: chunk length {}", what, c.length);
  }
  return chunks;
}

}  // namespace arche::backup
