// Replay of an ext3/ext4 (JBD2) journal that needs recovery, as the kernel does
// at mount and e2fsck does before checking: three passes over the log from
// s_start — scan (find the last committed transaction), revoke (collect revoked
// blocks), replay (copy each logged block to its place, unless revoked by the
// same or a later transaction). The copies are written through the file system's
// io channel, which puts them in the in-memory overlay (ext_io.h), never on the
// disk. Layout: Documentation/filesystems/ext4/journal.rst in Linux.
//
// Checksums v2/v3 (descriptor tails, commit blocks, per-block tags) are checked:
// a bad commit ends the log there, a bad data block is skipped. The log comes
// from the guest: every block number is checked against the journal and the file
// system, and the walk is bounded by the length of the journal. Not replayed:
// fast-commit records (ext4 fast_commit; a note says so) and external journals.
#pragma once

#include <ext2fs/ext2fs.h>

#include <cstdint>
#include <string>
#include <vector>

namespace arche::volume::ext {

struct ReplayResult {
  unsigned transactions = 0;  // committed transactions replayed
  uint64_t blocks = 0;        // blocks written to the overlay
  std::vector<std::string> notes;
};

// Replays the journal of `fs` (opened on an overlay channel). Throws corrupt when
// the journal superblock is unusable; damage further in ends the replay with a note.
ReplayResult replay_journal(ext2_filsys fs);

}  // namespace arche::volume::ext
