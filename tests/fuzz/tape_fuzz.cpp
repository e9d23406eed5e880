// libFuzzer target for what arche reads from a tape and from the tape catalog
// (docs/tape-format.md): record headers, tape file headers, object entries, the
// media label and the catalog (the sealed file and its JSON). The first byte picks
// the parser; the rest is its input. The label's and catalog's JSON are also fed
// past their CRCs (kLabelJson, kCatalogJson), so mutations reach their decoders.
// Any input must end in success or an arche::Error. Seeds (valid encodings) are
// written into an empty corpus.
#include <boost/filesystem.hpp>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/json.h"
#include "tape/catalog.h"
#include "tape/media.h"
#include "tape/record.h"
#include "tests/fuzz/self_seeding.h"

using namespace arche;
using namespace arche::tape;

namespace {

using arche::fuzz::write_seed;

enum Target : uint8_t { kRecord, kFileHeader, kEntries, kCatalog, kCatalogJson, kLabelJson, kUuid, kTargetCount };

// A tape file's content: its header, then object entries each followed by the
// object's bytes, as far as they go.
void decode_content(std::span<const uint8_t> d) {
  size_t length = 0;
  FileHeader h = decode_file_header(d, length, "fuzz");
  if (h.type == ContentType::media_label) (void)label_from_json(h.metadata, "fuzz");
  d = d.subspan(length);
  for (int i = 0; i < 4096 && !d.empty(); ++i) {
    EntryHeader e;
    const size_t n = decode_entry_header(d, e, "fuzz");
    if (n == 0 || e.size > d.size() - n) break;
    d = d.subspan(n + e.size);
  }
}

void run(uint8_t target, std::span<const uint8_t> d) {
  switch (target % kTargetCount) {
    case kRecord: {
      RecordHeader h;
      if (!check_record(d, h)) decode_content(d.subspan(kRecordHeaderSize, h.payload_length));
      break;
    }
    case kFileHeader: decode_content(d); break;
    case kEntries:
      for (int i = 0; i < 4096 && !d.empty(); ++i) {
        EntryHeader e;
        const size_t n = decode_entry_header(d, e, "fuzz");
        if (n == 0) break;
        d = d.subspan(std::min<uint64_t>(d.size(), n + e.size));
      }
      break;
    case kCatalog: (void)decode_catalog(d, "fuzz"); break;
    case kCatalogJson:
    case kLabelJson: {
      Json j = Json::parse(d.begin(), d.end(), nullptr, false);
      if (j.is_discarded()) break;
      if (target % kTargetCount == kLabelJson) {
        (void)label_from_json(j, "fuzz");
        break;
      }
      Catalog c = catalog_from_json(j, "fuzz");
      c.sort();
      for (const CatalogSet& s : c.sets) {
        (void)c.objects_of_set(s.uuid);
        Catalog part = c.subset(s.uuid);
        c.merge(part);
      }
      if (!c.snapshots.empty()) (void)c.resolve_snapshot(c.snapshots.front().name);
      (void)catalog_to_json(c).dump();
      break;
    }
    case kUuid: (void)parse_uuid(std::string(d.begin(), d.end()), "fuzz"); break;
  }
}

std::span<const uint8_t> bytes_of(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

void write_seeds(const std::string& dir) {
  MediaLabel label;
  label.tape = random_uuid();
  label.label = "TAPE01";
  label.pool = "daily";
  label.media_set = random_uuid();
  label.sequence = 1;
  label.key_fingerprint = std::string(32, 'a');
  label.repository = "/srv/repo";
  label.labeled = 1700000000;
  label.record_size = kMinRecordSize;
  FileHeader lh;
  lh.type = ContentType::media_label;
  lh.metadata = label_to_json(label);
  std::vector<uint8_t> label_file = encode_file_header(lh);
  write_seed(dir, "label-header", kFileHeader, label_file);
  write_seed(dir, "label-json", kLabelJson, bytes_of(label_to_json(label).dump()));

  // A chunk archive's first record: file header and two object entries.
  FileHeader ah;
  ah.archive = random_uuid();
  ah.metadata = Json{{"repository", "r"}};
  std::vector<uint8_t> content = encode_file_header(ah);
  for (const char* name : {"data/ab/ab12", "snapshots/0001"}) {
    const std::string object = std::string("object ") + name;
    std::vector<uint8_t> e = encode_entry_header({name, object.size(), 0});
    content.insert(content.end(), e.begin(), e.end());
    content.insert(content.end(), object.begin(), object.end());
  }
  write_seed(dir, "content", kFileHeader, content);
  write_seed(dir, "entries", kEntries, std::span(content).subspan(encode_file_header(ah).size()));
  std::vector<uint8_t> record(kMinRecordSize, 0);
  std::copy(content.begin(), content.end(), record.begin() + kRecordHeaderSize);
  RecordHeader rh;
  rh.record_size = kMinRecordSize;
  rh.payload_length = static_cast<uint32_t>(content.size());
  rh.flags = kFlagFirst | kFlagLast;
  rh.file_number = 2;
  rh.first_entry = static_cast<uint32_t>(encode_file_header(ah).size());
  seal_record_header(record, rh);
  write_seed(dir, "record", kRecord, record);

  Catalog c;
  CatalogTape t;
  t.uuid = uuid_text(label.tape);
  t.label = label.label;
  t.pool = label.pool;
  t.media_set = uuid_text(label.media_set);
  t.sequence = 1;
  t.record_size = kMinRecordSize;
  t.files = {{2, "chunk-archive", uuid_text(ah.archive), 1, 1, {{"data/ab/ab12", 19, 0, 57}}}};
  c.tapes = {t};
  CatalogSet s;
  s.uuid = t.media_set;
  s.pool = t.pool;
  s.tapes = {t.uuid};
  s.retention_days = 7;
  c.sets = {s};
  CatalogSnapshot snap;
  snap.id = std::string(64, 'b');
  snap.name = "nightly";
  snap.media_set = s.uuid;
  snap.packs = {std::string(64, 'c')};
  c.snapshots = {snap};
  write_seed(dir, "catalog", kCatalog, encode_catalog(c));
  write_seed(dir, "catalog-json", kCatalogJson, bytes_of(catalog_to_json(c).dump()));
  write_seed(dir, "uuid", kUuid, bytes_of(uuid_text(label.tape)));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  arche::fuzz::seed_empty_corpus(*argc, *argv, write_seeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > (64u << 10)) return 0;  // targets.sh: -max_len
  try {
    run(data[0], std::span(data + 1, size - 1));
  } catch (const Error&) {
  }
  return 0;
}
