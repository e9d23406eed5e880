// Writing a media set: the loaded tape, its drive and writer thread, the next
// tape file number, and the switch to the next tape at early warning (close the
// tape file, write the catalog archive, ask the library for the next tape of the
// pool, continue the archive there as its next part). Tapes are checked before a
// byte is written: a write-protected tape, a tape of another pool, a tape whose
// set has not expired or a blank (unlabelled) one is refused with the reason, and
// the next one is tried.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tape/allocation.h"
#include "tape/catalog.h"
#include "tape/drive.h"
#include "tape/library.h"
#include "tape/media.h"
#include "tape/writer.h"

namespace arche::tape {

struct SetChoice {
  std::string pool;
  std::string repository, key_fingerprint;
  bool new_set = false;          // else the pool's current set is continued when it can be
  NewSetEvery new_set_every = NewSetEvery::never;  // also a new set when the current began before this period
  uint32_t retention_days = 30;  // of a new set
  uint32_t record_size = kDefaultRecordSize;
  int64_t now = 0;  // unix seconds (tests set it)
};

class SetWriter {
 public:
  SetWriter(Library& library, Catalog& catalog, const SetChoice& choice);
  ~SetWriter();

  const std::string& set_uuid() const { return set_; }
  // Starts a tape file (the tape is switched first when it is in its early-warning zone).
  void begin_file(ContentType type, const Uuid& archive, uint32_t part, const Json& metadata);
  // Adds an object to the open file. Returns false when the tape reached early
  // warning: the caller ends the file and goes on on the next tape (next_tape()).
  bool add(const std::string& name, std::span<const uint8_t> bytes);
  void end_file();
  // At early warning: the catalog archive, then the next tape.
  void next_tape();
  // The catalog archive at the end of the tape; everything on tape.
  void finish();
  std::vector<std::string> tapes_used() const { return used_; }
  uint64_t bytes_written() const;

 private:
  void open_tape(const std::string& label, bool writable);
  void close_tape();
  bool continue_current();
  void allocate(uint32_t sequence);
  std::string refusal(const std::optional<MediaLabel>& label) const;
  void write_catalog_archive();
  CatalogTape& tape();

  Library& library_;
  Catalog& catalog_;
  SetChoice choice_;
  std::string set_;
  Uuid set_uuid_{};
  std::string tape_uuid_;
  uint32_t sequence_ = 0, next_file_ = 0;
  std::unique_ptr<TapeDrive> drive_;
  std::unique_ptr<RecordPump> pump_;
  std::unique_ptr<ArchiveWriter> file_writer_;
  CatalogFile file_;
  std::vector<std::string> used_;
  uint64_t bytes_before_ = 0;
};

}  // namespace arche::tape
