#include "tape/labelling.h"

#include <algorithm>

#include "core/error.h"

namespace arche::tape {

MediaLabel label_tape(Library& library, Catalog& catalog, const LabelRequest& request) {
  if (request.label.empty() || request.pool.empty()) fail(ErrorCategory::usage, "a label needs --label and --pool");
  if (request.record_size < kMinRecordSize || request.record_size > kMaxRecordSize || request.record_size % 4096)
    fail(ErrorCategory::usage, "record size must be a multiple of 4 KiB from 4 KiB to 4 MiB");
  if (is_vtape(library.device())) create_vtape_cartridge(library.device(), request.label, request.cartridge);
  library.load(is_vtape(library.device()) ? request.label : "", "labelling " + request.label);
  TapeDrive drive(library.syscalls(), library.drive_path(), true);
  std::optional<MediaLabel> old;
  try {
    old = read_label(drive);
  } catch (const Error& e) {
    if (e.category() != ErrorCategory::corrupt) throw;
    if (!request.force)
      fail(ErrorCategory::exists, "the tape holds something else ({}); --force overwrites it", e.what());
  }
  if (old && !is_nil(old->media_set) && !request.force) {
    const CatalogSet* s = catalog.find_set(uuid_text(old->media_set));
    if (!s)
      fail(ErrorCategory::exists, "tape {} holds media set {}, which the catalog does not know; --force overwrites it",
           old->label, uuid_text(old->media_set));
    if (s->expires() > request.now)
      fail(ErrorCategory::exists, "tape {} holds media set {} until {}; --force overwrites it", old->label, s->uuid,
           rfc3339(s->expires()));
  }
  MediaLabel l;
  l.tape = random_uuid();
  l.label = request.label;
  l.pool = request.pool;
  l.labeled = request.now;
  l.record_size = request.record_size;
  write_label(drive, l);
  if (old) {
    std::erase_if(catalog.tapes, [&](const CatalogTape& t) { return t.uuid == uuid_text(old->tape); });
    for (CatalogSet& s : catalog.sets) std::erase(s.tapes, uuid_text(old->tape));
  }
  std::erase_if(catalog.tapes, [&](const CatalogTape& t) { return t.label == l.label; });
  catalog.tapes.push_back({uuid_text(l.tape), l.label, l.pool, "", 0, "", l.labeled, l.record_size, false, {}});
  catalog.sort();
  return l;
}

TapeStatus tape_status(Library& library, const Catalog& catalog) {
  TapeStatus s;
  s.device = library.device();
  s.cartridge = library.loaded();
  TapeDrive drive(library.syscalls(), library.drive_path(), false);
  s.label = read_label(drive);
  drive.rewind();
  s.drive = drive.status();
  if (is_vtape(library.device())) {
    s.capacity = read_cartridge_info(library.drive_path());
    s.used = cartridge_used(library.drive_path());
  }
  if (s.label) s.known = catalog.find_tape(uuid_text(s.label->tape));
  return s;
}

}  // namespace arche::tape
