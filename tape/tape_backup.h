// `arche tape backup REPO::NAME... --pool P --device D`: copies snapshots, as the
// repository holds them, into a media set of the pool. For each snapshot: the packs
// it needs that the set does not hold yet go into chunk archives (whole pack
// objects, still encrypted and authenticated; an archive is closed after
// `archive_size` bytes so that restoring one file reads little), then a snapshot
// archive with what makes a repository of those packs: config, the key slots
// (sealed by the passphrase), the manifest and an index of exactly the packs the
// snapshot needs. Every tape ends with a catalog archive; the catalog on disk is
// saved at the end and at every tape switch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backup/repository.h"
#include "core/progress.h"
#include "tape/catalog.h"
#include "tape/library.h"
#include "tape/session.h"

namespace arche::tape {

struct TapeBackupOptions {
  SetChoice set;                       // pool, new set or not, retention (repository filled in)
  uint64_t archive_size = 4ull << 30;  // bytes after which a chunk archive is closed
};

struct TapeBackupReport {
  std::string media_set;
  std::vector<std::string> tapes;                // labels used
  std::vector<std::string> snapshots;            // ids written
  uint64_t packs_written = 0, packs_on_set = 0;  // copied / already in the set
  uint64_t bytes_written = 0;                    // record bytes to tape
};

TapeBackupReport tape_backup(backup::Repository& repo, const std::vector<std::string>& snapshot_refs, Library& library,
                             Catalog& catalog, const CatalogFileStore& disk, TapeBackupOptions options,
                             Progress* progress = nullptr);

}  // namespace arche::tape
