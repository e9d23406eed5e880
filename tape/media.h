// The media label (tape file 1, docs/tape-format.md): which tape this is, its
// pool, and — once it is in a media set — the set, its place in it and the
// fingerprint of the repository key whose data it holds (never the key: the
// fingerprint is a keyed hash that only whoever has the key can compute again).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "backup/crypto.h"
#include "core/json.h"
#include "tape/drive.h"
#include "tape/record.h"

namespace arche::tape {

struct MediaLabel {
  Uuid tape{};
  std::string label, pool;
  Uuid media_set{};                         // nil while in no set
  uint32_t sequence = 0;                    // in the set, from 1
  std::string key_fingerprint, repository;  // "" while in no set
  int64_t labeled = 0;                      // unix seconds: when `tape label` wrote it
  int64_t set_joined = 0;                   // when it joined its set
  uint32_t record_size = kDefaultRecordSize;
};

Json label_to_json(const MediaLabel& l);
MediaLabel label_from_json(const Json& j, const std::string& what);

// Rewinds and writes the label as file 1 (what followed is gone), then a filemark.
void write_label(TapeDrive& drive, const MediaLabel& label);
// Rewinds and reads file 1; nothing for a blank tape; a corrupt error for a tape
// that is not an arche tape. The drive is left at the start of file 2.
std::optional<MediaLabel> read_label(TapeDrive& drive);

// 32 hex digits that name the repository key without revealing it.
std::string key_fingerprint(const backup::RepoKeys& keys);

}  // namespace arche::tape
