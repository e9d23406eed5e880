// `arche tape restore-file` and `arche tape restore-image`: one path of a file
// backup, or one image, out of a media set, reading only the tape files that hold
// what it needs (acceptance 7 of issue 14). Two passes over the tapes: first the
// snapshot archive and the packs holding the snapshot's trees and chunk lists (the
// catalog names them: metadata packs), into a scratch repository in a temporary
// directory; with the passphrase the tree is walked to PATH (or the image's chunk
// lists are read) and its chunks give the packs to read in the second pass. Then
// backup's own restore writes PATH below DIR with its metadata, or the image to its
// file (raw or qcow2; the output appears only complete: backup/image_restore.h).
// The scratch repository holds the packs the restore needs (about the size of
// what is restored, compressed) until it ends; TMPDIR says where (/var/tmp).
#pragma once

#include <span>
#include <string>

#include "backup/file_restore.h"
#include "backup/image_restore.h"
#include "tape/catalog.h"
#include "tape/library.h"
#include "tape/tape_read.h"

namespace arche::tape {

// What a restore from tape read: only the tape files that hold what it needs.
struct TapeReads {
  ReadReport first, second;  // the metadata pass and the data pass
  uint64_t set_files = 0;    // archive files the media set has (for comparison)
  uint64_t packs_needed = 0;
  uint64_t files_read() const { return first.files_read.size() + second.files_read.size(); }
  uint64_t records() const { return first.records + second.records; }
};

struct TapeFileRestoreReport {
  std::string snapshot_id, snapshot_name, path, target;
  TapeReads reads;
  backup::FileRestoreStats stats;
};

TapeFileRestoreReport restore_file_from_tape(Library& library, const Catalog& catalog, const std::string& snapshot_ref,
                                             const std::string& path, const std::string& target,
                                             std::span<const uint8_t> passphrase, Progress* progress = nullptr);

struct TapeImageRestoreReport {
  std::string snapshot_id, snapshot_name, image, target;
  TapeReads reads;
  backup::ImageRestoreStats stats;
};

// `image` as `backup restore --image` takes it; empty: the snapshot's only image.
TapeImageRestoreReport restore_image_from_tape(Library& library, const Catalog& catalog,
                                               const std::string& snapshot_ref, const std::string& image,
                                               const std::string& target,
                                               const backup::ImageRestoreOptions& options,
                                               std::span<const uint8_t> passphrase, Progress* progress = nullptr);

}  // namespace arche::tape
