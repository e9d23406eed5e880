#include "backup/deletions.h"

#include "backup/object.h"
#include "core/bytes.h"
#include "core/error.h"
#include "core/log.h"

namespace arche::backup {

namespace {
constexpr std::string_view kDeletionMagic = "ARCHEDEL";
constexpr RecordVersion kDeletionVersion{1, 0};
constexpr size_t kMaxDeletionPayload = 64u << 20;

void put_string(ByteWriter& w, const std::string& s) {
  w.le16(static_cast<uint16_t>(std::min<size_t>(s.size(), 65535)));
  w.string(std::string_view(s).substr(0, 65535));
}
}  // namespace

std::vector<uint8_t> encode_deletion_payload(const DeletionMark& m) {
  ByteWriter w;
  w.le64(m.created);
  put_string(w, m.prune_lock);
  w.u8(m.locks_recorded ? 1 : 0);
  w.le32(static_cast<uint32_t>(m.locks.size()));
  for (const std::string& l : m.locks) put_string(w, l);
  w.le32(static_cast<uint32_t>(m.packs.size()));
  for (const Id& id : m.packs) w.bytes(id.bytes);
  return w.take();
}

DeletionMark decode_deletion_payload(std::span<const uint8_t> data, const std::string& what) {
  ByteReader r(data, what);
  DeletionMark m;
  m.created = r.le64();
  m.prune_lock = r.string(r.le16());
  uint8_t flags = r.u8();
  if (flags > 1) fail(ErrorCategory::corrupt, "{}: unknown flags {}", what, flags);
  m.locks_recorded = flags & 1;
  uint32_t locks = r.le32();
  if (locks > r.remaining() / 2) fail(ErrorCategory::corrupt, "{}: {} locks cannot fit", what, locks);
  for (uint32_t i = 0; i < locks; ++i) m.locks.push_back(r.string(r.le16()));
  uint32_t packs = r.le32();
  if (uint64_t{packs} * kIdSize != r.remaining())
    fail(ErrorCategory::corrupt, "{}: {} bytes for {} packs", what, r.remaining(), packs);
  for (uint32_t i = 0; i < packs; ++i) m.packs.push_back(Id::from(r.bytes(kIdSize)));
  return m;
}

std::vector<DeletionMark> load_deletion_marks(const Repository& repo, std::vector<std::string>* damaged) {
  std::vector<DeletionMark> marks;
  for (const std::string& name : repo.list_files("deletions")) {
    const std::string what = "deletion mark " + name.substr(0, 8);
    try {
      OpenedObject o = open_object(repo.keys(), repo.read_file("deletions", name), kDeletionMagic,
                                   kDeletionVersion.major, what, kMaxDeletionPayload);
      DeletionMark m = decode_deletion_payload(o.payload, what);
      m.name = name;
      marks.push_back(std::move(m));
    } catch (const Error& e) {
      if (e.category() == ErrorCategory::not_found) continue;  // done with meanwhile
      if (damaged) damaged->push_back(name);
      else warn("{}", e.what());
    }
  }
  return marks;
}

void write_deletion_mark(const Repository& repo, DeletionMark& mark, bool replace) {
  if (mark.name.empty()) mark.name = Id::random().hex().substr(0, 32);
  repo.write_named_file("deletions", mark.name,
                        seal_object(repo.keys(), kDeletionMagic, kDeletionVersion, encode_deletion_payload(mark), true),
                        replace);
}

}  // namespace arche::backup
