// The VHDX metadata log ([MS-VHDX] 2.3): finding the active sequence of log entries
// and replaying it, either into the file (read-write opens) or as an overlay that
// patches reads (read-only opens), so a dirty image is never read stale.
// arche itself writes metadata in place with ordered barriers and never leaves a
// log behind; encode_log_entry exists so tests can build dirty images.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/file.h"
#include "image/vhdx/vhdx_format.h"

namespace arche::image::vhdx {

inline constexpr uint64_t kLogSector = 4096;

// One write a log entry describes: 4 KiB of data, or `length` bytes of zeros.
struct LogWrite {
  uint64_t offset = 0;
  uint64_t length = 0;
  std::vector<uint8_t> data;  // empty for zeros
};

struct LogReplay {
  std::vector<LogWrite> writes;  // in the order they must be applied
  uint64_t entries = 0;
  uint64_t first_sequence = 0, last_sequence = 0;
  uint64_t flushed_file_offset = 0;  // the file was at least this long when logged
  uint64_t last_file_offset = 0;     // every structure fits below this
};

// Reads the log the header names and returns its active sequence, or nullopt when
// no valid entry carries the header's log GUID (nothing to replay).
std::optional<LogReplay> read_log(const File& file, const Header& header, const std::string& what);

// Applies the writes to the file (the caller syncs).
void replay_into_file(const File& file, const LogReplay& replay);
// Patches `out`, read from the file at `offset`, with the replayed writes.
void overlay(const LogReplay& replay, uint64_t offset, std::span<uint8_t> out);

// Encodes one log entry (for tests): `writes` with data hold exactly 4096 bytes.
std::vector<uint8_t> encode_log_entry(uint64_t sequence, const Id128& log_guid, uint32_t tail,
                                      const std::vector<LogWrite>& writes, uint64_t flushed_file_offset,
                                      uint64_t last_file_offset);

}  // namespace arche::image::vhdx
