// `arche tape label` and `arche tape status`: writing a media label on a tape (for
// vtape:DIR the cartridge is made first), and what a drive and its tape say.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tape/catalog.h"
#include "tape/library.h"
#include "tape/media.h"
#include "tape/vtape.h"

namespace arche::tape {

struct LabelRequest {
  std::string label, pool;
  uint32_t record_size = kDefaultRecordSize;
  CartridgeInfo cartridge{uint64_t{1} << 40, uint64_t{1} << 30};  // vtape: 1 TiB, 1 GiB early warning
  bool force = false;                                             // overwrite a tape whose media set has not expired
  int64_t now = 0;
};

// Writes the label (a new tape uuid) and records the tape in the catalog. A tape
// of an unexpired set (or of a set the catalog does not know) is refused unless forced.
MediaLabel label_tape(Library& library, Catalog& catalog, const LabelRequest& request);

struct TapeStatus {
  std::string device, cartridge;  // cartridge: vtape only
  DriveStatus drive;
  std::optional<MediaLabel> label;
  std::optional<CartridgeInfo> capacity;  // vtape
  uint64_t used = 0;                      // vtape
  const CatalogTape* known = nullptr;     // in the catalog
};
TapeStatus tape_status(Library& library, const Catalog& catalog);

}  // namespace arche::tape
