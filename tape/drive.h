// One tape drive, driven as the Linux st driver expects (its no-rewind node,
// /dev/nstN, so that positions survive between opens) or a virtual tape played by
// the same calls (vtape.h):
//
//   open(O_RDWR|O_NONBLOCK)  O_NONBLOCK lets open succeed without a tape (or while
//                            the drive is still loading), so the status can say why;
//   F_SETFL without it       reads and writes then block as they should;
//   MTIOCGET                 online? write-protected?
//   MTSETBLK 0               variable-block mode: every write() is one record of
//                            the size arche chose (docs/tape-format.md)
//
// then MTWEOF at commit points (a filemark ends every tape file and flushes the
// drive's buffer), MTREW/MTFSF/MTBSF/MTEOM to move, MTIOCGET for status. Early
// warning: a write that fails with ENOSPC having written nothing is retried once —
// st lets the next one through so a tape can be closed properly — and reported to
// the caller; a second ENOSPC is the physical end of the tape (a no_space error).
// Not thread-safe: one writer (writer.h's thread) or one reader at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "tape/syscalls.h"

namespace arche::tape {

struct DriveStatus {
  bool online = false;
  bool beginning = false;      // at BOT
  bool early_warning = false;  // GMT_EOT: in the early-warning zone
  bool end_of_data = false;    // GMT_EOD
  bool write_protected = false;
  int file_number = -1;   // 0-based, as the driver counts (arche's file N is driver file N-1)
  int block_number = -1;  // within the file
};

enum class ReadKind { record, filemark, end_of_data };
struct ReadResult {
  ReadKind kind;
  size_t length = 0;  // bytes of the record
};

class TapeDrive {
 public:
  // Opens `path` for reading or writing; not_found when no tape is loaded, a
  // permission error when writing to a write-protected tape.
  TapeDrive(std::shared_ptr<TapeSyscalls> sys, std::string path, bool writable);
  ~TapeDrive();
  TapeDrive(const TapeDrive&) = delete;
  TapeDrive& operator=(const TapeDrive&) = delete;

  const std::string& path() const { return path_; }
  DriveStatus status();

  void rewind();
  // Positions at the start of tape file `file` (1 = the media label).
  void locate_file(uint32_t file);
  void skip_files_forward(uint32_t count);
  void skip_files_back(uint32_t count);
  void to_end_of_data();
  void write_filemark();

  // Writes one record; true when the tape is in its early-warning zone.
  bool write_record(std::span<const uint8_t> record);
  // One record into `buffer` (which must be as large as the largest record); an io
  // error for a medium error (the drive is past the bad block), a format error for
  // a block larger than the buffer.
  ReadResult read_record(std::span<uint8_t> buffer);

 private:
  void op(short code, int count, const char* what);

  std::shared_ptr<TapeSyscalls> sys_;
  std::string path_;
  int fd_ = -1;
  bool warned_ = false;
};

}  // namespace arche::tape
